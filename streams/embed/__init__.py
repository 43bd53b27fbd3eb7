"""embed stage: message text, transcripts, image captions and document text -> token chunks
with their vectors on wa.embeddings (OpenAI embeddings API)."""
