"""The values from a delivery that become one segment of a provider API path.

A media id (Whapi ``/media/{id}``, Meta ``/{version}/{id}``) must match ``MEDIA_ID``: letters,
digits, ``_``, ``-`` and inner dots, starting with a letter or digit, so never ``.``, ``..``,
a slash or an escape that a server or a client would turn into another path. An Evolution
instance name (``/chat/getBase64FromMediaMessage/{instance}``) is freer text, but never a dot
segment, a slash, a backslash, ``%``, ``?``, ``#`` or a control character.

Pure: the checks return a problem text naming the field and the rule, never the value.
"""

from __future__ import annotations

import re

MEDIA_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,254}")
INSTANCE = re.compile(r"(?!\.{1,2}$)[^\x00-\x1f\x7f/\\%?#]{1,128}")


def media_id_problem(value: str, field: str = "provider_media_id") -> str | None:
    if MEDIA_ID.fullmatch(value):
        return None
    return f"{field} does not match the media id pattern {MEDIA_ID.pattern}"


def instance_problem(value: str, field: str = "channel_id") -> str | None:
    if INSTANCE.fullmatch(value):
        return None
    return f"{field} is not a usable Evolution instance name (no dot segment, slash, %, ?, # or control character)"
