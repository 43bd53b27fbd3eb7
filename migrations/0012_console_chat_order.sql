-- The web console lists chats by their last message, newest first (projections/recall/memory.py
-- browse_chats; a chat without messages by its creation), paged by a cursor in that order: an
-- index on the same expression keeps a page a short index scan however many chats there are.
create index chats_last_activity_idx on chats ((coalesce(last_message_at, created_at)) desc, chat_key desc);
