"""Hostile input fed to a running `archivekeeper daemon` (issue 13): mutated configs and odd
config files reloaded by SIGHUP (alone and in bursts), hostile folder and file names appearing
under a watched volume, malformed markers on a drive slot, and a burst of thousands of file
events. One daemon per test, kept running across all its cases. After every test the daemon is
alive and answering, its stderr holds no traceback, every stdout line was one JSON document
(its reader parsed them all, up to `daemon_stopping`), it exits 0 on SIGTERM, and the audit log
verifies.

Counts scale with ARCHIVEKEEPER_FUZZ_SCALE; `-m slow` runs ten times as many from a fresh seed
(fuzzing.py)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from conftest import DUE_RULES, OLD, Studio
from e2e.test_daemon import (  # noqa: F401 (run_daemon is a fixture)
    TEST_CONFIG,
    Daemon,
    cli_shoots,
    poll_until,
    run_daemon,
)

from safety import fuzzing
from safety.test_fuzz_config import draw_names, example, mutated

HELD = "2015-01-01 Pidetty Asiakas"  # due, but held by the good config
HOLD = f"""\
holds:
  - {{shoot: "backup-1:{HELD}", kind: legal-claim, reason: fuzz}}
"""
ANSWERS = ("config_invalid", "config_reloaded")


def make_studio(root: Path, volumes=("studio", "backup-1"), extra: str = TEST_CONFIG) -> Studio:
    studio = Studio(root, volumes=volumes, removable=volumes[1:], extra=extra)
    studio.init_volumes()
    return studio


class Watch:
    """A running daemon under fuzz: its stderr drained (a full pipe would stall it), the
    answers to SIGHUP counted."""

    def __init__(self, daemon: Daemon, studio: Studio):
        self.daemon, self.studio = daemon, studio
        self.good = studio.config.read_text()  # the config it started with
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(daemon.proc.stderr),
                         daemon=True).start()

    def answers(self) -> list[dict]:
        with self.daemon.cond:
            return [e for e in self.daemon.events if e["event"] in ANSWERS]

    def wait_answers(self, count: int, timeout: float = 30, what: object = "") -> list[dict]:
        d = self.daemon
        with d.cond:
            d.cond.wait_for(lambda: len(self.answers()) >= count or d.proc.poll() is not None,
                            timeout)
        got = self.answers()
        assert len(got) >= count, (what, count, d.events[-5:], d.proc.poll(), self.stderr[-5:])
        return got

    def hup(self, what: object = "") -> dict:
        """SIGHUP; wait for its answer and return it."""
        before = len(self.answers())
        self.daemon.proc.send_signal(signal.SIGHUP)
        return self.wait_answers(before + 1, what=what)[before]

    def sync(self, tag: str) -> dict:
        """Put the good config back (tagged, so its hash is new) and wait until a reload that
        read it is in force: every SIGHUP sent before has been handled then."""
        raw = (self.good + f"# sync {tag}\n").encode()
        put(self.studio.config, raw)
        self.daemon.proc.send_signal(signal.SIGHUP)
        return self.daemon.wait("config_reloaded", hash=hashlib.sha256(raw).hexdigest(),
                                timeout=30)

    def alive(self) -> None:
        assert self.daemon.proc.poll() is None, self.stderr[-20:]

    def finish(self) -> None:
        """Answering, stopped cleanly, every stdout line JSON, no traceback, audit verifies."""
        self.alive()
        self.daemon.notes.wait_idle(60)
        assert self.daemon.stop() == 0
        self.daemon.wait("daemon_stopping")  # the reader parsed every line up to the last
        text = "".join(self.stderr)
        assert fuzzing.no_traceback(text), text[-3000:]
        put(self.studio.config, self.good.encode())
        verify = self.studio.cli("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr


def put(path: Path, raw: bytes | None) -> None:
    """Whatever is at `path` (a file, a folder, a symlink, a FIFO) replaced by `raw` (None:
    nothing)."""
    if path.is_dir() and not path.is_symlink():
        os.rmdir(path)
    elif os.path.lexists(path):
        path.unlink()
    if raw is not None:
        path.write_bytes(raw)


# --- 1. configs reloaded by SIGHUP ------------------------------------------------------------


def odd_files(path: Path, good: bytes) -> dict:
    """Named ways to leave something other than a good config file at `path`."""
    def directory():
        put(path, None)
        path.mkdir()

    def removed():
        put(path, None)

    def symlink_loop():
        put(path, None)
        path.symlink_to(path.name)

    def dangling():
        put(path, None)
        path.symlink_to("nowhere.yaml")

    def fifo():
        put(path, None)
        os.mkfifo(path)

    return {
        "a directory": directory, "removed": removed, "a symlink loop": symlink_loop,
        "a dangling symlink": dangling, "a FIFO": fifo,
        "1 MB": lambda: put(path, good + b"#" + b"x" * (1 << 20) + b"\n"),
        "just under 1 MiB": lambda: put(path, good + b"#" * ((1 << 20) - len(good) - 1) + b"\n"),
        "non-UTF-8": lambda: put(path, good.replace(b"studio", b"stu\xffdio", 1)),
        "empty": lambda: put(path, b""),
        "NUL bytes": lambda: put(path, b"\0" * 100),
        "a list": lambda: put(path, b"- 1\n- 2\n"),
        "state_dir changed": lambda: put(path, good.replace(b"/state\n", b"/other-state\n", 1)),
        "unknown key": lambda: put(path, good + b"bogus: 1\n"),
        "bad duration": lambda: put(path, good.replace(b"1 second", b"1 fortnight")),
        "bad cron": lambda: put(path, good.replace(b'scan: "0 3 1 1 *"', b'scan: "61 * * * *"')),
        "bad glob": lambda: put(path, good + b"  - {name: g, match: {path: '[a-'}, "
                                       b"keep_for: 1 day}\n"),
    }


def check_answer(answer: dict, path: Path, raw: bytes | None) -> None:
    """config_reloaded with the hash of what was written, or config_invalid naming the file,
    each error as FILE:LINE: ... (FILE: cannot read ... when there is no line to name)."""
    if answer["event"] == "config_reloaded":
        assert raw is not None and answer["hash"] == hashlib.sha256(raw).hexdigest(), answer
        assert answer["config"] == str(path)
        return
    assert str(path) in answer["error"], answer
    assert "stays in force" in answer["error"], answer
    for error in answer["errors"]:
        assert re.match(rf"{re.escape(str(path))}:(\d+: \S|\s*cannot read: )", error), answer


def prove_old_config_in_force(watch: Watch, tag: str) -> None:
    """After an invalid config, the old one (with its hold) is what an apply obeys: the held
    shoot stays through the apply of backup-1 coming online, a fresh due shoot beside it goes."""
    studio, daemon = watch.studio, watch.daemon
    watch.sync(f"proof {tag}")
    held = studio.volumes["backup-1"] / HELD
    if not held.exists():  # a valid mutated config without the hold was in force at an apply
        studio.shoot("backup-1", HELD, mtime=OLD)
    due = studio.shoot("backup-1", f"2015-01-02 Vanha {tag}", mtime=OLD)
    unheld = watch.good.replace(HOLD, "") + f"bogus: {tag}\n"
    studio.config.write_text(unheld)
    assert watch.hup()["event"] == "config_invalid"
    marker = studio.volumes["backup-1"] / ".archivekeeper"
    kept = studio.root / "marker-kept"
    offline = len(daemon.found("volume_offline", volume="backup-1"))
    applies = len(daemon.found("job_finished", job="apply", volume="backup-1"))
    marker.rename(kept)
    daemon.wait("volume_offline", volume="backup-1", times=offline + 1, timeout=15)
    kept.rename(marker)
    applied = daemon.wait("job_finished", job="apply", volume="backup-1", times=applies + 1,
                          timeout=30)
    assert not due.exists() and applied["moved_files"] >= 2, applied
    assert sorted(p.name for p in held.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]


def run_config_fuzz(tmp_path: Path, run_daemon, how_many: int, seed: int) -> None:  # noqa: F811
    studio = make_studio(tmp_path, extra=TEST_CONFIG + DUE_RULES + HOLD)
    good = studio.config.read_bytes()
    studio.shoot("backup-1", HELD, mtime=OLD)
    watch = Watch(run_daemon(studio), studio)
    watch.daemon.notes.wait_idle()
    assert (studio.volumes["backup-1"] / HELD).exists()  # the catch-up apply obeyed the hold
    rng = random.Random(seed)
    bases = [good.decode(), example(tmp_path)]
    odd = odd_files(studio.config, good)
    outcomes, kinds, slowest = Counter(), Counter(), 0.0
    started = time.monotonic()
    for case in range(how_many):
        if case % 10 == 9:  # a burst: several configs, a SIGHUP after each, no waiting
            for _ in range(rng.randint(2, 5)):
                put(studio.config, mutated(rng.choice(bases), draw_names(rng), rng))
                watch.daemon.proc.send_signal(signal.SIGHUP)
            watch.sync(f"burst {case}")
            kinds["burst"] += 1
            continue
        if case % 4 == 3:
            name = rng.choice(sorted(odd))
            odd[name]()
            raw = studio.config.read_bytes() if studio.config.is_file() else None
            kinds[name] += 1
            what = name
        else:
            names = draw_names(rng)
            raw = mutated(rng.choice(bases), names, rng)
            put(studio.config, raw)
            kinds.update(names)
            what = names
        at = time.monotonic()
        answer = watch.hup(what)
        slowest = max(slowest, time.monotonic() - at)
        check_answer(answer, studio.config, raw)
        outcomes[answer["event"]] += 1
        watch.alive()
        if case == how_many // 2:
            prove_old_config_in_force(watch, "middle")
    prove_old_config_in_force(watch, "end")
    elapsed = time.monotonic() - started
    answers = Counter(e["event"] for e in watch.answers())
    fuzzing.note(f"daemon config fuzz (seed {seed}): {how_many} cases in {elapsed:.1f} s "
                 f"(slowest reload {slowest:.2f} s), answers {dict(outcomes)}, in all with "
                 f"bursts and proofs {dict(answers)}; kinds {dict(kinds)}")
    assert outcomes["config_invalid"] and outcomes["config_reloaded"]
    watch.finish()


@pytest.mark.timeout(300)
def test_mutated_and_odd_configs_reloaded_by_sighup_keep_the_daemon_and_the_old_config(
        tmp_path, run_daemon):  # noqa: F811
    run_config_fuzz(tmp_path, run_daemon, fuzzing.count(40), fuzzing.seed())


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_mutated_configs_reloaded_by_sighup_slow(tmp_path, run_daemon):  # noqa: F811
    run_config_fuzz(tmp_path, run_daemon, fuzzing.count(40, slow=True), fuzzing.seed(slow=True))


# Found by the config fuzz above: a FIFO left in the config's place made the daemon's reload
# wait in open() for a writer that never came: no answer to SIGHUP, no job, no watchdog ping,
# ever (check-config and every command hung the same way).
def test_a_fifo_in_place_of_the_config_is_refused_not_waited_on(tmp_path, run_daemon):  # noqa: F811
    studio = make_studio(tmp_path)
    watch = Watch(run_daemon(studio), studio)
    put(studio.config, None)
    os.mkfifo(studio.config)
    answer = watch.hup("a FIFO")
    assert answer["event"] == "config_invalid"
    check_answer(answer, studio.config, None)
    checked = studio.cli("check-config", timeout=20)
    assert checked.returncode == 78 and str(studio.config) in checked.stderr
    watch.sync("fifo")
    watch.finish()


# --- 3. malformed markers in a drive's slot ----------------------------------------------------


def marker_kinds(kept: Path, studio_marker: Path) -> dict:
    """Named ways to fill a slot's .archivekeeper (given the path it must take): each makes the
    volume unusable. `kept` is the drive's real marker folder, moved away."""
    real = json.loads((kept / "volume.json").read_bytes())

    def file(raw: bytes):
        def make(meta: Path):
            meta.mkdir()
            (meta / "volume.json").write_bytes(raw)
        return make

    def at_marker(make_it):
        def make(meta: Path):
            meta.mkdir()
            make_it(meta / "volume.json")
        return make

    return {
        "garbage": file(bytes(random.Random(7).randrange(256) for _ in range(300))),
        "empty": file(b""),
        "1 MB": file(b'{"id": "' + b"a" * (1 << 20) + b'"}'),
        "deeply nested list": file(b"[" * 60_000),
        "deeply nested object": file(b'{"a": ' * 10_000),
        "not an object": file(b"[]"),
        "id not text": file(b'{"id": 5}'),
        "a 5000-digit id": file(b'{"id": 1' + b"0" * 5000 + b"}"),
        "non-UTF-8": file(b'{"id": "\xff"}'),
        "an unknown drive's id": file(json.dumps({"id": "f" * 32, "name": "backup-1"}).encode()),
        "another volume's id": file(studio_marker.read_bytes()),
        "its id, another name": file(json.dumps({**real, "name": "studio"}).encode()),
        "a symlink to the real one": at_marker(lambda p: p.symlink_to(kept / "volume.json")),
        "a directory": at_marker(lambda p: p.mkdir()),
        "a FIFO": at_marker(lambda p: os.mkfifo(p)),
        "a dangling symlink": at_marker(lambda p: p.symlink_to("nowhere")),
        ".archivekeeper a file": lambda meta: meta.write_bytes(json.dumps(real).encode()),
        ".archivekeeper a symlink to the real one": lambda meta: meta.symlink_to(kept),
        ".archivekeeper a symlink loop": lambda meta: meta.symlink_to(meta.name),
    }


