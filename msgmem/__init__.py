"""Operations for Message Memory: the `msgmem` command, the local stack and shared Kafka/Postgres adapters."""
