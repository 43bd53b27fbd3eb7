"""The normaliser of a declarative provider: its mapping file's sections and rules applied
to a delivery (``contracts.provider_mapping``).

As the built-in normalisers: each item on its own (a bad one fails at its path, its
neighbours still become events); an item no rule takes, or one a rule cannot name (no id,
no chat), and every item of a top-level member the mapping does not know, becomes a
``ProviderEventUnsupported`` that keeps it whole; a delivery with nothing in it still
leaves one event. Nothing is dropped without a trace.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from contracts.messages import MessageEvent
from contracts.provider_mapping import EventRule, ProviderMapping, Section
from contracts.raw import RawDelivery
from streams.normalize.errors import MalformedField, UnparseableDelivery
from streams.normalize.providers.common import Items, Json, Normalised, Source, load_body
from streams.normalize.providers.mapped_rules import BUILDERS
from streams.normalize.providers.mapped_values import Missing, first_chat, json_type, moment, search, text


class DeclarativeNormaliser:
    """``streams.normalize.providers.Normaliser`` for one mapping file."""

    def __init__(self, mapping: ProviderMapping) -> None:
        self.mapping = mapping
        self.name = mapping.name
        self._known = frozenset(mapping.envelope) | {s.name for s in mapping.sections}

    def __call__(self, delivery: RawDelivery, *, business_numbers: Collection[str] = frozenset()) -> Normalised:
        body = load_body(delivery)
        if not isinstance(body, dict):
            raise UnparseableDelivery(f"{self.name} delivery is a JSON {json_type(body)}, not an object")
        channel = text(self.mapping.channel, body, "channel") or delivery.channel
        if not channel:
            raise UnparseableDelivery(f"{self.name} delivery names no channel (channel)")
        source = Source(self.name, channel, delivery)
        delivery_kind = text(self.mapping.kind, body, "kind")
        items = Items()
        for section in self.mapping.sections:
            found = self._items(section, body)
            context = (section, delivery_kind, body, source, business_numbers)
            if isinstance(found, dict):
                items.one(section.name, found, self._item, *context)
            else:
                items.each(section.name, found, self._item, *context)
        for member, value in body.items():
            if member not in self._known:
                self._unmapped(items, member, value, delivery_kind, body, source)
        if not items.events and not items.failures:
            nothing = source.provider_event(delivery_kind or "empty", body, reason="a delivery with no items")
            items.events.append(nothing)
        return items.result()

    def _item(
        self, item: Any, section: Section, kind: str | None, body: Json, source: Source, numbers: Collection[str]
    ) -> MessageEvent:
        """The event of the first rule whose ``when`` holds; no rule, or no id: unsupported."""
        for index, rule in enumerate(section.rules):
            if rule.when is not None and not search(rule.when, item, f"rules[{index}].when"):
                continue
            if isinstance(rule, EventRule):
                return self._event(item, rule, section.name, kind, body, source)
            try:
                build = BUILDERS[rule.emit]
                return build(rule, item, self._raw(rule.raw, item), source, numbers)  # type: ignore[operator]
            except Missing as missing:
                reason = f"rule {index} ({rule.emit}) of section {section.name} found no {missing.field}"
                return self._event(item, self.mapping.unmapped, section.name, kind, body, source, reason)
        return self._event(item, self.mapping.unmapped, section.name, kind, body, source,
                           f"no rule of section {section.name} took it")  # fmt: skip

    @staticmethod
    def _items(section: Section, body: Json) -> Any:
        """The section's items: its ``items`` expression's, or the body's member of its name."""
        if section.items is None:
            return body.get(section.name)
        return search(section.items, body, f"sections.{section.name}.items")

    @staticmethod
    def _raw(expr: Any, data: Any) -> Json:
        raw = data if expr is None else search(expr, data, "raw")
        return raw if isinstance(raw, dict) else {"value": raw}

    def _unmapped(self, items: Items, member: str, value: Any, kind: str | None, body: Json, source: Source) -> None:
        """A top-level member the mapping does not know: one unsupported event per item."""
        unmapped = self.mapping.unmapped
        if isinstance(value, list):
            items.each(member, value, self._event, unmapped, member, kind, body, source)
        elif value not in (None, "", {}):
            items.one(member, value, self._event, unmapped, member, kind, body, source)

    def _event(
        self, item: Any, rule: Any, section: str, kind: str | None, body: Json, source: Source,
        reason: str | None = None,
    ) -> MessageEvent:  # fmt: skip
        """A ``ProviderEventUnsupported`` keeping ``item``; its expressions are searched in
        ``{section, kind, item, body}``. Never fails on the item's content (a time that
        cannot be read is the delivery's): what it is not is what it is kept for."""
        context = {"section": section, "kind": kind, "item": item, "body": body}
        try:
            occurred_at = moment(rule.timestamp, context, source.delivery.received_at)
        except MalformedField:
            occurred_at = source.delivery.received_at
        provider_type = text(rule.provider_type, context, "provider_type") or kind or section
        key = search(rule.key, context, "key")
        raw = item if rule is self.mapping.unmapped or rule.raw is None else search(rule.raw, context, "raw")
        return source.provider_event(
            provider_type, raw, chat_id=first_chat(search(rule.chat, context, "chat")),
            key=key if isinstance(key, str) else "", occurred_at=occurred_at, reason=reason,
        )  # fmt: skip
