"""Projections: plain aiokafka batch consumers that turn events into rows, idempotently.

Each batch is one Postgres transaction holding the rows and the consumed offsets
(``projection_offsets``); a crash, a rebalance or a replay never duplicates or loses a row.
``projections.messages`` applies wa.messages to chats and chat_messages.
"""
