"""The messages projection: wa.messages -> chats, chat_messages (and chat_message_pending, chat_message_versions)."""
