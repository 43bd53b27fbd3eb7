"""What the AI enrichment stages (transcribe, caption, extract) share: the OpenAI client and its
error policy, the result cache that keeps duplicates from paying twice, and the scaffolding
that turns a wa.media record into a result, a skip or a failure event."""
