"""Chat channel: a Slack- or Teams-style incoming webhook.

POSTs ``{"text": ..., "blocks": [...]}``: ``text`` alone is what Teams and
plain receivers read; Slack shows the blocks (the summary and an approve
button). 429 honours Retry-After, other 4xx give up, 5xx retry later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import ChannelSpec, OutboxView, SendResult
from jalon.connector.channels.common import UrlTarget, post

NAME = "chat"
BUTTON_LABELS = {"fr": "Voir et approuver", "en": "Review and approve"}


class ChatTarget(UrlTarget):
    pass


def _escape(text: str) -> str:
    # Slack's mrkdwn: only these three need escaping
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(payload: Mapping[str, Any]) -> dict[str, Any]:
    text = str(payload.get("text") or payload.get("subject") or "")
    body: dict[str, Any] = {"text": text}
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)[:3000]}}]
    approve = (payload.get("links") or {}).get("approve")
    if approve:
        label = BUTTON_LABELS.get(str(payload.get("language") or "fr"), BUTTON_LABELS["fr"])
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": approve},
        ]})
    body["blocks"] = blocks
    return body


@hookimpl
def jalon_channel_register() -> ChannelSpec:
    return ChannelSpec(name=NAME, title="Chat (Slack/Teams incoming webhook)", target_schema=ChatTarget)


@hookimpl
def jalon_channel_send(channel: str, message: OutboxView, settings: Mapping[str, Any]) -> SendResult | None:
    if channel != NAME:
        return None
    body = json.dumps(render(message.payload), ensure_ascii=False).encode("utf-8")
    post(message, settings, body=body, headers={"Content-Type": "application/json; charset=utf-8"})
    return SendResult(external_id=None)
