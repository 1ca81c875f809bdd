"""A stand-in for the WhatsApp Cloud API, as a separate WSGI app: sends, templates, signed webhooks, a ledger.

Run it with `python -m app.whatsapp.simulator` (see `main`). Its `/_sim/` control API (JSON, no auth: for local
runs only) changes latency, errors, throughput limits and webhook behaviour at run time, injects customer messages,
and reports the ledger of accepted sends. The send route is plain WSGI on purpose: it is the hot path of every
benchmark.
"""

from __future__ import annotations

import argparse
import http
import itertools
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlencode

from werkzeug.wrappers import Request
from werkzeug.wsgi import get_input_stream

from app.whatsapp.sim_config import (
    ConfigError,
    SimulatorConfig,
    WebhookBehaviour,
    config_to_json,
    digits,
    phone_number_node,
    update_config,
)
from app.whatsapp.sim_media import MediaStore, ReceivedMessages, is_read_receipt, mark_read, media_route
from app.whatsapp.sim_meta import SendRequest, policy_failure, validate_message
from app.whatsapp.sim_rules import ASYNC_CODES, INVALID_TOKEN, GraphError, MetaError, unsupported
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.sim_store import Customers, Ledger, TemplateStore, ThroughputLimiter, tracker_of
from app.whatsapp.sim_webhooks import WebhookDispatcher, envelope, messages_value

Response = tuple[int, Any, list[tuple[str, str]]]
StartResponse = Callable[..., Any]
SEND_TIMES_KEPT = 1_000_000  # receive times of the latest accepted sends, for measuring a sender's pace


