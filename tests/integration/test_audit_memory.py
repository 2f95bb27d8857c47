"""The index remembers the audit chain's last seq and hash: a log emptied, deleted, cut short or
rewritten after records were written fails `audit verify` (installed CLI, real state dir), and
no command starts a new chain over it. A log ahead of the index (a run killed after its audit
write, before its index commit) is normal and verifies."""

from __future__ import annotations

import hashlib
import hmac
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Studio

from archivekeeper.act.audit import AuditLog, canonical

RECORDS = 6  # config_change and clock_accept (the studio fixture's), four hold_add


def hold(studio: Studio, n: int):
    return studio.cli("hold", "add", "--customer", f"Asiakas {n}", "--kind", "invoice",
                      "--reason", "unpaid", "--force")


@pytest.fixture
def chained(studio: Studio) -> Studio:
    """A studio whose audit log holds RECORDS records written by the CLI."""
    for n in range(RECORDS - 2):
        assert hold(studio, n).returncode == 0
    return studio


def log_path(studio: Studio) -> Path:
    return studio.state / "audit.jsonl"


def verify(studio: Studio) -> subprocess.CompletedProcess:
    return studio.cli("audit", "verify")


def assert_damaged(studio: Studio, *words: str) -> str:
    result = verify(studio)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in (str(log_path(studio)), *words):
        assert word in lines[0], lines[0]
    return lines[0]


def assert_no_new_chain(studio: Studio) -> None:
    """A command that must audit refuses, and writes no record and no key."""
    before = {p.name: p.read_bytes() for p in studio.state.glob("audit.*")
              if p.name != "audit.lock"}
    result = hold(studio, 99)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("archivekeeper: audit log: ") and len(
        result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.rstrip().endswith("nothing more was done")
    after = {p.name: p.read_bytes() for p in studio.state.glob("audit.*")
             if p.name != "audit.lock"}
    assert after == before


def forge_head(state: Path, seq: int, last_line: bytes) -> None:
    """Write a valid audit.head for `seq` with the real key (an attacker who can read it)."""
    key = (state / "audit.key").read_bytes()
    body = {"seq": seq, "hash": hashlib.sha256(last_line).hexdigest()}
    mac = hmac.new(key, b"archivekeeper audit.head\0" + canonical(body), hashlib.sha256)
    (state / "audit.head").write_bytes(canonical({**body, "mac": mac.hexdigest()}) + b"\n")


def test_a_normal_run_verifies(chained: Studio) -> None:
    result = verify(chained)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"audit log intact: {RECORDS} records"


def test_an_emptied_log_with_its_head_deleted_is_damage(chained: Studio) -> None:
    log_path(chained).write_bytes(b"")
    (chained.state / "audit.head").unlink()
    assert_damaged(chained, f"seq {RECORDS}")
    assert_no_new_chain(chained)
    assert log_path(chained).read_bytes() == b""


def test_a_deleted_log_and_head_is_damage(chained: Studio) -> None:
    log_path(chained).unlink()
    (chained.state / "audit.head").unlink()
    assert_damaged(chained, f"seq {RECORDS}", "missing")
    assert_no_new_chain(chained)
    assert not log_path(chained).exists()


def test_a_log_cut_short_with_a_matching_head_forged_is_damage(chained: Studio) -> None:
    lines = log_path(chained).read_bytes().splitlines(keepends=True)[:2]
    log_path(chained).write_bytes(b"".join(lines))
    forge_head(chained.state, 2, lines[-1][:-1])
    assert_damaged(chained, f"seq {RECORDS}", "ends at seq 2")
    assert_no_new_chain(chained)


def test_a_log_rewritten_with_the_key_is_damage(chained: Studio) -> None:
    """A new chain, longer than the old one, sealed with the real key: only the remembered
    hash of record RECORDS tells it apart."""
    log_path(chained).unlink()
    (chained.state / "audit.head").unlink()
    forger = AuditLog(chained.state, lambda: datetime.now(UTC))  # knows nothing of the index
    for n in range(RECORDS + 3):
        forger.append("touch", copies=n)
    assert_damaged(chained, f"seq {RECORDS}", "does not match")


def test_a_deleted_key_log_and_head_is_damage_and_not_re_keyed(chained: Studio) -> None:
    for name in ("audit.jsonl", "audit.head", "audit.key"):
        (chained.state / name).unlink()
    assert_damaged(chained, f"seq {RECORDS}", "audit.key")
    assert_no_new_chain(chained)
    assert not (chained.state / "audit.key").exists()


KILLED_RUN = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from archivekeeper.act.audit import AuditLog
from archivekeeper.index.store import Store

state = Path(sys.argv[1])
store = Store(state)
log = AuditLog(state, lambda: datetime.now(UTC), store)
with store.transaction():
    store.set_meta("killed_run", "1")
    log.append("touch", copies=1)
    os.kill(os.getpid(), signal.SIGKILL)  # after the audit fsync, before the index commit
"""


def remembered(studio: Studio) -> str | None:
    db = sqlite3.connect(studio.state / "index.sqlite")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        return row[0] if row else None
    finally:
        db.close()


def test_a_run_killed_between_its_audit_write_and_its_index_commit_verifies(
        chained: Studio) -> None:
    before = remembered(chained)
    assert before is not None and before.startswith(f"{RECORDS} ")
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(chained.state)],
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert remembered(chained) == before  # the index lags the log by one record
    assert len(log_path(chained).read_bytes().splitlines()) == RECORDS + 1

    result = verify(chained)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"audit log intact: {RECORDS + 1} records"
    assert hold(chained, 7).returncode == 0  # the next append chains on and catches up
    assert remembered(chained).startswith(f"{RECORDS + 2} ")
    assert verify(chained).returncode == 0


def test_the_index_keeps_the_later_seq_when_appenders_remember_out_of_turn(tmp_path) -> None:
    from archivekeeper.index.store import Store

    store = Store(tmp_path)
    store.remember_audit_head(5, "5" * 64)
    store.remember_audit_head(4, "4" * 64)  # the slower of two appenders commits last
    assert store.audit_head() == (5, "5" * 64)
    store.remember_audit_head(6, "6" * 64)
    assert store.audit_head() == (6, "6" * 64)


def _append_with_index(state: str, label: int, count: int) -> None:
    from archivekeeper.index.store import Store

    store = Store(Path(state))
    log = AuditLog(Path(state), lambda: datetime.now(UTC), store)
    for n in range(count):
        if n % 2:
            log.append("touch", worker=label, n=n)
        else:
            with store.transaction():
                log.append("touch", worker=label, n=n)


def test_two_processes_appending_at_once_leave_the_index_at_the_last_record(tmp_path) -> None:
    import multiprocessing

    from archivekeeper.index.store import Store

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_with_index, args=(str(tmp_path), label, 150))
               for label in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    store = Store(tmp_path)
    last_line = (tmp_path / "audit.jsonl").read_bytes().splitlines()[-1]
    assert store.audit_head() == (300, hashlib.sha256(last_line).hexdigest())
    result = AuditLog(tmp_path, lambda: datetime.now(UTC), store).verify()
    assert (result.ok, result.records) == (True, 300), result.message


def test_a_damaged_memory_in_the_index_is_a_clear_error(chained: Studio) -> None:
    db = sqlite3.connect(chained.state / "index.sqlite")
    with db:
        db.execute("UPDATE meta SET value = 'x' WHERE key = 'audit_head'")
    db.close()
    result = verify(chained)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"archivekeeper: {chained.state / 'index.sqlite'}: the audit chain it remembers is "
        "damaged ('x')"]
