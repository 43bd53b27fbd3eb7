"""Local stand-ins for the HTTP services the stages call (provider media APIs, OpenAI,
Supabase Storage). Each speaks the real protocol on a real socket, records what it was
asked, and can inject latency and failures (429 with Retry-After, 500, slow answers)."""