class Simulator:
    """The WSGI app; one instance holds all simulator state in memory."""

    def __init__(self, config: SimulatorConfig | None = None):
        self.initial_config = config or SimulatorConfig()
        self.config = self.initial_config
        self.templates = TemplateStore()
        self.customers = Customers()
        self.ledger = Ledger()
        self.send_times: deque[float] = deque(maxlen=SEND_TIMES_KEPT)
        self.limiter = ThroughputLimiter()
        self.media = MediaStore()
        self.received = ReceivedMessages()
        self.webhooks = WebhookDispatcher(lambda: self.config)
        self._wamid_prefix = secrets.token_hex(5).upper()
        self._counter = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        method = environ["REQUEST_METHOD"]
        if len(parts) == 3 and parts[2] == "messages" and method == "POST":
            return self._send(environ, parts[1], start_response)
        request = Request(environ)
        if len(parts) == 2 and method == "GET" and parts[1] == self.config.phone_number_id:  # not a media id
            status, body, headers = self._phone_number(request)
        elif (media := media_route(self.config, self.media, request, parts)) is not None:
            status, body, headers = media
        elif parts[0] == "_sim":
            status, body, headers = self._control(request, "/".join(parts[1:]))
        elif len(parts) == 3 and parts[2] == "message_templates":
            status, body, headers = self._templates_route(request, parts)
        else:
            status, body, headers = _meta(unsupported(request.method, parts[1] if len(parts) > 1 else parts[0]))
        return _respond(start_response, status, body, headers)

    def close(self) -> None:
        self.webhooks.close()

    def media_exists(self, media_id: str) -> bool:
        """Whether a media id names an upload the simulator still holds (for checking sends that use it)."""
        return media_id in self.media

    def reset(self, keep_config: bool = False) -> None:
        """Forget all sends, templates and pending webhooks; restore the startup config unless asked not to."""
        self.webhooks.clear()
        self.templates = TemplateStore()
        self.customers = Customers()
        self.ledger = Ledger()
        self.send_times = deque(maxlen=SEND_TIMES_KEPT)
        self.limiter = ThroughputLimiter()
        self.media = MediaStore()
        self.received = ReceivedMessages()
        if not keep_config:
            self.config = self.initial_config

    # --- POST /{version}/{phone_number_id}/messages ------------------------------------------------------------

    def _send(self, environ: dict[str, Any], phone_number_id: str, start_response: StartResponse) -> Iterable[bytes]:
        config = self.config
        (status, body, headers), wa_id = self._accept(config, environ, phone_number_id)
        delay = self._latency_s(config, wa_id)
        if delay:  # after recording: a client that times out meanwhile must not know whether it was sent
            time.sleep(delay)
        return _respond(start_response, status, body, headers)

    def _accept(self, config: SimulatorConfig, environ: dict[str, Any],
                phone_number_id: str) -> tuple[Response, str | None]:
        if not _authorized(config, environ.get("HTTP_AUTHORIZATION"), environ.get("QUERY_STRING", "")):
            return _meta(INVALID_TOKEN), None
        if phone_number_id != config.phone_number_id:
            return _meta(unsupported("POST", phone_number_id)), None
        payload = _json_body(environ)
        if is_read_receipt(payload):  # the same route marks a customer's message read
            return mark_read(self.received, payload), None
        if not self.limiter.allow(config.max_messages_per_second):
            return _meta(MetaError(130429, subcode=2494055), config.retry_after_header), None
        request = validate_message(payload, self.templates, self.media_exists)
        if not isinstance(request, SendRequest):
            return _meta(request), None
        code, asynchronous = self._outcome(config, request)
        if code is not None and not asynchronous:
            return _meta(MetaError(code), config.retry_after_header), request.wa_id
        return (200, self._record(config, request, code), []), request.wa_id

    def _outcome(self, config: SimulatorConfig, request: SendRequest) -> tuple[int | None, bool]:
        """The scripted, policy or random error for this send, and whether it is reported by webhook."""
        fixed = config.fixed_outcomes.get(request.wa_id)
        if fixed and fixed.code is not None:
            return fixed.code, fixed.mode == "async" if fixed.mode else fixed.code in ASYNC_CODES
        code = next((candidate for candidate, rate in config.error_rates.items() if random.random() < rate), None)
        if code is None:  # Meta judges the customer only once it has accepted the message
            code = policy_failure(request, self.customers, config.wrote_recently, time.time())
        return code, code in ASYNC_CODES

    def _record(self, config: SimulatorConfig, request: SendRequest, failure_code: int | None) -> dict[str, Any]:
        wamid = f"wamid.HBgM{request.wa_id}FQIAERgS{self._wamid_prefix}{next(self._counter):012X}"
        name = request.template.data["name"] if request.template else request.kind
        tracker = tracker_of(request.biz_opaque_callback_data, name)
        self.ledger.record(request.wa_id, wamid, tracker, name, failure_code)
        self.send_times.append(time.time())  # deque.append is atomic: no lock on the hot path
        if config.webhooks.enabled and config.webhook_url:
            self.webhooks.after_send(request, wamid, failure_code)
        return {"messaging_product": "whatsapp", "contacts": [{"input": request.to, "wa_id": request.wa_id}],
                "messages": [{"id": wamid, "message_status": "accepted"}]}

    def _latency_s(self, config: SimulatorConfig, wa_id: str | None) -> float:
        fixed = config.fixed_outcomes.get(wa_id) if wa_id else None
        latency = fixed.latency_ms if fixed and fixed.latency_ms is not None else config.latency_ms
        if config.latency_jitter_ms:
            latency += random.uniform(0, config.latency_jitter_ms)
        return latency / 1000

    def _phone_number(self, request: Request) -> Response:
        """GET /{version}/{phone_number_id}: the number's display form and verified name."""
        if not _authorized(self.config, request.headers.get("Authorization"), request.query_string.decode("latin-1")):
            return _meta(INVALID_TOKEN)
        return 200, phone_number_node(self.config, request.args.get("fields")), []

    # --- /{version}/{waba_id}/message_templates ----------------------------------------------------------------

    def _templates_route(self, request: Request, parts: list[str]) -> Response:
        config = self.config
        if not _authorized(config, request.headers.get("Authorization"), request.query_string.decode("latin-1")):
            return _meta(INVALID_TOKEN)
        if parts[1] != config.waba_id:
            return _meta(unsupported(request.method, parts[1]))
        if request.method == "GET":
            return self._list_templates(request, parts[0])
        if request.method == "POST":
            return self._create_template(config, request.get_json(force=True, silent=True))
        return _meta(MetaError(100, f"Unsupported method {request.method}."))

    def _list_templates(self, request: Request, version: str) -> Response:
        try:
            limit = max(1, min(int(request.args.get("limit", 25)), 1000))
            after = int(request.args.get("after", 0))
        except ValueError:
            return _meta(MetaError(100, "Params limit and after must be integers."))
        status, name = request.args.get("status"), request.args.get("name")
        page, next_offset = self.templates.page(limit, after, status, name, request.args.get("fields"))
        paging: dict[str, Any] = {"cursors": {"before": str(after), "after": str(after + len(page))}}
        if next_offset is not None:
            query = {key: value for key, value in request.args.items() if key != "after"}
            query.update(limit=str(limit), after=str(next_offset))
            paging["next"] = f"{request.host_url}{version}/{self.config.waba_id}/message_templates?{urlencode(query)}"
        body: dict[str, Any] = {"data": page, "paging": paging}
        if request.args.get("summary"):
            body["summary"] = self.templates.summary(request.args["summary"], status, name)
        return 200, body, []

    def _create_template(self, config: SimulatorConfig, body: Any) -> Response:
        template, problem = self.templates.create(body)
        if problem == "duplicate":
            return _meta(MetaError(100, "Content in this language already exists.", subcode=2388024))
        if template is None:
            return _meta(MetaError(100, problem or "Invalid template."))
        template_id = template.data["id"]
        self.webhooks.schedule_call(config.template_approval_delay_ms, lambda: self._review(template_id))
        return 200, {"id": template_id, "status": "PENDING", "category": template.data["category"]}, []

    def _review(self, template_id: str) -> None:
        config = self.config
        template = self.templates.set_status(template_id, config.template_review_outcome)
        if template is None or not (config.webhooks.enabled and config.webhook_url):
            return
        rejected = config.template_review_outcome == "REJECTED"
        value = {"event": config.template_review_outcome, "message_template_id": int(template_id),
                 "message_template_name": template.data["name"],
                 "message_template_language": template.data["language"],
                 "reason": "INVALID_FORMAT" if rejected else "NONE",
                 "message_template_category": template.data["category"]}
        self.webhooks.schedule_change(0, envelope(config, "message_template_status_update", value))

    # --- /_sim control API -------------------------------------------------------------------------------------

    def _control(self, request: Request, action: str) -> Response:
        if (refused := _control_refusal(request)) is not None:
            return refused
        routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "health"): lambda r: (200, {"ok": True}, []),
            ("GET", "config"): lambda r: (200, config_to_json(self.config), []),
            ("POST", "config"): self._update_config,
            ("GET", "ledger"): self._ledger,
            ("POST", "inbound"): self._inbound,
            ("POST", "reset"): self._reset,
        }
        handler = routes.get((request.method, action))
        if handler is None:
            return 404, {"error": f"No simulator control route {request.method} /_sim/{action}."}, []
        return handler(request)

    def _update_config(self, request: Request) -> Response:
        try:
            self.config = update_config(self.config, request.get_json(force=True, silent=True))
        except ConfigError as exc:
            return 400, {"error": str(exc)}, []
        return 200, config_to_json(self.config), []

    def _ledger(self, request: Request) -> Response:
        data = self.ledger.snapshot(detail=request.args.get("detail") in ("1", "true"))
        if request.args.get("times") in ("1", "true"):  # when each accepted send arrived (Unix time, seconds)
            data["times"] = list(self.send_times)
        data["webhooks"] = self.webhooks.snapshot()
        data["media"] = self.media.snapshot()
        data["read_receipts"] = self.received.snapshot()
        return 200, data, []

    def _reset(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True)
        self.reset(keep_config=isinstance(body, dict) and body.get("keep_config") is True)
        return 200, {"ok": True}, []

    def _inbound(self, request: Request) -> Response:
        spec = request.get_json(force=True, silent=True)
        config = self.config
        if not isinstance(spec, dict) or not isinstance(spec.get("from"), str) or not digits(spec["from"]):
            return 400, {"error": "Give 'from' (the customer's number) and a message."}, []
        built = _inbound_change(config, spec, self.ledger.last_wamid.get(digits(spec["from"])))
        if isinstance(built, str):
            return 400, {"error": built}, []
        self._remember(digits(spec["from"]), spec)  # what the customer did counts even if no webhook reports it
        if not config.webhook_url:
            return 409, {"error": "No webhook URL is configured; set webhook_url with POST /_sim/config. (The "
                                  "customer's action is recorded.)"}, []
        body, wamid, context_id = built
        if wamid:
            self.received.add(wamid)
        delivered, outcome = self.webhooks.post_now(body)
        return (200 if delivered else 502), {"wamid": wamid, "context_id": context_id, "delivered": delivered,
                                             "outcome": outcome}, []


    def _remember(self, wa_id: str, spec: dict[str, Any]) -> None:
        """A message opens the customer's 24-hour window; a preference stops or resumes marketing messages."""
        if spec.get("preference") in ("stop", "resume"):
            self.customers.set_marketing(wa_id, allowed=spec["preference"] == "resume")
        else:
            self.customers.wrote(wa_id)


