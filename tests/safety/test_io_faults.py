"""I/O faults (EIO, ENOSPC, EROFS, EACCES) at the Nth call of each place archivekeeper writes:
fsops' file operations, the audit log's record writes and the index's commits, during `apply`,
`trash purge`, `trash restore` and `erase --yes`, run as the installed CLI. Each run stops or
skips with one clear line naming what failed (never a traceback), loses nothing, leaves an audit
log that verifies, and the same command run again without the fault leaves the archive as a
run that met no fault would have.

The hooks (README, test hooks): ARCHIVEKEEPER_FAULT, ARCHIVEKEEPER_AUDIT_FAULT and
ARCHIVEKEEPER_STORE_FAULT, each `ERRNO@N` (the Nth call) or `ERRNO@N+` (from the Nth on).

The default run takes calls 1-4 and the last of each command and boundary, the errno turning
with them. `pytest -m slow tests/safety/test_io_faults.py` (or, in the default
test, ARCHIVEKEEPER_ALL_FAULTS=1) runs every call a clean run makes with each errno failing
that call alone, and with ENOSPC failing it and every later one (580 points). Then a real full
disk (a filled tmpfs as state_dir, one out of inodes as the volume) against the hooks, and the
daemon: a failed apply job is logged, the daemon goes on, and its next report names it.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DUE_RULES, OLD, Studio, age_folders, at, trash_states
from e2e.test_daemon import TEST_CONFIG, run_daemon  # noqa: F401 (a fixture)
from unit.test_daemon_decisions import FakeWatcher, Monotonic

from archivekeeper import faults, logs
from archivekeeper.act import audit, fsops
from archivekeeper.clock import FixedClock
from archivekeeper.index import store
from archivekeeper.service.daemon import Daemon, Job
from archivekeeper.session import Session

DAY = date.today()
NOON = datetime(DAY.year, DAY.month, DAY.day, 12).astimezone()  # the Studio's clock
LATER = DAY + timedelta(days=31)  # the trash of DAY has expired
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "JPEG/IMG_2.jpg": b"k" * 10,
         "RAW/sub/IMG_1.CR2": b"r" * 300}
ERASED = "Mäkinen Anna"
DUE = ("2015-03-01 Mäkinen Anna", "Korhonen Päivi/01.04.2015 wedding")
KEPT = ("2025-06-01 Virtanen Matti", "2025-07-01 Mäkinen Anna")
ERRNOS = ("EIO", "ENOSPC", "EROFS", "EACCES")
HOOKS = {"fsops": "ARCHIVEKEEPER_FAULT", "audit": "ARCHIVEKEEPER_AUDIT_FAULT",
         "store": "ARCHIVEKEEPER_STORE_FAULT"}
MODULES = {"fsops": fsops, "audit": audit, "store": store}
# What a failed index write says (SQLite's words for the errno; store._SQLITE_MESSAGES).
SQLITE_SAYS = {"ENOSPC": "database or disk is full", "EIO": "disk I/O error",
               "EROFS": "attempt to write a readonly database", "EACCES": "disk I/O error"}


@dataclass(frozen=True)
class Command:
    setup: tuple[str, ...]  # run first, without a fault
    args: tuple[str, ...]
    day: date
    gone_for_good: tuple[str, ...]  # shoots whose files the command may delete for good
    repeatable: bool = True  # run again after a scan, as its message may ask


COMMANDS = {
    "apply": Command((), ("apply",), DAY, ()),
    "purge": Command(("apply",), ("trash", "purge"), LATER, DUE),
    "restore": Command(("apply",), ("trash", "restore", "1"), DAY, (), repeatable=False),
    "erase": Command(("apply",), ("erase", "--customer", ERASED, "--yes"), DAY,
                     tuple(s for s in DUE + KEPT if s.endswith(ERASED))),
}
# How many calls of each boundary a clean run of each command makes on this archive
# (test_a_clean_run_makes_the_calls_the_fault_points_count_on checks it).
CALLS = {
    ("fsops", "apply"): 27, ("fsops", "purge"): 19, ("fsops", "restore"): 13,
    ("fsops", "erase"): 17,
    ("audit", "apply"): 2, ("audit", "purge"): 4, ("audit", "restore"): 2, ("audit", "erase"): 5,
    ("store", "apply"): 10, ("store", "purge"): 8, ("store", "restore"): 8, ("store", "erase"): 11,  # restore: its scan of the shoot after, 5; erase: its quick scan first, 5
}
ALL = bool(os.environ.get("ARCHIVEKEEPER_ALL_FAULTS"))


def default_points() -> list[tuple[str, str, str]]:
    """(boundary, command, ERRNO@N): calls 1-4 and the last of each, the errno turning with
    them (and starting one further for each command, so every errno meets every boundary)."""
    out = []
    for (boundary, command), count in CALLS.items():
        calls = sorted({n for n in (*range(1, 5), count) if n <= count})
        shift = list(COMMANDS).index(command)
        out += [(boundary, command, f"{ERRNOS[(i + shift) % 4]}@{n}")
                for i, n in enumerate(calls)]
    return out


def all_points() -> list[tuple[str, str, str]]:
    """Every errno at every call, once; and ENOSPC from every call on (a disk that stays full)."""
    return [(boundary, command, f"{name}@{n}{onward}")
            for (boundary, command), count in CALLS.items()
            for n in range(1, count + 1)
            for name, onward in [(e, "") for e in ERRNOS] + [("ENOSPC", "+")]]


def point_id(point) -> str:
    return "-".join(point).replace("@", "at").replace("+", "on")


def build(root: Path, extra: str = DUE_RULES) -> Studio:
    studio = Studio(root, volumes=("studio",), extra=extra)
    studio.init_volumes()
    for rel in DUE:
        studio.shoot("studio", rel, FILES, mtime=OLD)
    for rel in KEPT:
        studio.shoot("studio", rel, FILES, mtime=time.time() - 30 * 86400)
    studio.ok("scan")
    return studio


def prepared(root: Path, command: Command) -> Studio:
    studio = build(root)
    if command.setup:
        studio.ok(*command.setup)
    studio.clock_env = at(command.day)
    return studio


def layout(studio: Studio) -> dict[str, list[str]]:
    """Every file of the archive -> where it is: "place" and/or "trash" (once per batch holding
    it). Wherever it is, its bytes must be the original ones."""
    volume = studio.volumes["studio"]
    trash = volume / ".archivekeeper" / "trash"
    batches = sorted(trash.iterdir()) if trash.is_dir() else []
    out = {}
    for shoot in DUE + KEPT:
        for name, data in FILES.items():
            rel = f"{shoot}/{name}"
            found = [("place", volume / rel)] + [("trash", batch / rel) for batch in batches]
            out[rel] = [kind for kind, path in found if path.exists()]
            for _, path in found:
                if path.exists():
                    assert path.read_bytes() == data, path
    return out




def finish(studio: Studio, command: Command) -> None:
    """Run the command again without the fault; then, as apply and erase may ask when a shoot
    changed under them, scan and run it once more."""
    again = studio.run(*command.args)
    done_already = "no restorable trash item 1" in again.output  # recovery finished it
    assert again.exit_code == 0 or done_already, again.output
    age_folders(studio)
    studio.ok("scan")
    if command.repeatable:
        studio.ok(*command.args)


_expected: dict[str, tuple[dict, dict]] = {}


def fault_free(name: str, tmp_path_factory) -> tuple[dict, dict]:
    """The layout and trash states a run that met no fault leaves."""
    if name not in _expected:
        command = COMMANDS[name]
        studio = prepared(tmp_path_factory.mktemp(f"clean-{name}"), command)
        studio.ok(*command.args)
        _expected[name] = (layout(studio), trash_states(studio))
    return _expected[name]


def error_text(boundary: str, name: str) -> str:
    if boundary == "store":
        return SQLITE_SAYS[name]
    return os.strerror(getattr(errno, name))


def full_disk_says(line: str) -> bool:
    """What a full disk under state_dir makes a command say: as the store and audit hooks."""
    return ("index.sqlite: cannot write the index (database or disk is full)" in line
            or ("audit log: cannot write" in line and "No space left on device" in line))


def names_what_failed(boundary: str, line: str) -> bool:
    """The file (fsops), the audit log or the index; and no advice that cannot help."""
    if boundary == "fsops":
        return any(shoot in line for shoot in DUE + KEPT)
    if boundary == "audit":
        return "audit.jsonl" in line
    return "index.sqlite" in line and "another archivekeeper" not in line


def check_fault_run(studio: Studio, boundary: str, command: Command, spec: str):
    name = spec.split("@")[0]
    result = studio.cli(*command.args, env={HOOKS[boundary]: spec})
    stderr = result.stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    text = error_text(boundary, name)
    naming = [line for line in stderr.splitlines() if text in line]
    assert naming, ("the fault was not reached, or not named", stderr)
    if not spec.endswith("+"):
        assert len(naming) == 1, stderr  # one clear line, not an echo of it
    assert all(names_what_failed(boundary, line) for line in naming), stderr
    # an emptied folder that could not be removed costs nothing: that run may go on to its end
    pruning_only = all("prune_failed" in line for line in naming)
    assert result.returncode != 0 or pruning_only, (result.returncode, stderr)
    return result


def check_nothing_lost(studio: Studio, command: Command) -> None:
    """Every file in place or in trash, once (or gone, if the command deletes it for good);
    nothing of a shoot that was not due moved."""
    for rel, where in layout(studio).items():
        may_go = any(rel.startswith(s + "/") for s in command.gone_for_good)
        assert len(where) == 1 or (may_go and not where), (rel, where)
        if not may_go and any(rel.startswith(s + "/") for s in KEPT):
            assert where == ["place"], (rel, where)


def check_verifies(studio: Studio) -> None:
    verified = studio.run("audit", "verify")
    assert verified.exit_code == 0, verified.output


POINTS = all_points() if ALL else default_points()


@pytest.mark.parametrize("point", POINTS, ids=point_id)
def test_a_fault_stops_or_skips_clearly_loses_nothing_and_a_rerun_finishes(
        point, tmp_path, tmp_path_factory):
    boundary, name, spec = point
    command = COMMANDS[name]
    studio = prepared(tmp_path, command)
    check_fault_run(studio, boundary, command, spec)
    check_nothing_lost(studio, command)
    check_verifies(studio)
    finish(studio, command)
    expected_layout, expected_states = fault_free(name, tmp_path_factory)
    assert layout(studio) == expected_layout
    assert trash_states(studio) == expected_states
    check_verifies(studio)


@pytest.mark.slow
@pytest.mark.timeout(0)
@pytest.mark.parametrize("point", [] if ALL else all_points(), ids=point_id)
def test_every_fault_point(point, tmp_path, tmp_path_factory):
    test_a_fault_stops_or_skips_clearly_loses_nothing_and_a_rerun_finishes(
        point, tmp_path, tmp_path_factory)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_clean_run_makes_the_calls_the_fault_points_count_on(name, tmp_path, monkeypatch):
    command = COMMANDS[name]
    studio = prepared(tmp_path, command)
    counters = {b: faults.Fault(errno.EIO, 10**9, False) for b in MODULES}
    for boundary, module in MODULES.items():
        monkeypatch.setattr(module, "_FAULT", counters[boundary])
    studio.ok(*command.args)
    assert {b: c.calls for b, c in counters.items()} == {
        b: CALLS[(b, name)] for b in MODULES}


@pytest.mark.parametrize("hook, spec, ends, says", [
    # the first record the daemon writes is the catch-up apply's: the job fails
    ("ARCHIVEKEEPER_AUDIT_FAULT", "ENOSPC@1", "job_failed", "No space left on device"),
    # its first file operation fails: the job moves the rest and ends with that one failed
    ("ARCHIVEKEEPER_FAULT", "EIO@1", "job_finished", "Input/output error"),
], ids=["audit", "fsops"])
def test_the_daemon_logs_a_failed_apply_goes_on_and_its_next_report_names_it(
        tmp_path, run_daemon, hook, spec, ends, says):  # noqa: F811 (the fixture)
    studio = build(tmp_path, TEST_CONFIG + DUE_RULES)
    daemon = run_daemon(studio, env={hook: spec})
    applied = daemon.wait(ends, job="apply", why="catch_up", timeout=60)
    assert says in json.dumps(applied, ensure_ascii=False), applied
    assert "internal error" not in json.dumps(applied), applied
    # the next job runs: the catch-up report, the next report, which names the failure
    report = daemon.wait("job_finished", job="report", why="catch_up", timeout=60)
    doc = json.loads(next(Path(p) for p in report["paths"] if p.endswith(".json")).read_text())
    failed = [p for p in doc["problems"] if p["kind"] == "job"]
    assert len(failed) == 1 and "apply" in failed[0]["text"] and says in failed[0]["text"], (
        doc["problems"])
    # a file the disk failed is not said to have changed, or to be no longer due
    assert not any("no longer due" in p["text"] for p in doc["problems"]), doc["problems"]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0
    check_nothing_lost(studio, COMMANDS["apply"])
    check_verifies(studio)


def test_a_failure_the_full_index_cannot_take_is_kept_until_it_can_and_reported(
        tmp_path, monkeypatch):
    studio = build(tmp_path, TEST_CONFIG + DUE_RULES)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    stream = io.StringIO()
    logs.configure(stream=stream, json=True)
    daemon = Daemon(Session(str(studio.config), FixedClock(NOON)), monotonic=Monotonic(),
                    make_watcher=FakeWatcher)
    try:
        daemon.start_watching()
        monkeypatch.setattr(store, "_FAULT", faults.Fault(errno.ENOSPC, 1, onward=True))
        daemon.run_job(Job("apply"))  # the disk under state_dir is full from here on
        monkeypatch.setattr(store, "_FAULT", None)  # room again
        daemon.run_job(Job("scan"))
    finally:
        daemon.close()
        daemon.session.close()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in events if e["event"] == "job_failed"]
    assert [e["job"] for e in failed] == ["apply"]
    assert "index.sqlite" in failed[0]["error"] and "disk is full" in failed[0]["error"]
    assert [e["event"] for e in events].count("job_failure_not_stored") == 1
    assert [e["job"] for e in events if e["event"] == "job_finished"] == ["scan"]
    out = tmp_path / "out"
    studio.ok("report", "--out", str(out))
    doc = json.loads(next(out.glob("*.json")).read_text())
    assert [p["text"] for p in doc["problems"] if p["kind"] == "job"] == [
        f"the daemon's apply job (schedule) failed on {NOON.isoformat()[:16]}: "
        + failed[0]["error"]]
    check_nothing_lost(studio, COMMANDS["apply"])


@pytest.fixture
def tmpfs():
    """tmpfs(target, size) mounts a tmpfs of that size for one test; unmounted at teardown."""
    mounted: list[Path] = []

    def mount(target: Path, size: str) -> None:
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                               str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {done.stderr}")
        mounted.append(target)

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(target)], check=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of folder with one file, then free `leave` bytes of it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                chunk //= 2
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("name, leave_kb", [
    ("apply", 0), ("apply", 16), ("purge", 16), ("purge", 64), ("restore", 0), ("erase", 0),
    ("erase", 64)])
def test_a_real_full_disk_under_state_dir_does_what_the_hooks_do(name, leave_kb, tmp_path,
                                                                 tmp_path_factory, tmpfs):
    # state_dir on a 2 MB tmpfs, filled up but for leave_kb: the run meets ENOSPC partway
    tmpfs(tmp_path / "state", "2m")
    command = COMMANDS[name]
    studio = prepared(tmp_path, command)
    # SQLite creates index.sqlite-shm when it opens the index, which a full disk refuses:
    # holding the index open keeps it, so the run gets as far as its writes
    held = sqlite3.connect(studio.state / "index.sqlite")
    try:
        held.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every write needs new room
        filler = fill(studio.state, leave_kb * 1024)
        result = studio.cli(*command.args)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert [line for line in result.stderr.splitlines() if full_disk_says(line)] == [
            result.stderr.splitlines()[-1]], result.stderr
        check_nothing_lost(studio, command)
        check_verifies(studio)  # still full
        filler.unlink()
    finally:
        held.close()
    finish(studio, command)
    expected_layout, expected_states = fault_free(name, tmp_path_factory)
    assert layout(studio) == expected_layout
    assert trash_states(studio) == expected_states
    check_verifies(studio)


def test_a_real_full_volume_fails_each_move_as_the_fsops_hook_does(tmp_path, tmpfs):
    # the volume on a tmpfs out of inodes: every trash folder apply makes is refused ENOSPC
    tmpfs(tmp_path / "real" / "vols" / "studio", "4m,nr_inodes=200")
    real = build(tmp_path / "real")
    spare = real.volumes["studio"] / "spare"
    spare.mkdir()
    with pytest.raises(OSError) as full:
        for n in range(1000):
            os.close(os.open(spare / str(n), os.O_CREAT | os.O_WRONLY, 0o600))
    assert full.value.errno == errno.ENOSPC
    (tmp_path / "hooked").mkdir()
    hooked = build(tmp_path / "hooked")
    on_real = real.cli("apply")
    on_hook = hooked.cli("apply", env={"ARCHIVEKEEPER_FAULT": "ENOSPC@1+"})
    assert (on_real.returncode, on_real.stdout, on_real.stderr) == (
        on_hook.returncode, on_hook.stdout, on_hook.stderr)
    assert on_real.returncode == 1 and on_real.stderr.count("failed (No space left on device)") \
        == len(DUE) * len(FILES), on_real.stderr
    check_nothing_lost(real, COMMANDS["apply"])
    check_verifies(real)


def test_an_erasure_a_disk_error_cut_short_is_finished_by_the_next_apply(tmp_path):
    command = COMMANDS["erase"]
    studio = prepared(tmp_path, command)
    cut = studio.cli(*command.args, env={"ARCHIVEKEEPER_FAULT": "EIO@1"})  # her first unlink
    assert cut.returncode == 1 and "failed (Input/output error)" in cut.stderr, cut.stderr
    age_folders(studio)
    studio.ok("scan")  # what the daemon does next, unattended
    studio.ok("apply")
    left = {rel: where for rel, where in layout(studio).items() if ERASED in rel}
    assert not any(left.values()), left
