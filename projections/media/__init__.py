"""The media projection: wa.media, wa.transcripts, wa.captions, wa.documents -> chat_media,
and the derived text (transcript, document text, AI image description) -> chat_messages."""