def clear(meta: Path) -> None:
    if meta.is_dir() and not meta.is_symlink():
        shutil.rmtree(meta)
    elif os.path.lexists(meta):
        meta.unlink()


@pytest.mark.timeout(300)
def test_malformed_markers_in_a_drive_slot_leave_the_drive_offline_and_untouched(
        tmp_path, run_daemon):  # noqa: F811
    studio = make_studio(tmp_path, extra=TEST_CONFIG + DUE_RULES)
    due = studio.shoot("backup-1", "2015-01-01 Vanha Asiakas", mtime=OLD)
    studio.ok("scan")  # the drive seen once: its id is known (a first sight would register any)
    meta = studio.volumes["backup-1"] / ".archivekeeper"
    kept = tmp_path / "marker-kept"
    meta.rename(kept)  # the drive is not in its slot when the daemon starts
    watch = Watch(run_daemon(studio), studio)
    daemon = watch.daemon
    daemon.wait("volume_offline", volume="backup-1")
    daemon.notes.wait_idle()
    kinds = marker_kinds(kept, studio.volumes["studio"] / ".archivekeeper" / "volume.json")
    reasons = {}
    started = time.monotonic()
    for round_ in range(fuzzing.count(1)):
        for name, make in kinds.items():
            clear(meta)
            make(meta)
            seen = len(daemon.found("volume_offline", volume="backup-1"))
            # a reload probes every volume afresh and logs each one's state, with its reason
            watch.sync(f"{round_} {name}")
            offline = daemon.wait("volume_offline", volume="backup-1", times=seen + 1)
            reasons[name] = offline["reason"]
            assert str(studio.volumes["backup-1"]) in offline["reason"], (name, offline)
            watch.alive()
    assert not [e for e in daemon.found("job_started") if e.get("volume") == "backup-1"]
    assert daemon.found("job_finished", why="config_reloaded")  # the reloads' scans ran
    assert sorted(p.name for p in due.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]
    elapsed = time.monotonic() - started

    clear(meta)
    kept.rename(meta)  # the real drive: now the daemon acts on it, as a control
    applied = daemon.wait("job_finished", job="apply", volume="backup-1", timeout=30)
    assert applied["moved_files"] == 2 and not due.exists()
    offline = len(daemon.found("volume_offline", volume="backup-1"))
    (meta / "volume.json").write_bytes(b"[" * 60_000)  # spoilt while online: the 2 s probe
    daemon.wait("volume_offline", volume="backup-1", times=offline + 1, timeout=15)
    fuzzing.note(f"daemon marker fuzz: {len(reasons) * fuzzing.count(1)} malformed markers in "
                 f"{elapsed:.1f} s, each offline with its reason; e.g. "
                 f"{reasons.get('deeply nested list')!r}")
    watch.finish()


