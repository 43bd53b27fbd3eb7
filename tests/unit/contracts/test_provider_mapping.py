"""Mapping files are checked when loaded: errors name the file and the field path, never
a value; an expression that cannot run fails then, not per message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.mapping_expr import ExpressionError, compile_expression
from contracts.provider_mapping import MappingFileError, load_mapping, load_mappings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "providers"
BASE = {
    "name": "acme-gw",
    "auth": {"type": "api_key", "header": "X-Key", "secret_env": "ACME_GW_KEY"},
    "channel": "account",
    "sections": [{"name": "messages", "rules": [
        {"emit": "message", "id": "id", "chat": "chat", "type": "kind", "types": {"text": "text"}, "text": "body"},
    ]}],  # fmt: skip
}


def write(tmp_path: Path, document: object, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def with_rule(**changes: object) -> dict:
    rule = dict(BASE["sections"][0]["rules"][0]) | changes  # type: ignore[index]
    return BASE | {"sections": [{"name": "messages", "rules": [rule]}]}


def test_the_examples_load() -> None:
    assert set(load_mappings([EXAMPLES / "whapi.yaml", EXAMPLES / "luminous.yaml"])) == {"whapi-declarative", "luminous"}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (with_rule(text="body ||"), "sections.0.rules.0.message.text: not a JMESPath expression: IncompleteExpressionError"),
        (with_rule(text="lower(body)"), "sections.0.rules.0.message.text: unknown JMESPath function lower()"),
        (with_rule(text="join(body)"), "sections.0.rules.0.message.text: join() takes 2 argument(s), given 1"),
        (with_rule(types={"text": "sms"}), "sections.0.rules.0.message.types.text: Input should be"),
        (with_rule(emit="poll"), "sections.0.rules.0: Input tag 'poll' found using 'emit' does not match"),
        (with_rule(id=None), "sections.0.rules.0.message.id"),
        (BASE | {"auth": {"type": "bearer", "secret_env": "X", "secret": "hunter2-SECRET"}}, "auth.bearer.secret: Extra inputs"),
        (BASE | {"auth": {"type": "hmac", "header": "X-Sig", "secret_env": "X"}}, "auth.hmac.algorithm: Field required"),
        (BASE | {"auth": {"type": "bearer", "secret_env": "lower-case"}}, "auth.bearer.secret_env: must be an environment variable name"),
        (BASE | {"name": "whapi"}, "name: is the name of a built-in provider"),
        (BASE | {"name": "../etc"}, "name: must be 1-40 of"),
        (BASE | {"envelope": ["messages"]}, "a section is named twice, or is also in envelope"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field_path(tmp_path: Path, document: dict, says: str) -> None:
    path = write(tmp_path, document)
    with pytest.raises(MappingFileError) as refused:
        load_mapping(path)
    assert str(refused.value).startswith(f"provider mapping {path}: ")
    assert says in str(refused.value)
    assert "SECRET" not in str(refused.value)


def test_not_yaml_and_not_a_mapping_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingFileError, match=r"not YAML \(\w+Error at line \d+\)"):
        load_mapping(write(tmp_path, "name: [unclosed\n  - `x"))
    with pytest.raises(MappingFileError, match="must be a YAML mapping, not list"):
        load_mapping(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(MappingFileError, match="cannot be read"):
        load_mapping(tmp_path / "absent.yaml")


def test_two_files_of_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingFileError, match="name is taken"):
        load_mappings([write(tmp_path, BASE, "a.yaml"), write(tmp_path, BASE, "b.yaml")])


def test_expressions_are_checked_deep_inside() -> None:
    assert compile_expression("a[?starts_with(name, 'x')].{n: name}").search({"a": [{"name": "xy"}]}) == [{"n": "xy"}]
    with pytest.raises(ExpressionError, match="unknown JMESPath function nope"):
        compile_expression("a[?nope(name)].b")
    with pytest.raises(ExpressionError, match="non-empty string, not int"):
        compile_expression(3)
