"""Group commit for API sends: one writer thread per process and database inserts the message rows of every
request waiting at that moment (with their idempotency rows, and contacts for new numbers) in one transaction.

Each send must be committed before it is answered, and under load the commit and the fight for the write lock were
most of what a send cost: on SQLite eight request threads took turns at the one write lock (sleeping in its busy
handler while another held it), on PostgreSQL every send paid its own WAL flush. The requests that arrive during
one group's commit share the next. When it is quiet a group is a single send.

Idempotency keys are inserted with ON CONFLICT DO NOTHING, so of concurrent retries (in one group or in several, in
one process or several) exactly one row lands; a send whose key was taken has its message deleted again in the same
transaction and is told so (`Written.message_id` None), and the caller answers with the first one's message.
A group that fails as a whole (one bad row) is written again one send at a time, so only the bad one fails.
"""

from __future__ import annotations

import fcntl
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from queue import Empty, SimpleQueue
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from app.models import ApiIdempotencyKey, Contact, Message

WAIT_SECONDS = 20  # a request still waiting after this answers 503; a retry with its Idempotency-Key is safe
GROUP_LIMIT = 200  # sends per transaction; only reached when hundreds arrive within one commit's time
IDLE_SECONDS = 5  # a writer with nothing to write this long gives its connection back (a quiet shop holds none)
MESSAGES, KEYS, CONTACTS = Message.__table__, ApiIdempotencyKey.__table__, Contact.__table__
_INSERT_MESSAGES = MESSAGES.insert().returning(MESSAGES.c.id, sort_by_parameter_order=True)


class WriterUnavailable(Exception):
    """The database did not store the send in time (down, or too slow to answer)."""


@dataclass
class PendingSend:
    """A send ready to insert: the messages row (contact_id None for a new number), the contacts row for a new
    number, and the idempotency row (without message_id) when the request carried a key."""

    message: dict[str, Any]
    to: str  # the number, as stored
    new_contact: dict[str, Any] | None = None
    idempotency: dict[str, Any] | None = None
    written: Future = field(default_factory=Future)

    @property
    def idempotency_pair(self) -> tuple[int, str] | None:
        return (self.idempotency["api_key_id"], self.idempotency["key"]) if self.idempotency else None


@dataclass(frozen=True)
class Written:
    message_id: int | None  # None: the idempotency key was already taken; answer with that request's message
    contact_id: int | None
    # The first new message of its group. Queueing the direct lane after this one covers the whole group, committed
    # at the same moment, so the others need not ask Redis again.
    first_in_group: bool = False


def write(engine: Engine, send: PendingSend) -> Written:
    """Insert and commit the send (with the others waiting now); raises WriterUnavailable."""
    return _writer(engine).submit(send)


def write_group(connection: Connection, sends: list[PendingSend]) -> list[Written]:
    """Insert the sends in the connection's open transaction; the caller commits. One Written per send, in order."""
    contact_ids = _contact_ids(connection, [send.new_contact for send in sends if send.new_contact is not None])
    seen: set[tuple[int, str]] = set()
    kept: list[tuple[int, PendingSend]] = []
    for position, send in enumerate(sends):
        pair = send.idempotency_pair
        if pair in seen:
            continue  # a second send with the same key in this group is a retry of the first
        kept.append((position, send))
        if pair is not None:
            seen.add(pair)
    message_ids = _insert_messages(connection, [(send, contact_ids) for _, send in kept])
    taken = _insert_keys(connection, [(send, message_id) for (_, send), message_id in zip(kept, message_ids,
                                                                                           strict=True)])
    if taken:
        connection.execute(delete(MESSAGES).where(MESSAGES.c.id.in_(taken)))
    answers = [Written(None, None)] * len(sends)
    first = True
    for (position, send), message_id in zip(kept, message_ids, strict=True):
        if message_id in taken:
            continue
        answers[position] = Written(message_id, _contact_id(send, contact_ids), first)
        first = False
    return answers


def _contact_id(send: PendingSend, contact_ids: dict[str, int]) -> int:
    return send.message["contact_id"] or contact_ids[send.new_contact["phone"]]


