"""``python -m msgmem ...``: the `msgmem` command, for clients that start a module (an MCP client)."""

import sys

from msgmem.cli import main

sys.exit(main())
