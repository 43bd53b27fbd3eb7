"""The log handler keeps tokens in URLs and exception messages out of what it writes."""

from __future__ import annotations

import io
import logging

import pytest

from runtime.log_privacy import HTTP_CLIENT_LOGGERS, redact
from runtime.logging_setup import configure_logging

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TEXT = "my card pin is 4321"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage "HTTP/1.1 200 OK"', BOT_TOKEN),
        ("Authorization: Bearer s3cr3t-t0ken-value", "s3cr3t-t0ken-value"),
        ("GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=v3rify-me&hub.challenge=1", "v3rify-me"),
        ('{"apikey": "evo-key-123", "event": "x"}', "evo-key-123"),
        ("postgresql://postgres:pa55word@127.0.0.1:5432/postgres", "pa55word"),
    ],
)
def test_credential_shapes_are_masked(line: str, secret: str) -> None:
    assert secret not in redact(line) and "<redacted>" in redact(line)


@pytest.fixture
def output() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, ticker=False)
    yield stream
    configure_logging("INFO", ticker=False)


def test_http_clients_never_log_their_request_lines(output: io.StringIO) -> None:
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).info("HTTP Request: POST https://api.telegram.org/bot%s/sendMessage", BOT_TOKEN)
    assert output.getvalue() == ""


def test_a_logged_traceback_names_the_type_not_the_message(output: io.StringIO) -> None:
    try:
        raise ValueError(TEXT)
    except ValueError:
        logging.getLogger("streams.x").exception("batch failed")
    written = output.getvalue()
    assert "batch failed" in written and "Traceback" in written and "ValueError" in written
    assert TEXT not in written


def test_the_cli_hides_library_lines_below_its_threshold() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, ticker=False, libraries=logging.CRITICAL)
    try:
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
        logging.getLogger("msgmem.cli").warning("ours")
    finally:
        configure_logging("INFO", ticker=False)
    assert stream.getvalue().count("\n") == 1 and "ours" in stream.getvalue()
