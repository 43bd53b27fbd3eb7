"""One ``chat_media`` row as a batch sees it, and how two facts about one media object merge.

``MediaRow.absorb`` is the in-memory twin of the SQL merge in ``projections.media.sql``
(``self`` is the stored row, ``other`` the incoming one): the batch folds its events per
media id with it, because one statement cannot touch a row twice, and the upsert applies the
same rules across batches. Both are commutative and idempotent:

- the stored object (size, sha256, bucket, path, stored_at, expires_at) is the newest
  MediaStored's by ``stored_at``; an equal or older one changes nothing, so a replay never
  turns a row a MediaExpired made 'expired' back into 'stored';
- a MediaExpired makes the row 'expired' unless a newer copy was stored since (its
  ``stored_at`` is below the row's): a file stored again after its expiry is 'stored' again.
  It repeats the row's object columns, so it gives the same row before or after its MediaStored;
- descriptive columns (provider media id, mime type, file name, duration) come from the
  newest MediaStored, gaps filled from the other events;
- a MediaFailed or MediaSkipped makes the row 'failed' or 'skipped' only while no MediaStored
  was ever applied; status and error are the latest one's (by ``failed_at``, which holds when
  a failure or a skip was recorded, then by error text);
- before any store, the object's columns take the first known value: a failure's or skip's
  size and sha256 are what the webhook declared;
- each text (transcript, caption, extracted text) is the newest result's by ``produced_at``,
  a tie going to the greater text, so a re-run with another model replaces it in place;
  ``page_count`` follows the winning extraction, else the stored object;
- the enrichment outcome: 'done' beats 'skipped' / 'failed', then the latest wins.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

PENDING, STORED, FAILED, SKIPPED, EXPIRED = "pending", "stored", "failed", "skipped", "expired"
DONE = "done"
_ENRICHMENT_RANK = {DONE: 2, "skipped": 1, "failed": 1}
DESCRIPTIVE = ("provider_media_id", "mime_type", "filename", "duration_seconds")
OBJECT = ("size_bytes", "sha256", "bucket", "path", "stored_at", "expires_at")
TEXTS = (("transcript", "transcript_model", "transcript_at"), ("caption", "caption_model", "caption_at"),
         ("extracted_text", "extracted_model", "extracted_at"))  # fmt: skip


@dataclass(slots=True)
class MediaRow:
    id: str
    message_id: str
    chat_key: str
    kind: str
    status: str = PENDING
    provider_media_id: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    duration_seconds: float | None = None
    page_count: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    bucket: str | None = None
    path: str | None = None
    stored_at: datetime | None = None
    expires_at: datetime | None = None
    error: str | None = None
    failed_at: datetime | None = None
    transcript: str | None = None
    transcript_model: str | None = None
    transcript_at: datetime | None = None
    caption: str | None = None
    caption_model: str | None = None
    caption_at: datetime | None = None
    extracted_text: str | None = None
    extracted_model: str | None = None
    extracted_at: datetime | None = None
    enrichment_status: str | None = None
    enrichment_error: str | None = None
    enrichment_at: datetime | None = None

    @property
    def has_text(self) -> bool:
        return any(getattr(self, at) is not None for _, _, at in TEXTS)

    def absorb(self, other: MediaRow) -> None:
        """Merge another fact about this media object (the SQL twin: ``projections.media.sql.MERGE``)."""
        stored_wins = other.stored_at is not None and (self.stored_at is None or other.stored_at > self.stored_at)
        had_store = self.stored_at is not None
        extraction_wins = _newer(other.extracted_at, other.extracted_text, self.extracted_at, self.extracted_text)
        failure_wins = other.failed_at is not None and (
            self.failed_at is None or (other.failed_at, other.error or "") > (self.failed_at, self.error or "")
        )
        if _expires(other, self):
            status = EXPIRED
        elif stored_wins:
            status = STORED
        elif not had_store and failure_wins:
            status = other.status
        else:
            status = self.status
        error = None if stored_wins or had_store else other.error if failure_wins else self.error
        if extraction_wins:
            page_count = other.page_count
        elif self.extracted_at is not None:
            page_count = self.page_count
        else:
            page_count = _fill(other.page_count, self.page_count, stored_wins)

        for name in DESCRIPTIVE:
            setattr(self, name, _fill(getattr(other, name), getattr(self, name), stored_wins))
        for name in OBJECT:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if stored_wins else mine if had_store else _first(mine, theirs))
        for text, model, at in TEXTS:
            if _newer(getattr(other, at), getattr(other, text), getattr(self, at), getattr(self, text)):
                for name in (text, model, at):
                    setattr(self, name, getattr(other, name))
        if other.enrichment_status is not None and (
            self.enrichment_status is None or _enrichment_key(other) > _enrichment_key(self)
        ):
            self.enrichment_status, self.enrichment_error = other.enrichment_status, other.enrichment_error
            self.enrichment_at = other.enrichment_at
        self.status, self.error, self.page_count = status, error, page_count
        self.failed_at = _later(self.failed_at, other.failed_at)


def _expires(other: MediaRow, row: MediaRow) -> bool:
    """``other`` is an expiry of ``row``'s stored copy, or of a newer one."""
    expired = other.stored_at
    return other.status == EXPIRED and expired is not None and (row.stored_at is None or expired >= row.stored_at)


def _newer(at: datetime | None, text: str | None, than_at: datetime | None, than_text: str | None) -> bool:
    return at is not None and (than_at is None or (at, text or "") > (than_at, than_text or ""))


def _enrichment_key(row: MediaRow) -> tuple[int, datetime, str, str]:
    assert row.enrichment_status is not None and row.enrichment_at is not None
    return (_ENRICHMENT_RANK[row.enrichment_status], row.enrichment_at, row.enrichment_status,
            row.enrichment_error or "")  # fmt: skip


def _fill(incoming: object, current: object, incoming_wins: bool) -> object:
    """The winner's value, else the other's: ``coalesce(winner, loser)``."""
    return _first(incoming, current) if incoming_wins else _first(current, incoming)


def _first(a: object, b: object) -> object:
    return a if a is not None else b


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MediaRow))
