"""`msgmem`: the one command-line entry point.

    msgmem dev        run the whole system on the embedded local stack
    msgmem migrate    apply migrations/*.sql to DATABASE_URL
    msgmem topics     create the declared Kafka topics that are missing
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from contracts.settings import Settings


def _cmd_dev(settings: Settings, _args: argparse.Namespace) -> int:
    from msgmem.dev import run_dev

    return run_dev(settings)


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from msgmem.migrate import migrate

    applied = asyncio.run(migrate(settings.database_url, statement_cache_size=settings.statement_cache_size))
    print(f"applied: {', '.join(applied)}" if applied else "up to date")
    return 0


def _cmd_topics(settings: Settings, _args: argparse.Namespace) -> int:
    from msgmem.kafka import ensure_topics

    report = asyncio.run(ensure_topics(settings))
    for name in report.created:
        print(f"created  {name}")
    for name in report.existing:
        print(f"exists   {name}")
    for warning in report.warnings:
        print(f"warning  {warning}", file=sys.stderr)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "dev": ("run the whole system on the embedded local stack (Kafka, Postgres, every service)", _cmd_dev),
    "migrate": ("apply migrations/*.sql to DATABASE_URL, once each", _cmd_migrate),
    "topics": ("create the declared Kafka topics that are missing", _cmd_topics),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msgmem", description="Message Memory")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command][1](settings, args)


if __name__ == "__main__":
    sys.exit(main())
