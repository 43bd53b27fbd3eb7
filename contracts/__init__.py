"""Contracts shared by every process: settings, topics and event schemas. No I/O here."""
