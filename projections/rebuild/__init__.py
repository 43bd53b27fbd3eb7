"""Rebuilding a projection from the log into shadow tables, comparing and swapping them in.

``run`` is the command (`msgmem projections rebuild`); ``plan``, ``ddl``, ``workers``,
``load``, ``compare``, ``swap`` and ``report`` are its steps."""
