"""Rebuilding a projection from the log into shadow tables, comparing and swapping them in.

``run`` is the command (`msgmem projections rebuild`); ``plan``, ``ddl``, ``workers``,
``load``, ``indexes``, ``compare``, ``swap`` and ``report`` are its steps; ``targets`` says what
each projection is to them."""
