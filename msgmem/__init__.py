"""Operations for Message Memory: the `msgmem` command, its operations and the local stack. Nothing imports it."""
