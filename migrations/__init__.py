"""Ordered plain-SQL migrations, applied by `msgmem migrate` (a package only so they ship with it)."""
