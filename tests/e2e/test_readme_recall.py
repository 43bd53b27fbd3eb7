"""The README's recall and memory examples, run as written: the bundled Whapi fixtures posted to
ingest, through normalize and the projector (real processes, real broker and Postgres), then the
README's own ``curl`` commands (parsed from README.md, so the two stay in step) against the recall
API with no OPENAI_API_KEY, and its Python example in a process of its own. Each must answer
what the README shows."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from tests.e2e.test_webhook_to_rows import WEBHOOKS, post, rows_when
from tests.integration.test_ingest import ingest_settings
from tests.integration.test_recall_api import KEY, recall_service
from tests.services import running

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"


def readme_section(title: str) -> str:
    return README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_example(title: str = "Recall for agents") -> tuple[str, list[str], str]:
    """The curl command under ``title``: its URL, its headers, and the answer shown."""
    section = readme_section(title)
    [command] = re.findall(r"```sh\n(.*?)```", section, re.S)
    answer = re.findall(r"```json\n(.*?)```", section, re.S)[0]
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "curl", argv
    headers, urls, rest = [], [], iter(argv[1:])
    for arg in rest:
        if arg == "-H":
            headers.append(next(rest))
        else:
            assert not arg.startswith("-"), f"the test does not run curl option {arg}"
            urls.append(arg)
    [url] = urls
    return url, headers, answer


def test_the_readme_example_is_parsed() -> None:
    url, headers, answer = readme_example()
    assert url.startswith("http://127.0.0.1:8090/chats/") and "/recall?" in url
    assert headers == ["Authorization: Bearer $RECALL_API_KEY"] and '"snippets"' in answer


@pytest.fixture(scope="module")
def pipeline(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    logs = tmp_path_factory.mktemp("readme-logs")
    with running("normalize", module_settings, logs), running("projector", module_settings, logs):
        yield module_settings


async def send_fixtures(pipeline: Settings, db: asyncpg.Connection, chat_key: str) -> None:
    """`msgmem send tests/fixtures/webhooks/whapi/*.json`, then wait for the projector."""
    async with serving(create_app(ingest_settings(pipeline))) as ingest, httpx.AsyncClient(base_url=ingest) as client:
        for path in sorted((WEBHOOKS / "whapi").glob("*.json")):
            await post(client, "whapi", path.read_bytes())
    await rows_when(db, "select 1 from chat_messages where chat_key = $1 and body is not null", chat_key,
                    expect=lambda rows: len(rows) >= 2)  # fmt: skip


async def run_curl(pipeline: Settings, url: str, headers: list[str], log_dir: Path) -> httpx.Response:
    """The README's curl command against a recall service on the pipeline's Postgres, without OPENAI_API_KEY."""
    recall_settings = pipeline.model_copy(update={"openai_api_key": None, "recall_api_key": SecretStr(KEY)})
    with recall_service(recall_settings, log_dir) as base:
        env = {"RECALL_API_KEY": KEY}
        expanded = [re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), os.environ.get(m.group(1), "")), h)
                    for h in headers]  # fmt: skip
        request_headers = dict(h.split(": ", 1) for h in expanded)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(url.replace("http://127.0.0.1:8090", base), headers=request_headers)


async def test_the_readme_recall_example_returns_snippets(
    pipeline: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    url, headers, shown = readme_example()
    chat_key = url.split("/chats/", 1)[1].split("/recall", 1)[0]
    await send_fixtures(pipeline, db, chat_key)
    answer = await run_curl(pipeline, url, headers, tmp_path)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["chat"] == chat_key and body["snippets"], body
    assert body["semantic"] == {"used": False, "reason": "OPENAI_API_KEY is not set"}
    top = body["snippets"][0]
    assert f'"text": "{top["text"]}"' in shown and f'"reason": "{body["semantic"]["reason"]}"' in shown
    assert (top["source"], top["matched"], top["sender_name"]) == ("text", "words", "Dana Silva")


async def test_the_readme_memory_examples_give_the_context_shown(
    pipeline: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    url, headers, shown = readme_example("Memory for agents")
    chat_key = url.split("/chats/", 1)[1].split("/context", 1)[0]
    await send_fixtures(pipeline, db, chat_key)
    answer = await run_curl(pipeline, url, headers, tmp_path)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (tmp_path / "answer.json").write_text(json.dumps(body, indent=1))
    assert body["chat"] == chat_key and body["messages"], body
    expected = json.loads(shown)
    assert [(m["role"], m["content"]) for m in body["messages"]] == [(m["role"], m["content"]) for m in expected["messages"]]
    for field in ("query", "query_source", "recall_included", "recall_count", "window_count", "tokens", "semantic"):
        assert body[field] == expected[field], field

    [program] = re.findall(r"```python\n(.*?)```", readme_section("Memory for agents"), re.S)
    env = {**os.environ, "DATABASE_URL": pipeline.database_url, "OPENAI_API_KEY": ""}
    printed = subprocess.run([sys.executable, "-c", program], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, check=True).stdout  # fmt: skip
    assert printed.splitlines()[-1] == f"{body['messages'][-1]['role']}: {body['messages'][-1]['content']}"
