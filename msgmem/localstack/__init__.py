"""The embedded local stack: a real Apache Kafka (KRaft) from Maven Central jars and an
embedded PostgreSQL with pgvector, run as child processes. Used by `msgmem dev` and the tests."""
