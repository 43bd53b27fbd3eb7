"""Ingest's error policy: every rejection is a domain error with an HTTP status and a
reason that is safe to return and to log (never the body, never a secret)."""

from __future__ import annotations

from contracts.errors import SafeError


class IngestError(SafeError):
    status_code = 500
    outcome = "error"
    #: answered with Retry-After: the provider should send it again later
    retry_later = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownProvider(IngestError):
    status_code = 404
    outcome = "unknown_provider"


class Unauthorized(IngestError):
    status_code = 401
    outcome = "unauthorized"


class Forbidden(IngestError):
    status_code = 403
    outcome = "forbidden"


class PayloadTooLarge(IngestError):
    status_code = 413
    outcome = "too_large"


class BodyTimeout(IngestError):
    """The body did not arrive within INGEST_BODY_TIMEOUT_SECONDS."""

    status_code = 408
    outcome = "body_timeout"


class MalformedBody(IngestError):
    status_code = 400
    outcome = "malformed"


class MethodNotAllowed(IngestError):
    """A GET (say) on a route that only takes deliveries by POST."""

    status_code = 405
    outcome = "method_not_allowed"


class InvalidEvent(IngestError):
    status_code = 422
    outcome = "invalid"


class BrokerUnavailable(IngestError):
    """The broker did not acknowledge the write in time: the provider must retry."""

    status_code = 503
    outcome = "unavailable"
    retry_later = True


class Overloaded(IngestError):
    """INGEST_MAX_IN_FLIGHT deliveries are being handled already."""

    status_code = 503
    outcome = "overloaded"
    retry_later = True