def _contact_ids(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Create the contacts of new numbers (one may have been created since it was looked up); phone → id."""
    if not rows:
        return {}
    unique = sorted({row["phone"]: row for row in rows}.items())  # one order everywhere: no deadlock between groups
    connection.execute(_statements(connection).new_contacts, [row for _, row in unique])
    found = connection.execute(select(CONTACTS.c.phone, CONTACTS.c.id)
                               .where(CONTACTS.c.phone.in_([phone for phone, _ in unique])))
    return {phone: contact_id for phone, contact_id in found}


def _insert_messages(connection: Connection, sends: list[tuple[PendingSend, dict[str, int]]]) -> list[int]:
    rows = [{**send.message, "contact_id": _contact_id(send, contact_ids)} for send, contact_ids in sends]
    return list(connection.execute(_INSERT_MESSAGES, rows).scalars().all())


def _insert_keys(connection: Connection, sends: list[tuple[PendingSend, int]]) -> set[int]:
    """Insert the idempotency rows; returns the message ids whose key was taken (by an earlier, committed send)."""
    rows = sorted(({**send.idempotency, "message_id": message_id} for send, message_id in sends if send.idempotency),
                  key=lambda row: (row["api_key_id"], row["key"]))  # one lock order for concurrent groups
    if not rows:
        return set()
    landed = set(connection.execute(_statements(connection).keys, rows).scalars())
    return {row["message_id"] for row in rows} - landed


@dataclass(frozen=True)
class _Statements:
    new_contacts: Any
    keys: Any


@cache
def _statements_for(dialect: str) -> _Statements:
    """INSERT … ON CONFLICT for the database (both support it), built once: run with a list of rows, SQLAlchemy
    sends one multi-row INSERT from a compiled statement it caches, instead of compiling the rows every time."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return _Statements(
        new_contacts=insert(CONTACTS).on_conflict_do_nothing(index_elements=[CONTACTS.c.phone]),
        keys=insert(KEYS).on_conflict_do_nothing(index_elements=[KEYS.c.api_key_id, KEYS.c.key])
        .returning(KEYS.c.message_id))


def _statements(connection: Connection) -> _Statements:
    return _statements_for(connection.dialect.name)


class _Writer:
    """The thread that writes this process's groups, on one connection it keeps (a checkout per group, with its
    reset, cost more than the inserts)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.pid, self.queue = engine, os.getpid(), SimpleQueue()
        self.connection: Connection | None = None
        self.turn = _SqliteTurn(engine)
        threading.Thread(target=self._run, name="api-send-group-commit", daemon=True).start()

    def submit(self, send: PendingSend) -> Written:
        self.queue.put(send)
        try:
            return send.written.result(timeout=WAIT_SECONDS)
        except TimeoutError as error:
            raise WriterUnavailable("the database did not answer in time") from error

    def _run(self) -> None:
        while True:
            try:
                group = [self.queue.get(timeout=IDLE_SECONDS)]
            except Empty:
                self._disconnect()
                continue
            while len(group) < GROUP_LIMIT and not self.queue.empty():
                group.append(self.queue.get())
            if not self._write(group) and len(group) > 1:
                for send in group:  # one bad row must not fail the others: each alone, and only it fails
                    self._write([send])

    def _write(self, group: list[PendingSend]) -> bool:
        try:
            connection = self._connection()
            with self.turn, connection.begin():
                answers = write_group(connection, group)
        except Exception as error:
            self._disconnect(broken=True)
            if len(group) == 1:
                group[0].written.set_exception(error)
            return False
        for send, answer in zip(group, answers, strict=True):
            send.written.set_result(answer)
        return True

    def _connection(self) -> Connection:
        if self.connection is None:
            self.connection = self.engine.connect()
        return self.connection

    def _disconnect(self, broken: bool = False) -> None:
        """Give the connection back (idle), or drop it (it failed: the database restarted, say); the next group
        opens a new one."""
        if self.connection is not None:
            try:
                if broken:
                    self.connection.invalidate()
                self.connection.close()
            except Exception:  # it is broken already; there is nothing more to do with it
                pass
            self.connection = None


class _SqliteTurn:
    """On SQLite, the web processes' writers take turns through a file lock held for the whole transaction.

    SQLite's own wait for its write lock (the busy timeout) sleeps and polls, up to 100 ms a step: with two web
    processes writing, a group waited 110-135 ms at the 99th percentile (640 ms at worst) for a lock each group held
    about 5 ms. A file lock wakes the next writer as soon as the last one commits (99th percentile then 15-30 ms).
    On PostgreSQL (row locks) it does nothing."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self.path = f"{database}.api-writer.lock" if database and database != ":memory:" else None
        self.file = None

    def __enter__(self) -> None:
        if self.path is not None:
            if self.file is None:
                self.file = open(self.path, "a")  # noqa: SIM115 - kept open for the writer's life
            fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *_exception) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)


_writers: dict[Engine, _Writer] = {}
_writers_lock = threading.Lock()


def _writer(engine: Engine) -> _Writer:
    """This process's writer for `engine`; a forked process (a gunicorn worker) starts its own."""
    writer = _writers.get(engine)
    if writer is None or writer.pid != os.getpid():
        with _writers_lock:
            writer = _writers.get(engine)
            if writer is None or writer.pid != os.getpid():
                writer = _writers[engine] = _Writer(engine)
    return writer
