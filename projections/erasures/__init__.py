"""The erasures projector: applies wa.erasures to every projected table and to media storage."""
