"""Tamper-evident audit log: an append-only HMAC chain in state_dir/audit.jsonl.

Each line is one record in canonical JSON with `seq`, `time`, `event`, the caller's fields, `prev`
(sha256 of the previous line's bytes) and `mac` (HMAC-SHA256 with audit.key over the record
without `mac`). audit.head names the last record (seq, hash, MAC) so that cutting records off the
end is detected too. The index remembers the last seq and hash as well (a ChainMemory, updated
after every append), so a log emptied or deleted together with its head is caught, and no new
chain starts over it. Appends hold an exclusive flock on audit.lock and return only after fsync,
so a record is on disk before the action it announces. Names and paths go in only as keyed tokens.

The index's memory may lag the log (a run killed after its audit write, before its index commit),
never lead it: a log holding more records than remembered is fine when the remembered record's
hash matches; fewer is damage. Known limit: whoever can write the state files and the index
alike (the same user) can cut the log back and make all three agree; only a copy of the head kept
elsewhere (e.g. in the mailed report) would catch that.

Fault testing: ``ARCHIVEKEEPER_AUDIT_FAULT=ENOSPC@N`` cuts the Nth write of records to
audit.jsonl short halfway and raises OSError(ENOSPC), as a disk filling up does (``@N+``: that
write and every later one; see archivekeeper/faults.py). Read once, at import.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from archivekeeper import faults
from archivekeeper.core.naming import normalize_customer
from archivekeeper.logs import get_logger

LOG_NAME = "audit.jsonl"
KEY_NAME = "audit.key"
HEAD_NAME = "audit.head"
LOCK_NAME = "audit.lock"

KEY_BYTES = 32
ZERO_HASH = "0" * 64
RESERVED = frozenset({"seq", "time", "event", "prev", "mac"})
TOKEN_KINDS = ("customer", "shoot", "path")

_EVENT = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN = re.compile(r"[csp]_[0-9a-f]{16}")
_PRIVATE_WORDS = frozenset({"customer", "path", "name", "shoot"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEAD_DOMAIN = b"archivekeeper audit.head\0"
_TAIL_CHUNK = 8192

_log = get_logger()
_FAULT = faults.from_env("ARCHIVEKEEPER_AUDIT_FAULT")


class AuditError(Exception):
    """The audit log cannot be trusted or written; the caller must not act."""


class ChainMemory(Protocol):
    """Where the index keeps the last (seq, record hash) the log is known to have reached."""

    def audit_head(self) -> tuple[int, str] | None: ...

    def remember_audit_head(self, seq: int, record_hash: str) -> None:
        """Remember (seq, hash) unless a later seq is remembered already."""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of AuditLog.verify(). first_bad is a 1-based line number (for a problem at the
    end of the log, the line where the missing record belongs)."""

    ok: bool
    records: int
    first_bad: int | None
    message: str


@dataclass(frozen=True)
class _Tail:
    """The end of audit.jsonl: its last complete line and any bytes after its newline."""

    last_line: bytes | None
    complete_end: int
    torn_bytes: int


