"""describe_error: what an exception may say in a log, a dead letter or an alert."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from contracts.deadletter import DeadLettered
from contracts.errors import SafeError, describe_error, format_exception, with_type
from contracts.settings import Settings

PHONE = "+15557654321"
TEXT = "my card pin is 4321"


class _Send(BaseModel):
    count: int
    tags: dict[str, int]


def _validation_error() -> ValidationError:
    try:
        _Send.model_validate({"count": TEXT, "tags": {PHONE: TEXT}})
    except ValidationError as exc:
        return exc
    raise AssertionError("valid")


def test_a_validation_error_is_types_at_field_paths() -> None:
    text = describe_error(_validation_error(), "messages[1]")
    assert text == "ValidationError: int_parsing at messages[1].count; int_parsing at messages[1].tags.*"


@pytest.mark.parametrize(
    "exc",
    [ValueError(f"invalid literal for int(): {PHONE!r}"), TypeError(TEXT), KeyError(TEXT), RuntimeError(PHONE),
     OSError(f"cannot open /tmp/{PHONE}")],
)  # fmt: skip
def test_foreign_messages_are_left_out(exc: Exception) -> None:
    assert describe_error(exc) == type(exc).__name__


def test_code_written_messages_and_known_names_are_kept() -> None:
    class Refusal(SafeError):
        pass

    assert describe_error(Refusal("over 1,024 bytes"), "x") == "x: Refusal: over 1,024 bytes"
    assert describe_error(KeyError("provider_message_id")) == "KeyError 'provider_message_id'"


def test_a_database_error_keeps_its_sqlstate_only() -> None:
    class DataError(Exception):
        sqlstate = "22P02"

    assert describe_error(DataError(f'invalid input syntax for type json: "{TEXT}"')) == "DataError (SQLSTATE 22P02)"


def test_a_dead_letter_carries_the_description() -> None:
    letter = DeadLettered.of("s", topic="t", partition=0, offset=1, key=None, value=b"{}", headers=[],
                             error=_validation_error(), attempts=1)  # fmt: skip
    assert TEXT not in letter.error and PHONE not in letter.error and letter.error.startswith("ValidationError: ")
    assert letter.summary == letter.error and with_type("KeyError", "old text") == "KeyError: old text"


def test_a_traceback_names_types_and_frames_only() -> None:
    try:
        try:
            int(PHONE + "x")
        except ValueError as inner:
            raise RuntimeError(TEXT) from inner
    except RuntimeError as exc:
        text = format_exception(exc)
    assert PHONE not in text and TEXT not in text
    assert "ValueError" in text and text.rstrip().endswith("RuntimeError") and "direct cause" in text
    assert "test_errors.py" in text


def test_settings_never_print_the_value_they_refuse() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, ingest_port=TEXT)  # type: ignore[call-arg, arg-type]
    assert TEXT not in str(refused.value)
