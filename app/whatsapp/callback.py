"""The `biz_opaque_callback_data` we send with every message, and reading it back from a status webhook.

WhatsApp returns it with the first status of a send, so a status can find its message even when the send's answer
(and with it the wamid) was lost. The message id comes after the last ':'; what comes before names where the
message belongs, so a status can be checked against the row it points at:
    "r<run id>:<message id>"   a message of a run (a campaign's recipients …)
    "m:<message id>"           a message sent on its own (an inbox reply, a confirmation …)
Sends made before runs existed used "c<campaign id>:…", "inbox:…" and "optout:…"; they are still read.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ID_DIGITS = 18


@dataclass(frozen=True)
class Callback:
    message_id: int
    run_id: int | None = None  # "r<id>"
    campaign_id: int | None = None  # legacy "c<id>"


def encode(message_id: int, run_id: int | None = None) -> str:
    return f"r{run_id}:{message_id}" if run_id is not None else f"m:{message_id}"


def decode(data: str | None) -> Callback | None:
    """The callback in `data`, or None when it is not one of ours."""
    head, separator, tail = (data or "").rpartition(":")
    if not separator or not tail.isdigit() or len(tail) > MAX_ID_DIGITS:
        return None
    message_id = int(tail)
    if head[:1] in ("r", "c") and head[1:].isdigit() and len(head) <= MAX_ID_DIGITS + 1:
        key = "run_id" if head[0] == "r" else "campaign_id"
        return Callback(message_id, **{key: int(head[1:])})
    return Callback(message_id) if head in ("m", "inbox", "optout") else None
