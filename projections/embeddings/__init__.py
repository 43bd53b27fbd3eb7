"""The embeddings projection: wa.embeddings -> message_embeddings (chunks with vectors and a
full-text vector), replaced per (message, source) atomically, deletions kept as tombstones."""
