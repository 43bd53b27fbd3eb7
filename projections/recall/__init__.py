"""The read side of the embeddings: recall a chat's snippets by meaning and by exact words.

For agents in the same process::

    from projections.recall import recall
    snippets = await recall(pool, embedder, chat_key, "what did they say about the delivery?", k=10)

``pool``: an asyncpg pool with ``init=projections.embeddings.vectors.register_vector``;
``embedder``: ``runtime.embedder.make_embedder(settings, openai_client, wait_seconds=0)``
(or None: exact words only). ``search(...)`` gives the same snippets and whether (and why
not) they were ranked by meaning. Over HTTP: ``python -m projections.recall`` (``projections.recall.app``).
The rest of a chat's memory (chats, pages of messages, an agent's context) is ``projections.recall.memory``.
"""

from projections.recall.search import (
    Answer, QueryEmbedder, RecallConfig, RecallDisabled, Semantic, Snippet, UnknownChat, recall, search,
)  # fmt: skip

__all__ = [
    "Answer", "QueryEmbedder", "RecallConfig", "RecallDisabled", "Semantic", "Snippet", "UnknownChat", "recall",
    "search",
]  # fmt: skip
