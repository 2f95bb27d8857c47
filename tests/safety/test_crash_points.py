"""Promise 8 at every point (issue 13, part 2): kill -9 at each file operation of apply, trash
purge and trash restore, both right before it (ARCHIVEKEEPER_CRASH_AT=N) and right after it
(ARCHIVEKEEPER_CRASH_AFTER=N), and at random moments into an apply of a few hundred files; then
run again. Nothing that was not due is lost, every file is in exactly one place, the half-done
step is finished, and `audit verify` passes.

tests/integration/test_crash.py kills each command at every point *before* an operation and at
one point in four to six *after* one, on a smaller tree; this file covers every point on both
sides of a larger tree (three due shoots with files in nested folders, one kept). The whole
enumeration is `slow`; the default suite runs one point in 25 of it, and one random kill.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from datetime import date, timedelta

import pytest
from conftest import BIN, DUE_RULES, OLD, Studio, age_folders, at, trash_states

from archivekeeper.act import fsops

DUE = ["2015-03-01 Mäkinen Anna", "Korhonen Päivi/01.04.2015 wedding", "20150501_Lahti_Ville_school"]
KEPT = "2025-06-01 Virtanen Matti"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "JPEG/IMG_2.jpg": b"k" * 10, "RAW/IMG_1.CR2": b"r" * 300,
         "RAW/sub/IMG_2.CR2": b"s" * 50, "RAW/sub/deeper/IMG_3.CR2": b"t" * 70,
         "notes.txt": b"n" * 5}
DAY = date.today()
LATER = DAY + timedelta(days=31)  # the trash retention (30 days) has passed

# A clean run of each command on the template makes this many file operations; every one of them
# is a kill point on both sides (test_the_enumeration_covers_every_operation checks the counts).
OPS = {"apply": 57, "purge": 47, "restore": 21}
ARGS = {"apply": ["apply"], "purge": ["trash", "purge"], "restore": ["trash", "restore", "1"]}
HOOKS = ("ARCHIVEKEEPER_CRASH_AT", "ARCHIVEKEEPER_CRASH_AFTER")
ALL_POINTS = [(command, hook, n) for command, total in OPS.items() for hook in HOOKS
              for n in range(1, total + 1)]
CI_POINTS = ALL_POINTS[::25]


def point_id(point) -> str:
    command, hook, n = point
    return f"{command}-{hook.rsplit('_', 1)[1].lower()}-{n}"


def build(root, files: dict[str, bytes], due: list[str], kept: str) -> Studio:
    root.mkdir()
    studio = Studio(root, volumes=("studio",), extra=DUE_RULES)
    studio.init_volumes()
    for rel in due:
        studio.shoot("studio", rel, files, mtime=OLD)
    studio.shoot("studio", kept, files, mtime=time.time())
    studio.ok("scan")
    return studio


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build(tmp_path_factory.mktemp("crash-points") / "t", FILES, DUE, KEPT).root


def fresh(template, tmp_path, after_apply: bool = False) -> Studio:
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio",), extra=DUE_RULES)
    assert studio.cli("scan", "--full").returncode == 0  # a copy has new inode numbers
    if after_apply:
        assert studio.cli("apply", env=at(DAY)).returncode == 0
    return studio


def locate(studio: Studio, rel: str, data: bytes) -> list[str]:
    """Where a file of the template is now (its place and/or trash batches), content checked."""
    vol = studio.volumes["studio"]
    found = []
    if (vol / rel).is_file():
        assert (vol / rel).read_bytes() == data, rel
        found.append("place")
    trash = vol / ".archivekeeper" / "trash"
    for batch in trash.iterdir() if trash.is_dir() else ():
        if (batch / rel).is_file():
            assert (batch / rel).read_bytes() == data, rel
            found.append(batch.name)
    return found


def originals(files=FILES, due=DUE, kept=KEPT) -> dict[str, bytes]:
    return {f"{rel}/{name}": data for rel in [*due, kept] for name, data in files.items()}



def first_group_shoot(studio: Studio) -> str:
    """The shoot `trash restore 1` brings back."""
    db = sqlite3.connect(studio.state / "index.sqlite")
    try:
        path = db.execute("SELECT shoot_path FROM trash_groups WHERE id = 1").fetchone()[0]
    finally:
        db.close()
    return path.decode() if isinstance(path, bytes) else path



def batches_holding_files(studio: Studio) -> set[str]:
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    return {b.name for b in trash.iterdir() if any(p.is_file() for p in b.rglob("*"))} \
        if trash.is_dir() else set()


def audited_batches(studio: Studio, event: str) -> set[str]:
    """The trash batches the audit log has an `event` record of (written before the action)."""
    lines = (studio.state / "audit.jsonl").read_text().splitlines()
    return {r["batch"] for r in map(json.loads, lines) if r.get("event") == event}


def verified(studio: Studio) -> None:
    result = studio.cli("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def finish_apply(studio: Studio, files: dict[str, bytes], kept: str) -> None:
    """Run apply again, scan (as the daemon does) and apply once more: then every due file is in
    trash exactly once, the kept shoot is in place, nothing is half moved."""
    rerun = studio.cli("apply", env=at(DAY))
    assert rerun.returncode == 0, rerun.stderr
    for rel, data in files.items():
        assert len(locate(studio, rel, data)) == 1, rel
    age_folders(studio)
    assert studio.cli("scan", env=at(DAY)).returncode == 0
    rerun = studio.cli("apply", env=at(DAY))
    assert rerun.returncode == 0, rerun.stderr
    for rel, data in files.items():
        where = locate(studio, rel, data)
        if rel.startswith(kept):
            assert where == ["place"], rel
        else:
            assert len(where) == 1 and where != ["place"], (rel, where)
    assert set(trash_states(studio)) == {"trashed"}
    verified(studio)


def crash_and_recover(template, tmp_path, point) -> None:
    command, hook, n = point
    studio = fresh(template, tmp_path, after_apply=command != "apply")
    day = LATER if command == "purge" else DAY
    killed = studio.cli(*ARGS[command], env=at(day, **{hook: n}))
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
    assert batches_holding_files(studio) <= audited_batches(studio, "trash"), point  # promise 6
    files = originals()
    for rel, data in files.items():  # never both in place and in trash, nor neither
        where = locate(studio, rel, data)
        if command == "purge" and not rel.startswith(KEPT):
            assert "place" not in where, rel  # a purge never puts anything back
            assert len(where) <= 1, (rel, where)
        else:
            assert len(where) == 1, (rel, where)
    if command == "apply":
        finish_apply(studio, files, KEPT)
        return
    rerun = studio.cli(*ARGS[command], env=at(day))
    if command == "purge":
        assert rerun.returncode == 0, rerun.stderr
        for rel, data in files.items():
            assert locate(studio, rel, data) == (["place"] if rel.startswith(KEPT) else []), rel
        assert set(trash_states(studio)) == {"purged"}
    else:
        assert rerun.returncode == 0 or "no restorable trash item" in rerun.stderr, rerun.stderr
        first = first_group_shoot(studio)
        for rel, data in files.items():
            where = locate(studio, rel, data)
            back = rel.startswith((first + "/", KEPT))
            assert where == ["place"] if back else where not in ([], ["place"]), (rel, where)
        assert not {"restoring", "moving"} & set(trash_states(studio))
    verified(studio)


def test_the_enumeration_covers_every_operation(template, tmp_path):
    """The counts in OPS are those of a clean run: if a command makes more file operations, the
    points after them would go untested; if fewer, a point would never be reached."""
    counts = {}
    for name, steps in (("a", (("apply", DAY), ("restore", DAY))),
                        ("b", (("apply", DAY), ("purge", LATER)))):
        shutil.copytree(template, tmp_path / name, symlinks=True)
        studio = Studio(tmp_path / name, volumes=("studio",), extra=DUE_RULES)
        studio.ok("scan", "--full")
        for command, day in steps:
            before = fsops.mutation_count()
            studio.ok(*ARGS[command], env=at(day))
            counts[command] = fsops.mutation_count() - before
    assert counts == OPS
    assert len(set(ALL_POINTS)) >= 200


@pytest.mark.parametrize("point", CI_POINTS, ids=point_id)
def test_killed_at_a_point_then_rerun_loses_nothing(template, tmp_path, point):
    crash_and_recover(template, tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("point", [p for p in ALL_POINTS if p not in CI_POINTS], ids=point_id)
def test_killed_at_every_point_then_rerun_loses_nothing(template, tmp_path, point):
    crash_and_recover(template, tmp_path, point)


# -- kills at random moments ----------------------------------------------------------------------

BIG_FILES = {f"{folder}/IMG_{i:03d}.{ext}": bytes([i % 251]) * (i + 1)
             for folder, ext in (("JPEG", "jpg"), ("RAW", "CR2")) for i in range(30)}
BIG_DUE = [f"2015-0{m}-01 Asiakas {m}" for m in range(1, 7)]  # 6 x 60 = 360 due files
BIG_KEPT = "2025-06-01 Virtanen Matti"


@pytest.fixture(scope="module")
def big_template(tmp_path_factory):
    """The tree, and how long a clean subprocess apply of it takes here."""
    root = build(tmp_path_factory.mktemp("crash-random") / "t", BIG_FILES, BIG_DUE, BIG_KEPT).root
    probe = tmp_path_factory.mktemp("crash-random-probe") / "s"
    shutil.copytree(root, probe, symlinks=True)
    studio = Studio(probe, volumes=("studio",), extra=DUE_RULES)
    assert studio.cli("scan", "--full").returncode == 0
    started = time.monotonic()
    assert studio.cli("apply", env=at(DAY)).returncode == 0
    return root, time.monotonic() - started


def random_kill(big_template, tmp_path, seed: int) -> bool:
    """SIGKILL a subprocess apply at a random moment of its run; then recover. Return whether
    the kill landed before the run ended."""
    template, duration = big_template
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio",), extra=DUE_RULES)
    assert studio.cli("scan", "--full").returncode == 0
    delay = random.Random(seed).uniform(0, duration)
    run = subprocess.Popen([str(BIN), "--config", str(studio.config), "apply"],
                           env={**os.environ, **at(DAY)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        run.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGKILL)
    run.communicate(timeout=120)
    files = originals(BIG_FILES, BIG_DUE, BIG_KEPT)
    for rel, data in files.items():
        assert len(locate(studio, rel, data)) == 1, (seed, rel)
    finish_apply(studio, files, BIG_KEPT)
    return run.returncode == -signal.SIGKILL


@pytest.mark.parametrize("seed", range(1))
def test_apply_killed_at_a_random_moment_then_rerun_loses_nothing(big_template, tmp_path, seed,
                                                                  record_property):
    record_property("killed_mid_run", random_kill(big_template, tmp_path, seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 40))
def test_apply_killed_at_many_random_moments_then_rerun_loses_nothing(big_template, tmp_path,
                                                                      seed, record_property):
    record_property("killed_mid_run", random_kill(big_template, tmp_path, seed))
