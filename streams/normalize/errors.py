"""Errors of the normalize stage.

``UnparseableDelivery`` is poison, never transient: the same bytes will fail the same way
on every retry, so the agent sends the wa.raw record straight to the dead-letter topic.
"""


class NormaliseError(Exception):
    """Root of the normalize stage's errors."""


class UnparseableDelivery(NormaliseError):
    """The body is not JSON, or not a shape any normaliser of its provider recognises."""
