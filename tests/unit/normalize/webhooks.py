"""Provider webhook fixtures as RawDelivery objects, for the normalize and contract tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from contracts.raw import RawDelivery

WEBHOOKS = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
RECEIVED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PROVIDER_DIRS = {"whapi": "whapi", "meta": "meta_cloud", "evolution": "evolution"}

# sha256 (hex) of the media files, from tests/fixtures/webhooks/README.md
SHA256 = {
    "voice_note.ogg": "464110b337c34eb4afa3b3399046138902422ee61ba4eacd5778fb47f96563de",
    "audio_clip.mp3": "81d6fa49bf245d2f8ea757a7ad123c31d926786b4c4c0f9e26e1ae016becbba9",
    "receipt_photo.jpg": "fadbe700fe740831f573d7c62ef0e13b79bf00a14f92741d46357b7d99c0131f",
    "invoice_text.pdf": "bc6864ad42295f4202eea00b9059c5c287a1e32aa33fd1c1f7ae85c385da59b7",
    "sticker.webp": "20c4d9257f211ee4cc55cf594353ec2066fce4a61d5afd09c60f4251ee3fe828",
    "video_clip.mp4": "5dece7c805d55fbb620194dfdeaccf25c699e423a6d3d326b626ac94e17a3556",
}


def fixture_bytes(provider: str, case: str) -> bytes:
    return (WEBHOOKS / PROVIDER_DIRS[provider] / f"{case}.json").read_bytes()


def delivery(provider: str, case: str | None = None, *, body: bytes | None = None, channel: str | None = None,
             delivery_id: str | None = None) -> RawDelivery:  # fmt: skip
    return RawDelivery(
        delivery_id=delivery_id or f"dlv-{provider}-{case or 'inline'}",
        provider=provider,
        channel=channel,
        received_at=RECEIVED_AT,
        headers={"content-type": "application/json"},
        body=body if body is not None else fixture_bytes(provider, case or ""),
    )


def all_cases() -> list[tuple[str, str]]:
    return [
        (provider, path.stem)
        for provider, directory in PROVIDER_DIRS.items()
        for path in sorted((WEBHOOKS / directory).glob("*.json"))
    ]


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 20, hh, mm, ss, tzinfo=UTC)
