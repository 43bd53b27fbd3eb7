"""transcribe stage: voice notes and audio on wa.media -> text on wa.transcripts (OpenAI transcription API)."""