def _control_refusal(request: Request) -> Response | None:
    """No auth, so only the simulator's own origin and tools (which send no Origin) may use the control API: a
    page on another site could otherwise inject "customer" messages with a text/plain POST, which needs no
    CORS preflight; requiring JSON makes a browser ask first, and the simulator never says yes."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return 403, {"error": f"The control API refuses requests from another origin ({origin})."}, []
    if request.method == "POST" and request.mimetype != "application/json":
        return 415, {"error": "The control API takes JSON: send Content-Type: application/json."}, []
    return None


def _inbound_change(config: SimulatorConfig, spec: dict[str, Any],
                    last_wamid: str | None) -> tuple[dict[str, Any], str | None, str | None] | str:
    """The `messages` (or `user_preferences`) webhook for an injected customer action, or why it is invalid."""
    wa_id, name = digits(spec["from"]), str(spec.get("profile_name") or "Customer")
    contacts = [{"profile": {"name": name}, "wa_id": wa_id}]
    if spec.get("preference") in ("stop", "resume"):
        preference = {"wa_id": wa_id, "detail": f"User requested to {spec['preference']} marketing messages",
                      "category": "marketing_messages", "value": spec["preference"], "timestamp": int(time.time())}
        value = messages_value(config, contacts=contacts, user_preferences=[preference])
        return envelope(config, "user_preferences", value), None, None
    content = _inbound_content(spec)
    if content is None:
        return "Give one of text, button {payload, text}, interactive {type, id, title} or preference."
    wamid = "wamid.HBgM" + wa_id + "FQIAEhgU" + secrets.token_hex(10).upper()
    message = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), **content}
    context_id = spec.get("context_id") or (last_wamid if spec.get("reply_to_last") else None)
    if context_id:
        message["context"] = {"from": config.display_phone_number, "id": context_id}
    value = messages_value(config, contacts=contacts, messages=[message])
    return envelope(config, "messages", value), wamid, context_id


def _inbound_content(spec: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(spec.get("text"), str):
        return {"type": "text", "text": {"body": spec["text"]}}
    button = spec.get("button")
    if isinstance(button, dict) and button.get("payload"):
        text = button.get("text") or button["payload"]
        return {"type": "button", "button": {"payload": str(button["payload"]), "text": str(text)}}
    interactive = spec.get("interactive")
    if isinstance(interactive, dict) and interactive.get("id"):
        kind = interactive.get("type") if interactive.get("type") in ("button_reply", "list_reply") else "button_reply"
        reply = {"id": str(interactive["id"]), "title": str(interactive.get("title") or interactive["id"])}
        if kind == "list_reply" and interactive.get("description"):
            reply["description"] = str(interactive["description"])
        return {"type": "interactive", "interactive": {"type": kind, kind: reply}}
    return None


def _json_body(environ: dict[str, Any]) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
        # The common case reads exactly Content-Length bytes; werkzeug copes with chunked or unsized bodies.
        raw = environ["wsgi.input"].read(length) if length >= 0 else get_input_stream(environ).read()
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return None


def _authorized(config: SimulatorConfig, authorization: str | None, query: str) -> bool:
    """Graph takes the token as a bearer header or as ?access_token= in the query string."""
    if authorization == f"Bearer {config.access_token}":
        return True
    return "access_token=" in query and config.access_token in parse_qs(query).get("access_token", [])


def _meta(error: MetaError | GraphError, retry_after: bool = True) -> Response:
    """The HTTP answer for an error; `retry_after=False` leaves out the Retry-After header Meta does not promise."""
    headers = [("Retry-After", str(error.retry_after))] if retry_after and error.retry_after is not None else []
    if error.code == 190:
        headers.append(("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_token"'))
    return error.http_status, error.body(), headers


def _respond(start_response: StartResponse, status: int, body: Any, headers: list[tuple[str, str]]) -> list[bytes]:
    """Send JSON, or bytes as they are (a media download, whose headers carry its Content-Type)."""
    if isinstance(body, bytes):
        raw, content_type = body, []
    else:
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        content_type = [("Content-Type", "application/json")]
    start_response(f"{status} {http.HTTPStatus(status).phrase}",
                   [*content_type, ("Content-Length", str(len(raw))), *headers])
    return [raw]


def create_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """Build the simulator WSGI app."""
    return Simulator(config)


def main(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGTERM or SIGINT; settings come from flags, then the environment."""
    args = _arguments(argv)
    config = SimulatorConfig(access_token=args.access_token, app_secret=args.app_secret,
                             phone_number_id=args.phone_number_id, waba_id=args.waba_id,
                             webhook_url=args.webhook_url or None, max_messages_per_second=args.throughput,
                             retry_after_header=not args.no_retry_after,
                             webhooks=WebhookBehaviour(enabled=not args.no_webhooks))
    simulator = create_simulator(config)
    server = SimulatorServer(simulator, args.host, args.port).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"WhatsApp Cloud API simulator listening on {server.url} (phone number id {config.phone_number_id}, "
          f"WABA {config.waba_id}, webhooks to {config.webhook_url or 'nowhere'})", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    simulator.close()
    print("WhatsApp Cloud API simulator stopped.", flush=True)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    env, defaults = os.environ, SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m app.whatsapp.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env.get("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("SIMULATOR_PORT", "5055")))
    parser.add_argument("--webhook-url", default=env.get("SIMULATOR_WEBHOOK_URL", ""),
                        help="where signed webhooks are posted (env SIMULATOR_WEBHOOK_URL)")
    parser.add_argument("--app-secret", default=env.get("WHATSAPP_APP_SECRET") or defaults.app_secret)
    parser.add_argument("--access-token", default=env.get("WHATSAPP_ACCESS_TOKEN") or defaults.access_token)
    parser.add_argument("--phone-number-id", default=env.get("WHATSAPP_PHONE_NUMBER_ID") or defaults.phone_number_id)
    parser.add_argument("--waba-id", default=env.get("WHATSAPP_BUSINESS_ACCOUNT_ID") or defaults.waba_id)
    parser.add_argument("--no-webhooks", action="store_true", help="accept sends without posting status webhooks")
    parser.add_argument("--throughput", type=float,
                        default=float(env.get("SIMULATOR_THROUGHPUT") or defaults.max_messages_per_second),
                        help="messages per second before 130429 (env SIMULATOR_THROUGHPUT; 0: no cap)")
    parser.add_argument("--no-retry-after", action="store_true", help="answer 429s without a Retry-After header")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