# Found by the marker fuzz above: a marker of 60,000 "[" (within the 64 kB read) made json.loads
# raise RecursionError, which no one caught: each probe failed, the daemon logged daemon_error
# every 2 s and ran no job again, for any volume, until the marker was removed; every command
# said "internal error".
def test_a_deeply_nested_marker_makes_its_volume_offline_not_every_probe_fail(tmp_path):
    studio = make_studio(tmp_path)
    (studio.volumes["backup-1"] / ".archivekeeper" / "volume.json").write_bytes(b"[" * 60_000)
    scanned = studio.cli("scan")
    assert scanned.returncode == 0 and fuzzing.no_traceback(scanned.stderr), scanned.stderr
    volumes = studio.cli("volume", "list")
    assert ".archivekeeper/volume.json is not valid JSON" in volumes.stdout, volumes.stdout


# --- 2. hostile names under a watched volume ---------------------------------------------------


def make_file(path: bytes, data: bytes = b"x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def specials(root: bytes) -> None:
    """The odd things that hostile_name does not make: deep nesting, a folder gone as soon as
    made, symlink loops and a way out, a FIFO, a file no one may read, a socket-like name."""
    deep = root + b"/2024-05-12 Syva Asiakas/" + b"/".join([b"kansio"] * 300) + b"/IMG.jpg"
    make_file(deep)
    gone = root + b"/2024-05-13 Hetki Asiakas"
    make_file(gone + b"/IMG.jpg")
    shutil.rmtree(gone)
    moved = root + b"/2024-05-14 Siirto Asiakas"
    make_file(moved + b"/IMG.jpg")
    os.rename(moved, moved + b" 2")
    loops = root + b"/2024-05-15 Silmukka Asiakas"
    make_file(loops + b"/IMG.jpg")
    os.symlink(b".", loops + b"/loop")
    os.symlink(b"b", loops + b"/a")
    os.symlink(b"a", loops + b"/b")
    os.symlink(b"/etc", loops + b"/ulos")
    os.symlink(b"..", root + b"/2024-05-16 Linkki Asiakas")
    os.mkfifo(root + b"/2024-05-17 Putki Asiakas")
    pipe = root + b"/2024-05-18 Putki Kansiossa"
    make_file(pipe + b"/IMG_1.jpg")
    os.mkfifo(pipe + b"/IMG_2.jpg")
    secret = root + b"/2024-05-19 Salainen Asiakas"
    make_file(secret + b"/IMG.jpg")
    os.chmod(secret + b"/IMG.jpg", 0)
    closed = root + b"/2024-05-20 Suljettu Asiakas"
    make_file(closed + b"/IMG.jpg")
    os.chmod(closed, 0)
    for name in (b"2024-05-21 Rivi\nvaihto", b"2024-05-22 \xe2\x80\xaeannA", b"2024-02-30 X",
                 b"20240512", b"12.05.2024", (b"2024-05-23  " + "ä".encode() * 200)[:255],
                 b"Arkisto/\xff\xfe", b"Korhonen\nLiisa/12.05.2024 passikuva"):
        make_file(root + b"/" + name + b"/IMG.jpg")


def index_of(studio: Studio) -> dict:
    return {key: (s["files"], s["bytes"], s["state"]) for key, s in cli_shoots(studio).items()}


def run_names_fuzz(tmp_path: Path, run_daemon, rounds: int, per_round: int,  # noqa: F811
                   seed: int) -> None:
    studio = make_studio(tmp_path, volumes=("studio",))
    watch = Watch(run_daemon(studio), studio)
    daemon = watch.daemon
    daemon.notes.wait_idle()
    root = os.fsencode(studio.volumes["studio"])
    rng = random.Random(seed)
    made = 0
    started = time.monotonic()
    for round_ in range(rounds):
        if round_ == 0:
            specials(root)
        for _ in range(per_round):
            name = fuzzing.hostile_name(rng, date.today())
            parent = root if rng.random() < 0.7 else root + b"/Virtanen Matti"
            try:
                make_file(parent + b"/" + name + b"/IMG_1.jpg", b"j" * rng.randrange(100))
                made += 1
            except OSError:  # a name that is a prefix of a path already made as a file
                pass
        last = f"2024-06-{round_ + 1:02d} Viimeinen Asiakas"  # after every other event
        studio.shoot("studio", last)
        try:
            poll_until(lambda: ("studio", last) in cli_shoots(studio), 60,  # noqa: B023
                       f"round {round_}: the last folder indexed by the debounced rescans")
        except AssertionError as exc:  # what the daemon was doing, for the one who reads it
            raise AssertionError(f"{exc}; last events {daemon.events[-20:]}, last "
                                 f"notifications {daemon.notes.messages[-3:]}") from None
        watch.alive()
    daemon.notes.wait_idle(60)
    elapsed = time.monotonic() - started
    watched = index_of(studio)
    scans = daemon.found("job_finished", why="file_events")
    assert not [e for e in scans if e["errors"] and not e["files"]], scans
    watch.finish()
    full = studio.cli("scan", "--full")
    assert full.returncode == 0 and fuzzing.no_traceback(full.stderr), full.stderr
    rescanned = index_of(studio)  # what the debounced rescans made is what a full scan finds
    assert watched == rescanned, (set(watched.items()) ^ set(rescanned.items()))
    fuzzing.note(f"daemon names fuzz (seed {seed}): {made} hostile folders and the specials in "
                 f"{rounds} rounds, {elapsed:.1f} s, {len(scans)} debounced rescans, "
                 f"{len(watched)} shoots indexed")


@pytest.mark.timeout(300)
def test_hostile_names_under_a_watched_volume_are_rescanned_as_a_full_scan_sees_them(
        tmp_path, run_daemon):  # noqa: F811
    run_names_fuzz(tmp_path, run_daemon, fuzzing.count(3), 40, fuzzing.seed())


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_hostile_names_under_a_watched_volume_slow(tmp_path, run_daemon):  # noqa: F811
    run_names_fuzz(tmp_path, run_daemon, fuzzing.count(3, slow=True), 40,
                   fuzzing.seed(slow=True))


# --- 4. a burst of file events -----------------------------------------------------------------


def run_burst(tmp_path: Path, run_daemon, folders: int, per_folder: int) -> None:  # noqa: F811
    studio = make_studio(tmp_path, volumes=("studio",))
    watch = Watch(run_daemon(studio), studio)
    daemon = watch.daemon
    daemon.notes.wait_idle()
    root = studio.volumes["studio"]
    names = [f"2024-04-{i % 28 + 1:02d} Ryntays {i:04d}" for i in range(folders)]
    started = time.monotonic()
    for name in names:
        (root / name).mkdir()
        for j in range(per_folder):
            os.close(os.open(root / name / f"IMG_{j:04d}.jpg", os.O_WRONLY | os.O_CREAT, 0o644))
    made = time.monotonic() - started
    daemon.wait("job_started", why="file_events", timeout=30)
    for i in range(3):  # SIGHUPs during the rescan: an invalid config, then a good one
        put(studio.config, (watch.good + f"bogus: {i}\n").encode())
        daemon.proc.send_signal(signal.SIGHUP)
    watch.sync("burst")

    def indexed() -> bool:
        shoots = index_of(studio)
        return all(shoots.get(("studio", n), (0,))[0] == per_folder for n in names)

    poll_until(indexed, 120, f"{folders * per_folder} files indexed")
    for name in names[: folders // 2]:  # and half of the folders removed as fast
        shutil.rmtree(root / name)
    poll_until(lambda: all(index_of(studio)[("studio", n)][2] == "missing"
                           for n in names[: folders // 2]), 120, "the removed shoots missing")
    elapsed = time.monotonic() - started
    degraded = daemon.found("watch_degraded")
    fuzzing.note(f"daemon event burst: {folders * per_folder} files in {folders} folders made "
                 f"in {made:.1f} s, indexed and half removed in {elapsed:.1f} s; "
                 f"watch_degraded: {[e['reason'][:60] for e in degraded] or 'no'}")
    watch.finish()


@pytest.mark.timeout(300)
def test_a_burst_of_5000_new_files_ends_in_the_index(tmp_path, run_daemon):  # noqa: F811
    run_burst(tmp_path, run_daemon, 50, 100 * fuzzing.SCALE)


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_a_burst_of_50000_new_files_in_5000_folders_slow(tmp_path, run_daemon):  # noqa: F811
    run_burst(tmp_path, run_daemon, 5000, 10 * fuzzing.SCALE)
