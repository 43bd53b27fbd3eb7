"""embed stage: texts on wa.messages / wa.transcripts / wa.captions / wa.documents -> wa.embeddings."""
from streams.embed.main import main

main()
