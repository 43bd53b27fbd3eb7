"""Starting in production with weak credentials: refused at settings load, naming the
setting and never its value (not even in pydantic's error text)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.settings import Settings

STRONG = "Zq8vN2rT-k5Lw9Xc3Hm7Pb4Yd6Fs1Gj0Ae"  # 34 characters of noise
DATABASE_URL = "postgresql://msgmem:Wq7-Lk2-Xz9-Rt4@db.internal:5432/postgres"


@pytest.fixture(autouse=True)
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)


def load() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "weak",
    ["changeme", "secret", "password", "test", "example", "CHANGEME", "test-secret-123", "passwordpassword",
     "<your-token-here>", "replace-me", "x7Kq2Lm9",  # short but random
     "changeme-changeme-changeme-changeme", "example" * 5, "test_test_test_test_test_test_test"],
)  # fmt: skip
@pytest.mark.parametrize("variable", ["WHAPI_TOKEN", "META_APP_SECRET", "RECALL_API_KEY", "KAFKA_SASL_PASSWORD"])
def test_a_weak_secret_is_refused_by_name_never_by_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, weak: str
) -> None:
    monkeypatch.setenv(variable, weak)
    with pytest.raises(ValidationError) as refused:
        load()
    text = str(refused.value)
    assert variable in text
    assert weak not in text and weak.lower() not in text.lower().replace(variable.lower(), "")


def test_a_strong_secret_and_a_password_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHAPI_TOKEN", STRONG)
    assert load().whapi_token.get_secret_value() == STRONG  # type: ignore[union-attr]


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_secret_counts_as_unset(monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    """Not a secret of zero characters that a comparison could match: no secret at all."""
    monkeypatch.setenv("RECALL_API_KEY", empty)
    monkeypatch.setenv("EVOLUTION_API_KEY", empty)
    settings = load()
    assert settings.recall_api_key is None and settings.evolution_api_key is None


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@db.internal:5432/postgres", "postgresql://postgres:@db.internal:5432/postgres",
     "postgres://db.internal/postgres", "host=db.internal user=postgres dbname=postgres"],
)  # fmt: skip
def test_a_database_url_without_a_password_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ValidationError, match="DATABASE_URL has no password") as refused:
        load()
    assert "db.internal" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres:Wq7Lk2Xz9@db.internal:5432/postgres",
     "postgresql://postgres@db.internal/postgres?password=Wq7Lk2Xz9",
     "host=db.internal user=postgres password=Wq7Lk2Xz9 dbname=postgres"],
)  # fmt: skip
def test_a_database_url_with_a_password_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert load().database_url == url


def test_outside_production_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("WHAPI_TOKEN", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    assert load().whapi_token.get_secret_value() == "test"  # type: ignore[union-attr]
