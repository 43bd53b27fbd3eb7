"""`msgmem`: the one command-line entry point.

    msgmem dev        run the whole system on the embedded local stack
    msgmem migrate    apply migrations/*.sql to DATABASE_URL
    msgmem topics     create the declared Kafka topics that are missing
    msgmem send       post fixture webhook files to a running ingest, signed as the provider would
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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


def _args_send(parser: argparse.ArgumentParser) -> None:
    from msgmem.send import PROVIDERS

    parser.add_argument("files", nargs="+", type=Path, help="webhook body files, posted unchanged")
    parser.add_argument("--provider", required=True, choices=PROVIDERS)
    parser.add_argument("--url", help="ingest base URL (default: the running `msgmem dev`, else INGEST_PORT)")


def _cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    from msgmem.send import SendError, send_files

    try:
        return 1 if send_files(args.files, args.provider, args.url, settings) else 0
    except SendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _no_args(_parser: argparse.ArgumentParser) -> None:
    return None


Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Settings, argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "dev": ("run the whole system on the embedded local stack (Kafka, Postgres, every service)", _no_args, _cmd_dev),
    "migrate": ("apply migrations/*.sql to DATABASE_URL, once each", _no_args, _cmd_migrate),
    "topics": ("create the declared Kafka topics that are missing", _no_args, _cmd_topics),
    "send": ("post webhook files to a running ingest, signed as the provider would", _args_send, _cmd_send),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msgmem", description="Message Memory")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command][2](settings, args)


if __name__ == "__main__":
    sys.exit(main())