def canonical(obj: Any) -> bytes:
    """Given a JSON-able value, return its canonical UTF-8 JSON encoding."""
    return json.dumps(
        obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def line_hash(line: bytes) -> str:
    """Given a log line without its newline, return the sha256 hex that the next `prev` holds."""
    return hashlib.sha256(line).hexdigest()


def _is_private_key(key: str) -> bool:
    word = key.rsplit("_", 1)[-1]
    return word in _PRIVATE_WORDS or (word.endswith("s") and word[:-1] in _PRIVATE_WORDS)


def _check_no_clear_text(key: str, value: Any) -> None:
    """Raise ValueError if a field named like a customer, path, name or shoot (also nested, and
    with a prefix or plural: old_path, customers) holds anything but tokens. The message names
    the key only, so that the refused value does not leak into logs either."""
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            _check_no_clear_text(str(inner_key), inner)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_no_clear_text(key, item)
    elif _is_private_key(key) and not (isinstance(value, str) and _TOKEN.fullmatch(value)):
        raise ValueError(
            f"audit field {key!r} must hold a token from AuditLog.token(), not clear text"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _append_or_cut_back(fd: int, data: bytes) -> None:
    """Given the open log, append data and fsync it. If that fails, cut off what part of it
    was written, so the log ends with its last whole record and verifies; should the cut fail
    too, the next append repairs the torn line (_prepare_tail)."""
    end = os.fstat(fd).st_size
    try:
        code = _FAULT.hit() if _FAULT is not None else None
        if code is not None:
            _write_all(fd, data[: len(data) // 2])
            raise OSError(code, os.strerror(code))
        _write_all(fd, data)
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, end)
            os.fsync(fd)
        except OSError:
            pass  # the error to report is the write's
        raise


def _read_tail(fd: int, size: int) -> _Tail:
    """Given an open log and its size, read backwards from the end only as far as the start of
    the last complete line."""
    buf = b""
    pos = size
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        last_nl = buf.rfind(b"\n")
        if last_nl != -1 and buf.rfind(b"\n", 0, last_nl) != -1:
            break
    last_nl = buf.rfind(b"\n")
    if last_nl == -1:
        return _Tail(last_line=None, complete_end=0, torn_bytes=size)
    start = buf.rfind(b"\n", 0, last_nl) + 1
    return _Tail(
        last_line=buf[start:last_nl],
        complete_end=pos + last_nl + 1,
        torn_bytes=size - (pos + last_nl + 1),
    )


class AuditLog:
    """The audit log of one state_dir, shared by the CLI and the daemon."""

    def __init__(self, state_dir: Path, clock: Callable[[], datetime],
                 memory: ChainMemory | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.memory = memory
        self._log_path = self.state_dir / LOG_NAME
        self._key_path = self.state_dir / KEY_NAME
        self._head_path = self.state_dir / HEAD_NAME
        self._lock_path = self.state_dir / LOCK_NAME
        self._key: bytes | None = None

    # ----------------------------------------------------------------- public

    def append(self, event: str, **fields: Any) -> dict:
        """Given an event name and its fields, write one record and fsync it; return the record.
        Raise ValueError for a bad event name, a reserved key or clear-text names/paths, and
        AuditError if the log cannot be trusted or written (then the caller must not act)."""
        return self.append_many([(event, fields)])[0]

    def append_many(self, records: list[tuple[str, dict]]) -> list[dict]:
        """Given (event, fields) pairs, write them all under one lock and one fsync; return the
        records written. Raise as append() does; nothing is written if any pair is refused."""
        for event, fields in records:
            self._check_fields(event, fields)
        if not records:
            return []
        # Read before the lock: the memory never leads the log, so it cannot be stale-high; and
        # no SQLite call is made while audit.lock is held (a writer may be waiting for it).
        remembered = self._remembered()
        try:
            with self._locked(fcntl.LOCK_EX):
                key = self._load_key(create=True, remembered=remembered)
                fd = self._open_for_append(remembered)
                try:
                    seq, prev, log_created = self._prepare_tail(fd, key, remembered)
                    written: list[dict] = []
                    lines: list[bytes] = []
                    for event, fields in records:
                        seq += 1
                        record = self._seal(key, {**fields, "seq": seq, "event": event,
                                                  "prev": prev})
                        line = canonical(record)
                        prev = line_hash(line)
                        written.append(record)
                        lines.append(line + b"\n")
                    _append_or_cut_back(fd, b"".join(lines))
                finally:
                    os.close(fd)
                if log_created:
                    _fsync_dir(self.state_dir)
                self._write_head(key, seq, prev)
        except OSError as exc:  # a full, read-only or failing disk under state_dir
            raise AuditError(f"cannot write {exc.filename or self._log_path}: "
                             f"{exc.strerror or exc}") from exc
        if self.memory is not None:
            # Inside the caller's transaction this commits with the action's own changes; a
            # crash before that commit leaves the memory behind the log, which verify accepts.
            self.memory.remember_audit_head(seq, prev)
        return written

    def token(self, kind: str, value: str) -> str:
        """Given a kind ("customer": its normalised key; "shoot": "volume:relative/path";
        "path") and a value, return the keyed token that stands for it in the log, e.g.
        "c_3f2a0b9c8d7e6f51". Creates audit.key on first use. Raise ValueError for another
        kind, AuditError if the key cannot be trusted."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"token kind must be one of {', '.join(TOKEN_KINDS)}, not {kind!r}")
        if kind == "customer":
            value = normalize_customer(value)
        if self._key is None:
            remembered = self._remembered()
            with self._locked(fcntl.LOCK_EX):
                self._load_key(create=True, remembered=remembered)
        assert self._key is not None
        message = kind.encode() + b"\0" + value.encode("utf-8", "surrogateescape")
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return f"{kind[0]}_{digest[:16]}"

    def verify(self) -> VerifyResult:
        """Check every record (JSON, canonical form, MAC, seq, prev chain) and the end of the log
        against audit.head and the index's memory; return the first problem found. Raise
        AuditError if audit.key is present but cannot be trusted."""
        remembered = self._remembered()
        with self._locked(fcntl.LOCK_SH):
            key = self._load_key(create=False)
            if key is None:
                if remembered is not None:
                    return VerifyResult(False, 0, 1, (
                        f"line 1: cannot be checked: {self._key_path} is missing and the index "
                        f"remembers seq {remembered[0]} of {self._log_path}"))
                if self._chain_exists():
                    return VerifyResult(
                        False, 0, 1, f"line 1: cannot be checked: {KEY_NAME} is missing"
                    )
                return VerifyResult(True, 0, None, "ok: empty log")
            head, head_problem = self._read_head(key)
            try:
                log = open(self._log_path, "rb")
            except FileNotFoundError:
                if remembered is not None:
                    return VerifyResult(False, 0, 1, (
                        f"end of log: {self._log_path} is missing but the index remembers seq "
                        f"{remembered[0]} (log deleted)"))
                return _verify_missing_log(head, head_problem)
            with log:
                return _verify_lines(log, key, head, head_problem, remembered, self._log_path)

    def records(self, since: date | None = None) -> Iterator[dict]:
        """Yield the records that parse, oldest first (from `since` on, by each record's own
        local date), skipping damaged lines; for reading, not for trusting (see verify())."""
        try:
            log = open(self._log_path, "rb")
        except FileNotFoundError:
            return
        with log:
            for raw in log:
                try:
                    record = json.loads(raw.decode("utf-8"))
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                if since is not None:
                    try:
                        if datetime.fromisoformat(record["time"]).date() < since:
                            continue
                    except (KeyError, TypeError, ValueError):
                        continue
                yield record

    # ------------------------------------------------------------ key, lock

    @contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        """Hold flock(operation) on audit.lock so that CLI and daemon never interleave."""
        try:
            fd = os.open(
                self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except FileNotFoundError as exc:
            raise AuditError(f"state_dir {self.state_dir} does not exist") from exc
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)

    def _remembered(self) -> tuple[int, str] | None:
        """The (seq, hash) the index remembers, None if it remembers no record."""
        head = self.memory.audit_head() if self.memory is not None else None
        return head if head is not None and head[0] > 0 else None

    def _chain_exists(self) -> bool:
        try:
            has_log = self._log_path.stat().st_size > 0
        except FileNotFoundError:
            has_log = False
        return has_log or self._head_path.exists()

    def _load_key(self, create: bool,
                  remembered: tuple[int, str] | None = None) -> bytes | None:
        """Return the key (call with audit.lock held). If it is absent: create it when `create`
        is set and no chain exists yet (none on disk, none `remembered` by the index), else
        return None (create unset) or raise AuditError (a new key would make the existing chain
        unverifiable). Raise AuditError if the key file cannot be trusted."""
        if self._key is not None:
            return self._key
        try:
            self._key = _open_key(self._key_path)
            return self._key
        except FileNotFoundError:
            if not create:
                return None
        if remembered is not None:
            raise AuditError(
                f"{self._key_path} is missing but the index remembers seq {remembered[0]} of "
                f"{self._log_path}: {self._damaged_hint()}"
            )
        if self._chain_exists():
            raise AuditError(
                f"{self._key_path} is missing but the audit log exists: restore the key from a "
                "backup; a new key would make every existing record unverifiable"
            )
        # The key is written under a temporary name and linked into place, so no process ever
        # sees a half-written key, and a crash leaves only a stale temporary file behind.
        tmp = self.state_dir / (KEY_NAME + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(
            tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            _write_all(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self._key_path)
        except FileExistsError:
            pass  # a process that does not take audit.lock won the race: use its key
        finally:
            tmp.unlink()
        _fsync_dir(self.state_dir)
        self._key = _open_key(self._key_path)
        return self._key

    # ------------------------------------------------------------- appending

    @staticmethod
    def _check_fields(event: str, fields: dict) -> None:
        if not isinstance(event, str) or not _EVENT.fullmatch(event):
            raise ValueError(f"audit event must be snake_case, not {event!r}")
        reserved = RESERVED.intersection(fields)
        if reserved:
            raise ValueError(f"audit fields may not be named {', '.join(sorted(reserved))}")
        for key, value in fields.items():
            _check_no_clear_text(key, value)
        try:
            canonical(fields)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit fields of {event!r} are not plain JSON: {exc}") from exc

    def _seal(self, key: bytes, record: dict) -> dict:
        now = self.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the audit clock must return an aware datetime")
        record["time"] = now.isoformat(timespec="milliseconds")
        record["mac"] = hmac.new(key, canonical(record), hashlib.sha256).hexdigest()
        return record

    def _open_for_append(self, remembered: tuple[int, str] | None) -> int:
        """Open the log, creating it only if the index remembers no chain (a refusal must not
        leave an empty log where a deleted one was)."""
        flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        if remembered is None:
            return os.open(self._log_path, flags | os.O_CREAT, 0o600)
        try:
            return os.open(self._log_path, flags)
        except FileNotFoundError:
            raise AuditError(
                f"{self._log_path} is missing but the index remembers seq {remembered[0]}: "
                f"records were removed; {self._damaged_hint()}"
            ) from None

    def _prepare_tail(self, fd: int, key: bytes,
                      remembered: tuple[int, str] | None) -> tuple[int, str, bool]:
        """Given the open log, return (last seq, hash of last line, whether the log is new).
        Repair a torn final line left by a crash mid-append; raise AuditError if the end of the
        log disagrees with audit.head or ends before the seq the index remembers."""
        size = os.fstat(fd).st_size
        head, head_problem = self._read_head(key)
        if head_problem:
            raise AuditError(f"{self._head_path}: {head_problem}; {self._damaged_hint()}")
        if size == 0 and remembered is not None:
            raise AuditError(
                f"{self._log_path} is empty but the index remembers seq {remembered[0]}: "
                f"records were removed; {self._damaged_hint()}"
            )
        if size == 0:
            if head is not None and head[0] != 0:
                raise AuditError(
                    f"{self._log_path} is empty but {HEAD_NAME} says seq {head[0]}: records "
                    f"were removed; {self._damaged_hint()}"
                )
            if head is None:
                # The head goes first so that a crash right after the first record leaves a
                # head that lags (tolerated) rather than a log with no head (damage).
                self._write_head(key, 0, ZERO_HASH)
            return 0, ZERO_HASH, True
        if head is None:
            raise AuditError(f"{self._head_path} is missing; {self._damaged_hint()}")
        tail = _read_tail(fd, size)
        seq, last_hash = 0, ZERO_HASH
        if tail.last_line is not None:
            seq = self._trusted_seq(key, tail.last_line)
            last_hash = line_hash(tail.last_line)
        head_seq, head_hash = head
        if head_seq > seq or (head_seq == seq and head_hash != last_hash):
            raise AuditError(
                f"{self._log_path} ends at seq {seq} but {HEAD_NAME} says seq {head_seq}: "
                f"records were removed or changed; {self._damaged_hint()}"
            )
        if remembered is not None and (
            remembered[0] > seq or (remembered[0] == seq and remembered[1] != last_hash)
        ):
            raise AuditError(
                f"{self._log_path} ends at seq {seq} but the index remembers seq "
                f"{remembered[0]}: records were removed or changed; {self._damaged_hint()}"
            )
        if tail.torn_bytes:
            # A crash mid-write leaves a partial line after the last complete one; that append
            # never returned, so its action never ran. Cutting it off loses nothing.
            os.ftruncate(fd, tail.complete_end)
            os.fsync(fd)
            _log.warning("audit_tail_repaired", dropped_bytes=tail.torn_bytes)
            record = self._seal(
                key,
                {
                    "seq": seq + 1,
                    "event": "audit_tail_repaired",
                    "prev": last_hash,
                    "dropped_bytes": tail.torn_bytes,
                },
            )
            line = canonical(record)
            _write_all(fd, line + b"\n")
            seq, last_hash = seq + 1, line_hash(line)
        return seq, last_hash, False

    def _trusted_seq(self, key: bytes, line: bytes) -> int:
        problem = _record_problem(key, line)
        if problem:
            raise AuditError(f"{self._log_path}: last record: {problem}; {self._damaged_hint()}")
        return json.loads(line)["seq"]

    def _damaged_hint(self) -> str:
        return (
            "run `archivekeeper audit verify`; to start a new chain, move audit.jsonl and "
            "audit.head aside (keep them as evidence) and remove the index's memory of the old "
            "chain (the audit_head row of its meta table)"
        )

    def _write_head(self, key: bytes, seq: int, last_hash: str) -> None:
        body = {"seq": seq, "hash": last_hash}
        head = {
            **body,
            "mac": hmac.new(key, _HEAD_DOMAIN + canonical(body), hashlib.sha256).hexdigest(),
        }
        tmp = self.state_dir / (HEAD_NAME + ".tmp")
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            _write_all(fd, canonical(head) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._head_path)
        _fsync_dir(self.state_dir)

    def _read_head(self, key: bytes) -> tuple[tuple[int, str] | None, str | None]:
        """Return ((seq, hash), None) for a good head, (None, None) if there is none, and
        (None, problem) if it is damaged."""
        try:
            raw = self._head_path.read_bytes()
        except FileNotFoundError:
            return None, None
        try:
            head = json.loads(raw.decode("utf-8"))
            body = {"seq": head["seq"], "hash": head["hash"]}
            mac = head["mac"]
        except (ValueError, TypeError, KeyError):
            return None, "not a valid head record (file changed?)"
        if (
            set(head) != {"seq", "hash", "mac"}
            or not isinstance(mac, str)
            or canonical(head) + b"\n" != raw
        ):
            return None, "not a valid head record (file changed?)"
        expected = hmac.new(key, _HEAD_DOMAIN + canonical(body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None, "mac mismatch (head file changed)"
        if type(body["seq"]) is not int or not _HEX64.fullmatch(str(body["hash"])):
            return None, "not a valid head record (file changed?)"
        return (body["seq"], body["hash"]), None


def _verify_missing_log(head: tuple[int, str] | None, head_problem: str | None) -> VerifyResult:
    """Given the head when audit.jsonl does not exist, say whether that is damage."""
    if head_problem:
        return VerifyResult(False, 0, 1, f"end of log: {HEAD_NAME}: {head_problem}")
    if head is not None and head[0] != 0:
        return VerifyResult(
            False,
            0,
            1,
            f"end of log: {LOG_NAME} is missing but head says seq {head[0]} (log removed)",
        )
    return VerifyResult(True, 0, None, "ok: empty log")


def _verify_lines(
    log: BinaryIO,
    key: bytes,
    head: tuple[int, str] | None,
    head_problem: str | None,
    remembered: tuple[int, str] | None,
    log_path: Path,
) -> VerifyResult:
    """Given the open log, check each line on its own and in the chain, then the end against
    the head and the (seq, hash) the index `remembered`."""
    prev = ZERO_HASH
    hash_at_head = ZERO_HASH
    hash_at_memory = None
    good = 0
    for number, raw in enumerate(log, start=1):
        if not raw.endswith(b"\n"):
            return VerifyResult(
                False, good, number, f"line {number}: no newline at the end (file truncated?)"
            )
        line = raw[:-1]
        problem = _record_problem(key, line)
        if problem:
            return VerifyResult(False, good, number, f"line {number}: {problem}")
        record = json.loads(line)
        if record["seq"] != number:
            return VerifyResult(
                False,
                good,
                number,
                f"line {number}: seq {record['seq']} follows {good} "
                "(record removed, inserted or reordered)",
            )
        if record["prev"] != prev:
            return VerifyResult(
                False,
                good,
                number,
                f"line {number}: prev does not match line {good} "
                "(record removed, inserted or reordered)",
            )
        prev = line_hash(line)
        good = number
        if head is not None and head[0] == number:
            hash_at_head = prev
        if remembered is not None and remembered[0] == number:
            hash_at_memory = prev
    result = _verify_end(good, head, head_problem, hash_at_head)
    return _against_memory(result, remembered, hash_at_memory, log_path)


def _against_memory(result: VerifyResult, remembered: tuple[int, str] | None,
                    hash_at_memory: str | None, log_path: Path) -> VerifyResult:
    """Given the result of an otherwise intact chain and the hash of its record at the seq the
    index remembers, fail it if it ends before that seq or holds another record there."""
    if not result.ok or remembered is None:
        return result
    seq, record_hash = remembered
    if result.records < seq:
        return VerifyResult(False, result.records, result.records + 1, (
            f"end of log: {log_path} ends at seq {result.records} but the index remembers seq "
            f"{seq} (records removed)"))
    if hash_at_memory != record_hash:
        return VerifyResult(False, result.records, seq, (
            f"line {seq}: {log_path} does not match the record the index remembers at seq "
            f"{seq} (log rewritten)"))
    return result


def _verify_end(
    count: int, head: tuple[int, str] | None, head_problem: str | None, hash_at_head: str
) -> VerifyResult:
    """Given an intact chain of `count` records, compare its end with the head."""
    missing_at = count + 1
    if head_problem:
        return VerifyResult(False, count, missing_at, f"end of log: {HEAD_NAME}: {head_problem}")
    if head is None:
        if count == 0:
            return VerifyResult(True, 0, None, "ok: empty log")
        return VerifyResult(
            False,
            count,
            missing_at,
            f"end of log: {HEAD_NAME} is missing (records may have been removed from the end)",
        )
    head_seq, head_hash = head
    if head_seq > count:
        return VerifyResult(
            False,
            count,
            missing_at,
            f"end of log: head says seq {head_seq}, log ends at {count} "
            "(records removed from the end)",
        )
    if head_hash != hash_at_head:
        return VerifyResult(
            False,
            count,
            missing_at,
            f"end of log: line {head_seq} does not match the head (log rewritten?)",
        )
    if head_seq < count:
        return VerifyResult(
            True,
            count,
            None,
            f"ok: {count} records; the head lags by {count - head_seq} "
            "(an append was interrupted; the next append updates it)",
        )
    return VerifyResult(True, count, None, f"ok: {count} records, chain and head intact")


def _record_problem(key: bytes, line: bytes) -> str | None:
    """Given one log line (no newline), return what is wrong with it on its own, or None."""
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:
        return "not valid JSON (file truncated?)"
    if not isinstance(record, dict):
        return "not a record (record changed)"
    for field in RESERVED:
        if field not in record:
            return f"no {field!r} field (record changed)"
    if type(record["seq"]) is not int or not isinstance(record["mac"], str):
        return "bad seq or mac field (record changed)"
    mac = record.pop("mac")
    expected = hmac.new(key, canonical(record), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return "mac mismatch (record changed)"
    record["mac"] = mac
    if canonical(record) != line:
        # Same content, different bytes: the next record's prev would no longer match, but the
        # change is here, so say so here.
        return "not in canonical form (record changed)"
    return None


def _open_key(path: Path) -> bytes:
    """Given audit.key's path, return the key. Raise FileNotFoundError if it is absent and
    AuditError if it is not a private regular file of the right size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AuditError(f"{path} is a symlink; refusing to trust it") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuditError(f"{path} is not a regular file; refusing to trust it")
        if st.st_mode & 0o077:
            raise AuditError(
                f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: others could read or change "
                f"it, so it cannot be trusted. Check who had access, then `chmod 600 {path}`"
            )
        key = os.pread(fd, KEY_BYTES + 1, 0)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise AuditError(f"{path} holds {len(key)} bytes, expected {KEY_BYTES}; refusing it")
    return key
