"""Errors of the normalize stage.

``UnparseableDelivery`` is poison, never transient: the same bytes will fail the same way
on every retry, so the agent sends the wa.raw record straight to the dead-letter topic.
It means the envelope itself cannot be read (not JSON, not a shape of its provider); a
readable delivery with one bad message yields its other events and a failure for that
item instead (``providers.common.ItemFailure``).

Error texts name error types and field paths, never input values: dead letters, logs and
alerts are read by people who must not see message text, phone numbers or tokens.
"""

from __future__ import annotations

from contracts.errors import SafeError


class NormaliseError(SafeError):
    """Root of the normalize stage's errors. Its messages are written by this code, never
    copied from the input, so they are safe to show."""


class UnparseableDelivery(NormaliseError):
    """The body is not JSON, or not a shape any normaliser of its provider recognises."""


class MalformedField(NormaliseError):
    """A field of an item is missing or holds a value that cannot be read (a timestamp that
    is not one). Names the field and the problem, e.g. ``timestamp: ValueError``; the value
    stays out of the message."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    @classmethod
    def missing(cls, field: str) -> MalformedField:
        return cls(field, "missing")

    @classmethod
    def unreadable(cls, field: str, cause: BaseException) -> MalformedField:
        return cls(field, type(cause).__name__)


class MalformedItem(NormaliseError):
    """One item of a readable delivery (a message, a status) could not be normalised while
    its neighbours were: the error of its dead letter. The message is the item's failure
    text, e.g. ``messages[2].timestamp: ValueError``."""
