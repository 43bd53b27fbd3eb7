"""Write the JSON Schemas of our contracts to ``contracts/schemas/``.

Run ``python -m contracts.export_schemas`` after changing a contract model and commit the
result; a unit test fails while the committed files differ from the models. Consumers in
other languages (and the outbound senders) read these files instead of our Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts import embeddings, enrichment, media, messages, retention
from contracts.outbound import OutboundMessage

SCHEMA_DIR = Path(__file__).with_name("schemas")


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema: topics as written on the wire, ingest bodies as accepted."""
    wa_messages = TypeAdapter(messages.MessageEvent).json_schema(mode="serialization")
    wa_messages = {"title": messages.TOPIC, **wa_messages}
    out = {
        f"{messages.TOPIC}.json": wa_messages,
        "outbound.json": OutboundMessage.model_json_schema(),
    }
    for topic, union in (
        (media.TOPIC, media.MediaEvent),
        (enrichment.TRANSCRIPTS_TOPIC, enrichment.TranscriptEvent),
        (enrichment.CAPTIONS_TOPIC, enrichment.CaptionEvent),
        (enrichment.DOCUMENTS_TOPIC, enrichment.DocumentEvent),
        (embeddings.TOPIC, embeddings.EmbeddingEvent),
        (retention.TOPIC, retention.RetentionEvent),
    ):
        out[f"{topic}.json"] = {"title": topic, **TypeAdapter(union).json_schema(mode="serialization")}
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in export_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written_path)
