"""`msgmem`: the one command-line entry point.

    msgmem dev        run the whole system on the embedded local stack
    msgmem migrate    apply migrations/*.sql to DATABASE_URL
    msgmem topics     create the declared Kafka topics that are missing, apply the retention policy
    msgmem send       post fixture webhook files to a running ingest, signed as the provider would
    msgmem dlq        list, show or retry dead letters
    msgmem media      media sweep: delete expired media objects, log a MediaExpired per row
    msgmem retention  retention sweep | preview: MESSAGE_RETENTION_DAYS and TRANSCRIPT_RETENTION_DAYS
    msgmem projections rebuild   rebuild projections from offset 0 into fresh tables and swap them in
    msgmem replay     re-run a stage over a range of its input (--from/--until offset or time)
    msgmem status     lag per stage and partition, dead-letter depth, newest row per table, AI spend (--days N)
    msgmem erase      forget a contact (--chat KEY | --phone NUMBER): rows, media files, cached AI results
    msgmem export     everything stored about a contact as JSON plus its media files
    msgmem mcp        the chat memory as MCP tools (stdio, or streamable HTTP with --transport http)

Without KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL of its own, a command uses the running
`msgmem dev`'s (``msgmem.devstate``); a broker or Postgres it cannot reach is one line on
stderr and exit code 3 (``msgmem.reach``). Libraries' log lines show only with --verbose.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from contracts.settings import Settings
from msgmem.devstate import with_dev_stack
from runtime.logging_setup import configure_logging
from msgmem.reach import unreachable

#: The exit code of a command that could not reach the broker or Postgres.
UNREACHABLE = 3


def _cmd_dev(settings: Settings, _args: argparse.Namespace) -> int:
    from msgmem.dev import run_dev

    return run_dev(settings)


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from msgmem.migrate import migrate

    applied = asyncio.run(migrate(settings.database_url, statement_cache_size=settings.statement_cache_size))
    print(f"applied: {', '.join(applied)}" if applied else "up to date")
    return 0


def _cmd_topics(settings: Settings, _args: argparse.Namespace) -> int:
    from runtime.kafka import describe_retention, ensure_topics

    report = asyncio.run(ensure_topics(settings))
    for name in report.created:
        print(f"created  {name}")
    for name in report.existing:
        print(f"exists   {name}")
    for name, old, new in report.retention_changed:
        print(f"retention {name}: {describe_retention(old)} -> {describe_retention(new)}")
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


def _args_dlq(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show", "retry"))
    parser.add_argument("--stage", help="only this stage's letters")
    parser.add_argument("--id", dest="ids", action="append", default=[], help="a dead letter id (repeatable)")
    parser.add_argument("--all", action="store_true", help="list: include resolved letters; retry: every open letter")
    parser.add_argument("--by", help='retry: who retries, as logged (default: $USER, else "msgmem")')


def _cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from msgmem.dlq import load, operator, retry, select

    letters = asyncio.run(load(settings))
    if args.action == "list":
        shown = [x for x in letters.values()
                 if (args.all or x.state != "resolved") and (args.stage in (None, x.letter.stage))]  # fmt: skip
        width = max([44, *(len(x.letter.dead_letter_id) for x in shown)])  # an item's id ends in "#path"
        print(f"{'id':<{width}} {'stage':<11} {'state':<8} {'age':>8}  error")
        for x in shown:
            print(f"{x.letter.dead_letter_id:<{width}} {x.letter.stage:<11} {x.state:<8} {_age(x.age_seconds):>8}  "
                  f"{x.letter.summary[:80]}")
        counts = {state: sum(x.state == state for x in letters.values()) for state in ("open", "retried", "resolved")}
        print(", ".join(f"{n} {state}" for state, n in counts.items()))
        return 0
    if args.action == "show":
        for letter_id in args.ids:
            x = letters.get(letter_id)
            if x is None:
                print(f"no dead letter {letter_id}", file=sys.stderr)
                return 1
            view = x.letter.model_dump(mode="json", exclude={"value_b64"})
            view |= {"value": x.letter.value.decode("utf-8", "replace")[:4000], "failures": x.failures,
                     "state": x.state, "retried": x.retried.model_dump(mode="json") if x.retried else None,
                     "resolved": x.resolved.model_dump(mode="json") if x.resolved else None}  # fmt: skip
            print(json.dumps(view, indent=2))
        return 0
    chosen = select(letters, stage=args.stage, ids=args.ids, everything=args.all)
    if not chosen:
        print("nothing to retry (name letters with --id, or --all)")
        return 0
    results = asyncio.run(retry(settings, chosen, by=operator(args.by)))
    for result in results:
        print(f"{'ok    ' if result.ok else 'failed'} {result.dead_letter_id}  {result.detail}")
    return 0 if all(r.ok for r in results) else 1


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _args_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--days", type=_positive_days, default=7,
                        help="AI usage and estimated spend over the last N days, today included (default 7)")


def _positive_days(text: str) -> int:
    days = int(text)
    if days < 1:
        raise argparse.ArgumentTypeError("--days must be at least 1")
    return days


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from msgmem.status import collect, render

    status = asyncio.run(collect(settings, args.days))
    print(json.dumps(status.as_json(), indent=2) if args.json else render(status))
    return 0


def _args_replay(parser: argparse.ArgumentParser) -> None:
    from msgmem.stages import STAGES

    parser.add_argument("stage", choices=sorted(p.name for p in STAGES),
                        help="the stage to re-run (projections are rebuilt with: msgmem projections rebuild)")
    parser.add_argument("--from", dest="start", help="offset (every partition) or ISO time; default: the beginning")
    parser.add_argument("--until", help="offset (exclusive) or ISO time; default: the end now")
    parser.add_argument("--chat", help="only this chat's outputs (chat key)")
    parser.add_argument("--partition", type=int, help="only this partition of the input topic")
    parser.add_argument("--dry-run", action="store_true", help="count, write nothing")


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from msgmem.replay import parse_position, replay

    summary = asyncio.run(replay(
        settings, args.stage, start=parse_position(args.start), until=parse_position(args.until),
        chat=args.chat, partition=args.partition, dry_run=args.dry_run,
    ))
    verb = "would write" if args.dry_run else "wrote"
    print(f"replayed {summary.inputs} input(s) of {summary.stage} in {summary.seconds:.1f}s: "
          f"{verb} {summary.outputs} output(s); {summary.failures} failed (see msgmem dlq list)")
    return 0


def _args_media(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("sweep",),
                        help="sweep: delete expired media objects, log MediaExpired for their rows")  # fmt: skip


def _cmd_media(settings: Settings, _args: argparse.Namespace) -> int:
    from streams.media.sweep import sweep_once

    print(asyncio.run(sweep_once(settings)))
    return 0


def _args_retention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("sweep", "preview"),
                        help="sweep: append MessagesExpired / TextsCleared to wa.retention for every chat with "
                             "something past MESSAGE_RETENTION_DAYS or TRANSCRIPT_RETENTION_DAYS (the erasures "
                             "projector applies them); preview: what the next sweep would remove, read-only")  # fmt: skip


def _cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from streams.media.retention_sweep import preview, sweep_once

    if args.action == "sweep":
        print(asyncio.run(sweep_once(settings)))
        return 0

    async def show() -> None:
        conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        try:
            for policy in await preview(conn, settings):
                print(policy.render())
        finally:
            await conn.close()

    asyncio.run(show())
    return 0


def _args_projections(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("rebuild",))
    parser.add_argument("--tables", action="append", default=[],
                        help="a projection (messages, media, embeddings, deadletters) or any of its tables; repeatable or "
                             "comma-separated; default: all")
    parser.add_argument("--dry-run", action="store_true", help="build and compare, swap nothing")
    parser.add_argument("--require-match", action="store_true", help="swap only if every table matches")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, help="load processes (default: one per core, at most 4)")
    parser.add_argument("--index-memory", type=int, default=2048, metavar="MB",
                        help="most maintenance_work_mem an index build gets (an HNSW graph is built in memory)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", action="store_true")


def _cmd_projections(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from projections.rebuild.run import RebuildError, rebuild, render

    try:
        report = asyncio.run(rebuild(
            settings, args.tables or None, not args.no_progress, dry_run=args.dry_run,
            require_match=args.require_match, batch_size=args.batch_size, workers=args.workers,
            index_memory_mb=args.index_memory,
        ))
    except RebuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(), indent=2, default=str) if args.json else render(report))
    return report.exit_code


def _args_erase(parser: argparse.ArgumentParser) -> None:
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--chat", help="a chat key (provider:channel:chat id)")
    subject.add_argument("--phone", help="a phone number: every chat of that contact")
    parser.add_argument("--reason", help="why, for the ledger (no personal data: it is kept on wa.erasures)")
    parser.add_argument("--by", help="who asks (default: $USER)")
    parser.add_argument("--json", action="store_true", help="print the receipt only, as JSON")


def _cmd_erase(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from contracts.erasure import SubjectError
    from msgmem.dlq import operator
    from runtime.erasures import ErasureTimeout, erase

    kind, value = ("chat", args.chat) if args.chat is not None else ("phone", args.phone)
    try:
        receipt = asyncio.run(erase(settings, kind, value, by=operator(args.by), reason=args.reason))
    except SubjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ErasureTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"erased {receipt.chats} chat(s)")
        for table, count in receipt.removed["tables"].items():
            print(f"  {table:<28} {count} row(s)")
        for storage, count in receipt.removed["storage"].items():
            print(f"  {storage + ' storage':<28} {count} file(s)")
        print("receipt:")
    print(json.dumps(receipt.to_json(), indent=2))
    return 0


def _args_export(parser: argparse.ArgumentParser) -> None:
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--chat", help="a chat key (provider:channel:chat id)")
    subject.add_argument("--phone", help="a phone number: every chat of that contact")
    parser.add_argument("--out", type=Path, required=True, help="folder for export.json and files/")


def _cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from contracts.erasure import SubjectError
    from msgmem.export import export

    kind, value = ("chat", args.chat) if args.chat is not None else ("phone", args.phone)
    try:
        summary = asyncio.run(export(settings, kind, value, args.out))
    except SubjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {summary.chats} chat(s), {summary.messages} message(s), {summary.files} file(s) to {summary.path}")
    return 0


def _args_compliance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=30, help="the last N days (default 30), unless --since is given")
    parser.add_argument("--since", help="ISO time the period starts")
    parser.add_argument("--until", help="ISO time the period ends (default: now)")
    parser.add_argument("--json", action="store_true")


def _cmd_compliance(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime, timedelta

    from msgmem.compliance import flagged, render

    def moment(text: str) -> datetime:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    try:
        until = moment(args.until) if args.until else datetime.now(UTC)
        since = moment(args.since) if args.since else until - timedelta(days=args.days)
    except ValueError:
        print("error: --since and --until take ISO times (2026-12-01 or 2026-12-01T09:00:00Z)", file=sys.stderr)
        return 2
    rows = asyncio.run(flagged(settings, since, until))
    if args.json:
        print(json.dumps({"since": since.isoformat(), "until": until.isoformat(),
                          "messages": [r.to_json() for r in rows]}, indent=2))  # fmt: skip
    else:
        print(render(rows, since, until))
    return 0


def _args_mcp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="stdio: the client starts this process; http: streamable HTTP on MCP_HOST:MCP_PORT /mcp")


def _cmd_mcp(settings: Settings, args: argparse.Namespace) -> int:
    from msgmem.mcp_server import run

    return run(settings, args.transport)


def _no_args(_parser: argparse.ArgumentParser) -> None:
    return None


Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Settings, argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "dev": ("run the whole system on the embedded local stack (Kafka, Postgres, every service)", _no_args, _cmd_dev),
    "migrate": ("apply migrations/*.sql to DATABASE_URL, once each", _no_args, _cmd_migrate),
    "topics": ("create the declared Kafka topics that are missing; set the retention policy on existing ones",
               _no_args, _cmd_topics),
    "send": ("post webhook files to a running ingest, signed as the provider would", _args_send, _cmd_send),
    "dlq": ("list, show or retry dead letters (wa.deadletter)", _args_dlq, _cmd_dlq),
    "media": ("media retention: `media sweep` deletes expired objects (the media worker also runs it hourly)",
              _args_media, _cmd_media),
    "retention": ("message and transcript retention: `retention sweep` logs the policies' cut-offs (the media "
                  "worker also runs it hourly); `retention preview` shows what the next sweep removes",
                  _args_retention, _cmd_retention),
    "projections": ("rebuild projections from the log into fresh tables, compare, and swap them in",
                    _args_projections, _cmd_projections),
    "replay": ("re-run a stage over a range of its input topic, beside the live workers", _args_replay, _cmd_replay),
    "status": ("lag per stage and partition, dead-letter depth, newest row per table, AI spend", _args_status, _cmd_status),
    "erase": ("forget a contact: every row, media file and AI result cached only for it; prints a receipt",
              _args_erase, _cmd_erase),
    "export": ("everything stored about a contact (messages, versions, media and their texts, files) as JSON",
               _args_export, _cmd_export),
    "compliance": ("outbound messages sent while the chat was opted out or outside the 24-hour window",
                   _args_compliance, _cmd_compliance),
    "mcp": ("serve the chat memory as MCP tools (search_memory, get_context, list_chats, get_messages)", _args_mcp,
            _cmd_mcp),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msgmem", description="Message Memory")
    verbose = {"action": "store_true", "help": "also show the libraries' log lines (Kafka, HTTP, Faust)"}
    parser.add_argument("-v", "--verbose", **verbose)  # type: ignore[arg-type]
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("-v", "--verbose", default=argparse.SUPPRESS, **verbose)  # type: ignore[arg-type]
        add_args(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    if args.command != "dev":
        settings = with_dev_stack(settings)
    configure_logging(settings.log_level, libraries=None if args.verbose else logging.CRITICAL)
    try:
        return COMMANDS[args.command][2](settings, args)
    except Exception as exc:
        line = unreachable(exc, settings)
        if line is None:
            raise
        print(f"msgmem: {line}", file=sys.stderr)
        return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
