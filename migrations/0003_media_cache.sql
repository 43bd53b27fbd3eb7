-- Results of the paid enrichment calls (transcripts, captions, PDF pages read by a model),
-- keyed by what determines them: the file's SHA-256, the stage and the model. A duplicate
-- voice note, a forward or a replay of wa.media finds its result here and pays nothing.
-- Written and read by the enrichment stages only; not a projection, so `projections
-- rebuild` keeps it. Erasing a contact must delete the rows of their media's sha256 too.
create table enrichment_cache (
    sha256      text not null,                  -- hex, of the stored file
    stage       text not null,                  -- transcribe, caption, extract
    model       text not null,
    result      jsonb not null,
    created_at  timestamptz not null default now(),
    constraint enrichment_cache_pkey primary key (sha256, stage, model)
);

alter table enrichment_cache enable row level security;
