"""A provider defined by a mapping file (``contracts.provider_mapping``), not by code.

It is verified as a built-in one is: a bearer token or an API key header is checked before
the body is read; an HMAC header must be present and well-formed before the body is read,
and the body then proves it. The secret is read from the environment variable the file
names, once, when the file is loaded; unset, every delivery is 401 ("not configured").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from contracts.mapping_expr import SearchError
from contracts.provider_mapping import ApiKeyAuth, BearerAuth, HmacAuth, MappingFileError, ProviderMapping
from contracts.secret_policy import secret_problem
from contracts.settings import Environment, Settings
from ingest.errors import Unauthorized
from ingest.providers.base import bearer_token, same_secret, secret_value

_HEX = re.compile(r"[0-9a-fA-F]+")


class DeclarativeProvider:
    """``ingest.providers.base.Provider`` for one mapping file."""

    json_types: tuple[type, ...] = (dict,)

    def __init__(self, mapping: ProviderMapping, secret: SecretStr | None) -> None:
        self.mapping = mapping
        self.name = mapping.name
        self.max_body_bytes = mapping.max_body_bytes
        self._secret = secret
        auth = mapping.auth
        signed = (auth.header.lower(),) if isinstance(auth, HmacAuth) else ()  # kept, to re-verify
        self.kept_headers: tuple[str, ...] = ("content-type", "user-agent", *signed)

    @property
    def configured(self) -> bool:
        return self._secret is not None

    def check_headers(self, settings: Settings, headers: Mapping[str, str]) -> bool:
        auth = self.mapping.auth
        expected = secret_value(self._secret, self.name, auth.secret_env)
        if isinstance(auth, BearerAuth):
            token = bearer_token(headers)
            if token is None:
                raise Unauthorized("missing Bearer token")
            if not same_secret(expected, token):
                raise Unauthorized("wrong Bearer token")
            return True
        if isinstance(auth, ApiKeyAuth):
            given = headers.get(auth.header.lower())
            if not given:
                raise Unauthorized(f"missing {auth.header} header")
            if not same_secret(expected, given):
                raise Unauthorized(f"wrong {auth.header} header")
            return True
        self._signature(auth, headers)
        return False  # only the body can prove it

    def verify_body(self, settings: Settings, headers: Mapping[str, str], body: bytes) -> None:
        auth = self.mapping.auth
        if not isinstance(auth, HmacAuth):
            return
        secret = secret_value(self._secret, self.name, auth.secret_env)
        digest = hmac.new(secret, body, getattr(hashlib, auth.algorithm)).digest()
        if not hmac.compare_digest(digest, self._signature(auth, headers)):
            raise Unauthorized(f"{auth.header} does not match the body")

    @staticmethod
    def _signature(auth: HmacAuth, headers: Mapping[str, str]) -> bytes:
        """The digest the header carries; ``Unauthorized`` when it is missing or malformed."""
        value = headers.get(auth.header.lower())
        if not value:
            raise Unauthorized(f"missing {auth.header} header")
        form = f"{auth.prefix}<{auth.encoding} {auth.algorithm} digest>"
        if not value.startswith(auth.prefix):
            raise Unauthorized(f"{auth.header} is not of the form {form}")
        encoded = value[len(auth.prefix):].strip()
        size = hashlib.new(auth.algorithm).digest_size
        try:
            if auth.encoding == "hex":
                if not _HEX.fullmatch(encoded):
                    raise ValueError
                digest = bytes.fromhex(encoded)
            else:
                digest = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise Unauthorized(f"{auth.header} is not of the form {form}") from None
        if len(digest) != size:
            raise Unauthorized(f"{auth.header} is not of the form {form}")
        return digest

    def channel(self, payload: Any) -> str | None:
        try:
            value = self.mapping.channel.search(payload)
        except SearchError:
            return None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and value != "" else None


def build(mapping: ProviderMapping, settings: Settings) -> DeclarativeProvider:
    """The provider of ``mapping`` with its secret from the environment. In production a weak
    secret stops start-up, as a weak built-in one does."""
    secret = settings.named_secret(mapping.auth.secret_env)
    if secret is not None and settings.environment is Environment.PRODUCTION:
        problem = secret_problem(mapping.auth.secret_env, secret.get_secret_value())
        if problem:
            raise MappingFileError(f"provider {mapping.name}: {problem}")
    return DeclarativeProvider(mapping, secret)
