"""What every stream stage shares: the record a stage reads, what it writes, retries and dead letters."""
