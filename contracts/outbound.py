"""The provider-neutral shape the business's own senders post to ingest's outbound endpoint.

Meta never echoes messages sent through its Cloud API, and a bot may send through any
provider, so senders report each send here. Ingest validates the body with this model and
appends it to wa.raw as a ``provider: "outbound"`` delivery; the normalize stage turns it
into ``MessageSent``.

``provider``, ``channel_id`` and ``provider_message_id`` must be what the sending
provider uses (for Meta: the phone_number_id and the ``wamid``), because the message's id
is derived from them: that is how later statuses and reactions, and a provider echo of the
same send, land on the same message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, AwareDatetime, Field, field_validator

from contracts.envelope import Frozen
from contracts.messages import ContactCard, LinkPreview, Location, MediaRef, MessageType

SCHEMA_VERSION = 1
SendingProvider = Literal["whapi", "meta", "evolution"]  # the names ingest's webhook routes use
PROVIDER_ALIASES = {"meta_cloud": "meta"}


class OutboundMessage(Frozen):
    """One message the business sent, as its sender reports it."""

    schema_version: int = SCHEMA_VERSION
    provider: SendingProvider
    channel_id: str = Field(min_length=1)
    chat_id: str = Field(min_length=1, validation_alias=AliasChoices("chat_id", "to"))
    is_group: bool | None = None  # derived from chat_id when omitted (Meta group ids are not JIDs)
    group_name: str | None = None
    contact_name: str | None = None
    provider_message_id: str = Field(min_length=1)
    type: MessageType = "text"
    text: str | None = None
    caption: str | None = None
    media: MediaRef | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    link: LinkPreview | None = None
    sent_at: AwareDatetime
    sender_id: str | None = None  # the business number or the bot's id
    sender_name: str | None = None  # the agent or bot that wrote it
    origin: Literal["agent", "system"] = "agent"
    # The approved template this send used, if any: outside the contact's 24-hour customer
    # service window only templates may be sent, so a send without one there is flagged.
    template: str | None = Field(default=None, min_length=1, max_length=512)
    reply_to_provider_message_id: str | None = Field(
        default=None, validation_alias=AliasChoices("reply_to_provider_message_id", "reply_to")
    )

    @field_validator("provider", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        return PROVIDER_ALIASES.get(value, value) if isinstance(value, str) else value
