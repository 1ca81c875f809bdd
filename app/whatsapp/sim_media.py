"""The simulator's media and read-receipt calls: upload, URL, download and deletion of media, and marking a
customer's message read (with an optional typing indicator).

Shapes follow Meta's Media Upload API, Media API and typing-indicator references. Refusals Meta reports at the
Graph level (a missing parameter, an unknown object) have no `error_data`; the rest use `MetaError`'s shape. Media
is kept in memory up to `MEDIA_STORE_BYTES`, oldest dropped first, as Meta drops uploads after 30 days.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from app.whatsapp.sim_config import SimulatorConfig
from app.whatsapp.sim_meta import MetaError
from app.whatsapp.sim_rules import INVALID_TOKEN, GraphError, unsupported

Response = tuple[int, Any, list[tuple[str, str]]]

KB, MB = 1024, 1024 * 1024
_AUDIO, _DOCUMENT, _IMAGE, _VIDEO = 16 * MB, 100 * MB, 5 * MB, 16 * MB
# Meta's supported types with their size limits, in the order its refusal lists them. WebP is a sticker: 100 KB
# static, 500 KB animated.
MEDIA_TYPES: dict[str, int] = {
    "audio/aac": _AUDIO, "audio/mp4": _AUDIO, "audio/mpeg": _AUDIO, "audio/amr": _AUDIO, "audio/ogg": _AUDIO,
    "audio/opus": _AUDIO, "application/vnd.ms-powerpoint": _DOCUMENT, "application/msword": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _DOCUMENT,
    "application/pdf": _DOCUMENT, "text/plain": _DOCUMENT, "application/vnd.ms-excel": _DOCUMENT,
    "image/jpeg": _IMAGE, "image/png": _IMAGE, "image/webp": 500 * KB, "video/mp4": _VIDEO, "video/3gpp": _VIDEO,
}
STATIC_STICKER_BYTES = 100 * KB
MEDIA_STORE_BYTES = 256 * MB  # a benchmark uploading in a loop must not grow the simulator without bound
RECEIVED_KEPT = 100_000  # customer message ids that can be marked read, newest kept


@dataclass(frozen=True)
class SimMedia:
    id: str
    mime_type: str
    data: bytes
    sha256: str
    phone_number_id: str
    uploaded_at: float


class MediaStore:
    """Uploaded media by id, within a total size; adding past it drops the oldest uploads."""

    def __init__(self, limit_bytes: int = MEDIA_STORE_BYTES):
        self.limit_bytes = limit_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[str, SimMedia] = OrderedDict()
        self._bytes = 0

    def __contains__(self, media_id: object) -> bool:
        return media_id in self._items

    def add(self, data: bytes, mime_type: str, phone_number_id: str) -> SimMedia:
        with self._lock:
            media_id = _new_media_id(self._items)
            media = SimMedia(media_id, mime_type, data, hashlib.sha256(data).hexdigest(), phone_number_id,
                             time.time())
            self._items[media_id] = media
            self._bytes += len(data)
            while self._bytes > self.limit_bytes and len(self._items) > 1:
                self._bytes -= len(self._items.popitem(last=False)[1].data)
            return media

    def get(self, media_id: str) -> SimMedia | None:
        return self._items.get(media_id)

    def delete(self, media_id: str) -> bool:
        with self._lock:
            media = self._items.pop(media_id, None)
            if media is not None:
                self._bytes -= len(media.data)
            return media is not None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"stored": len(self._items), "bytes": self._bytes}


def _new_media_id(taken: OrderedDict[str, SimMedia]) -> str:
    while True:  # Meta's media ids are 15-16 digit numbers
        media_id = str(10**15 + secrets.randbelow(9 * 10**15))
        if media_id not in taken:
            return media_id


class ReceivedMessages:
    """Ids of the customer messages the simulator posted, which the business may mark as read."""

    def __init__(self, limit: int = RECEIVED_KEPT):
        self._lock = threading.Lock()
        self._limit = limit
        self._ids: OrderedDict[str, bool] = OrderedDict()  # wamid -> marked read
        self.read = 0
        self.typing = 0

    def add(self, wamid: str) -> None:
        with self._lock:
            self._ids[wamid] = False
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def mark_read(self, wamid: str, typing: bool) -> bool:
        with self._lock:
            if wamid not in self._ids:
                return False
            self.read += 0 if self._ids[wamid] else 1
            self.typing += 1 if typing else 0
            self._ids[wamid] = True
            return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"received": len(self._ids), "marked_read": self.read, "typing_indicators": self.typing}


# --- routes --------------------------------------------------------------------------------------------------------

def media_route(config: SimulatorConfig, store: MediaStore, request: Request, parts: list[str]) -> Response | None:
    """Answer a media call, or None when the path is not one: POST /{version}/{phone-number-id}/media,
    GET|DELETE /{version}/{media-id}, GET /_sim/media/{media-id} (the download URL)."""
    if len(parts) == 3 and parts[:2] == ["_sim", "media"] and request.method == "GET":
        return _download(config, store, request, parts[2])
    if parts[0] == "_sim" or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "media"):
        return None
    if not _authorized(config, request):
        return invalid_token()
    if len(parts) == 3:
        return _upload(config, store, request, parts[1]) if request.method == "POST" else _unsupported(
            request.method, parts[1])
    if request.method == "GET":
        return _media_url(store, request, parts[1])
    if request.method == "DELETE":
        return _delete(store, request, parts[1])
    return _unsupported(request.method, parts[1])


def _upload(config: SimulatorConfig, store: MediaStore, request: Request, phone_number_id: str) -> Response:
    if phone_number_id != config.phone_number_id:
        return _unsupported("POST", phone_number_id)
    if request.form.get("messaging_product") != "whatsapp":
        return graph_error("(#100) The parameter messaging_product is required.")
    upload = request.files.get("file")
    if upload is None:
        return graph_error("(#100) The parameter file is required.")
    mime_type = upload.mimetype or request.form.get("type", "")
    if mime_type not in MEDIA_TYPES:
        return graph_error(f"(#100) Param file must be a file with one of the following types: "
                           f"{', '.join(MEDIA_TYPES)}. Received file of type '{mime_type}'.")
    data = upload.read()
    limit = _size_limit(mime_type, data)
    if len(data) > limit:
        return _whatsapp_error(100, f"File Too Large: {mime_type} files may be at most {limit} bytes; this one has "
                                    f"{len(data)}.")
    return 200, {"id": store.add(data, mime_type, phone_number_id).id}, []


def _size_limit(mime_type: str, data: bytes) -> int:
    if mime_type == "image/webp" and not _animated_webp(data):
        return STATIC_STICKER_BYTES
    return MEDIA_TYPES[mime_type]


def _animated_webp(data: bytes) -> bool:
    # An extended WebP ("VP8X" chunk) sets bit 1 of its flags byte when it holds an animation.
    return data[12:16] == b"VP8X" and len(data) > 20 and bool(data[20] & 0x02)


def _media_url(store: MediaStore, request: Request, media_id: str) -> Response:
    media = _owned(store, request, media_id)
    if media is None:
        return _unsupported("GET", media_id)
    # Meta's reference example shows file_size as a string; its answers, and the clients that parse them, use a number.
    return 200, {"messaging_product": "whatsapp", "url": f"{request.host_url}_sim/media/{media.id}",
                 "mime_type": media.mime_type, "sha256": media.sha256, "file_size": len(media.data),
                 "id": media.id}, []


def _delete(store: MediaStore, request: Request, media_id: str) -> Response:
    if _owned(store, request, media_id) is None or not store.delete(media_id):
        return _unsupported("DELETE", media_id)
    return 200, {"success": True}, []


def _owned(store: MediaStore, request: Request, media_id: str) -> SimMedia | None:
    """The media, unless `?phone_number_id=` names another number (Meta's check that it belongs to that number)."""
    media = store.get(media_id)
    owner = request.args.get("phone_number_id")
    return None if media is None or (owner and owner != media.phone_number_id) else media


def _download(config: SimulatorConfig, store: MediaStore, request: Request, media_id: str) -> Response:
    if not _authorized(config, request):
        return invalid_token()
    media = store.get(media_id)
    if media is None:
        return graph_error(f"Media {media_id} not found.", status=404)
    return 200, media.data, [("Content-Type", media.mime_type)]


def is_read_receipt(payload: Any) -> bool:
    """A POST /messages body that updates a received message's status rather than sending one."""
    return isinstance(payload, dict) and "status" in payload


def mark_read(received: ReceivedMessages, payload: dict[str, Any]) -> Response:
    """Mark a customer's message read, showing a typing indicator when asked: 200 {"success": true}."""
    if payload.get("messaging_product") != "whatsapp":
        return graph_error("(#100) The parameter messaging_product is required.")
    message_id = payload.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        return graph_error("(#100) The parameter message_id is required.")
    if payload.get("status") != "read":
        return _whatsapp_error(100, "Param status must be 'read'.")
    typing = payload.get("typing_indicator")
    if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
        return _whatsapp_error(100, "Param typing_indicator['type'] must be 'text'.")
    if not received.mark_read(message_id, typing is not None):
        return _whatsapp_error(100, f"Invalid message_id: {message_id} is not a message this phone number received.")
    return 200, {"success": True}, []


# --- Graph-shaped answers --------------------------------------------------------------------------------------------

def graph_error(message: str, code: int = 100, kind: str = "OAuthException", subcode: int | None = None,
                status: int = 400) -> Response:
    """A Graph API error (sim_rules.GraphError's shape: no error_data) with the HTTP status given."""
    return status, GraphError(code, message, kind, subcode).body(), []


def invalid_token() -> Response:
    return 401, INVALID_TOKEN.body(), [("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth '
                                                            'access token - Cannot parse access token"')]


def _unsupported(method: str, object_id: str) -> Response:
    error = unsupported(method, object_id)
    return error.http_status, error.body(), []


def _whatsapp_error(code: int, details: str) -> Response:
    error = MetaError(code, details)
    return error.http_status, error.body(), []


def _authorized(config: SimulatorConfig, request: Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {config.access_token}"
