"""The retention policies applied (wa.retention): run by the erasures projector, beside erasures."""
