"""The retention sweep of MESSAGE_RETENTION_DAYS and TRANSCRIPT_RETENTION_DAYS (``sweep``)."""
