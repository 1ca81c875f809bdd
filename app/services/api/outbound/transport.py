"""Posting signed deliveries: one pooled requests session per process, a thread pool per batch, short timeouts.

No database here: the job hands plain Attempt values in and gets Outcomes back, so no session is held while
receivers answer. Every host is checked by the address guard once per batch, just before its requests, so a name
that now resolves to a private address is refused (DNS rebinding). Answers are read up to a bound and dropped: only
the status code counts, and a receiver that streams forever cannot hold a thread.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from app.services import address_guard
from app.services.api.outbound import signing

USER_AGENT = "Broadcaster-Webhooks/1"
_SHARED: dict[str, requests.Session] = {}  # per process (each RQ job is a fork: built in the job)


@dataclass(frozen=True)
class Options:
    concurrency: int
    connect_timeout: float
    read_timeout: float
    max_response_bytes: int
    allow_private: bool


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: int
    event_type: str
    body: str


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    endpoint_id: int
    code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.code is not None and 200 <= self.code < 300


def post_all(attempts: list[Attempt], options: Options) -> list[Outcome]:
    """Post every attempt, up to `options.concurrency` at once; one Outcome per attempt, in order."""
    refused = _guard(attempts, options.allow_private)
    with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(attempts)))) as pool:
        return list(pool.map(lambda attempt: _post(attempt, options, refused.get(_host_key(attempt.url))),
                             attempts))


def _guard(attempts: list[Attempt], allow_private: bool) -> dict[tuple, str]:
    """Why each refused host is refused; every host checked once per batch."""
    refused = {}
    for key in {_host_key(attempt.url) for attempt in attempts}:
        try:
            address_guard.check_host(key[0], key[1], allow_private)
        except address_guard.AddressRefused as error:
            refused[key] = str(error)
    return refused


def _host_key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _post(attempt: Attempt, options: Options, refused: str | None) -> Outcome:
    started = time.perf_counter()
    if refused is not None:
        return _outcome(attempt, started, None, refused)
    body = attempt.body.encode()
    timestamp = str(int(time.time()))  # the receiver's clock is the real one, whatever a test fixed ours to
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               signing.TIMESTAMP_HEADER: timestamp, signing.SIGNATURE_HEADER: signing.signature(attempt.secret,
                                                                                               timestamp, body),
               signing.EVENT_ID_HEADER: f"evt_{attempt.event_id}", signing.EVENT_TYPE_HEADER: attempt.event_type,
               signing.DELIVERY_HEADER: str(attempt.delivery_id)}
    try:
        with _session(options).post(attempt.url, data=body, headers=headers, stream=True, allow_redirects=False,
                                    timeout=(options.connect_timeout, options.read_timeout)) as response:
            _drain(response, options.max_response_bytes)
            code = response.status_code
    except requests.RequestException as error:
        return _outcome(attempt, started, None, _describe(error))
    return _outcome(attempt, started, code, None if 200 <= code < 300 else _http_error(code))


def _drain(response: requests.Response, limit: int) -> None:
    """Read the answer up to `limit` bytes; consumed fully, the connection goes back to the pool for the next one."""
    read = 0
    for chunk in response.iter_content(8192):
        read += len(chunk)
        if read > limit:
            break  # the context manager closes the connection instead of reusing it


def _session(options: Options) -> requests.Session:
    """One per process: keep-alive connections are reused across batches; the pool is sized to the threads."""
    session = _SHARED.get("session")
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=32, pool_maxsize=max(options.concurrency, 1), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.trust_env = False  # no proxy from the environment: the guard checked the receiver's own address
        _SHARED["session"] = session
    return session



def _outcome(attempt: Attempt, started: float, code: int | None, error: str | None) -> Outcome:
    duration = round((time.perf_counter() - started) * 1000)
    return Outcome(attempt.delivery_id, attempt.endpoint_id, code, duration, error[:255] if error else None)


def _http_error(code: int) -> str:
    if 300 <= code < 400:
        return f"Answered {code} (a redirect): redirects are not followed; use the final address."
    return f"Answered {code}; only 2xx counts as delivered."


def _describe(error: requests.RequestException) -> str:
    if isinstance(error, requests.ConnectTimeout):
        return "Could not connect in time."
    if isinstance(error, requests.Timeout):
        return "Connected, but no answer in time."
    if isinstance(error, requests.ConnectionError):
        return "Could not connect (refused or unreachable)."
    return f"The request failed: {type(error).__name__}."
