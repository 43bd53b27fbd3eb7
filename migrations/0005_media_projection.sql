-- The media projection's own state: wa.media, wa.transcripts, wa.captions and wa.documents ->
-- chat_media, and the derived text copied to chat_messages (projections/media).
--
-- Like 0002, every merge is order-independent: the same set of events gives the same row
-- whatever order (and however often) they are applied. A result can be logged before the
-- MediaStored it derives from is applied (each topic is consumed on its own), and a re-run of
-- a stage with another model logs new results beside the old ones.

-- When chat_media.error was taken from a MediaFailed (its failed_at): the latest failure's
-- error is shown, and never over a row that was ever stored.
alter table chat_media add column failed_at timestamptz;

-- Which result each text column holds: its model and its produced_at. The newest produced_at
-- wins (a tie goes to the greater text), so re-running a stage with a better model replaces
-- the text in place and a replay of older results changes nothing.
alter table chat_media add column transcript_model text;
alter table chat_media add column transcript_at timestamptz;
alter table chat_media add column caption_model text;
alter table chat_media add column caption_at timestamptz;
alter table chat_media add column extracted_model text;
alter table chat_media add column extracted_at timestamptz;

-- Outcome of the enrichment stages for this object: 'done' once any stage produced text
-- (a later skip or failure does not undo it), else the latest 'skipped' / 'failed' with its
-- reason in enrichment_error ("no_api_key: OPENAI_API_KEY is not set").
alter table chat_media add column enrichment_status text;
alter table chat_media add column enrichment_error text;
alter table chat_media add column enrichment_at timestamptz;
alter table chat_media add constraint chat_media_enrichment_status_check
    check (enrichment_status is null or enrichment_status in ('done', 'skipped', 'failed'));

-- chat_messages.caption is the sender's caption, or when the sender wrote none, the AI
-- description of the image (chat_media.caption). True: it holds the AI description, so a
-- sender caption that arrives later (a copy of the message, an edit) replaces it, and a newer
-- description may too; false: it is the sender's (or null) and no description replaces it.
alter table chat_messages add column caption_generated boolean not null default false;
