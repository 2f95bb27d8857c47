"""kill -9 at many points of apply, purge and restore, then run again: nothing that was not due
is lost, every half-done step is finished or rolled back, and the audit chain verifies.

fsops kills its own process right before (ARCHIVEKEEPER_CRASH_AT=N) or right after
(ARCHIVEKEEPER_CRASH_AFTER=N) its Nth mutating system call.
"""

from __future__ import annotations

import shutil
import signal
import time
from datetime import date, timedelta

import pytest
from conftest import DUE_RULES, OLD, Studio, age_folders, at, trash_states

RULES = DUE_RULES
DUE = ["2015-03-01 Mäkinen Anna", "Korhonen Päivi/01.04.2015 wedding"]
KEPT = "2025-06-01 Virtanen Matti"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "JPEG/IMG_2.jpg": b"k" * 10, "RAW/IMG_1.CR2": b"r" * 300,
         "RAW/sub/IMG_2.CR2": b"s" * 50}
DAY = date.today()


def env_at(day: date, **extra) -> dict:
    return at(day, **extra)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-template")
    studio = Studio(root, volumes=("studio",), extra=RULES)
    studio.init_volumes()
    for rel in DUE:
        studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.shoot("studio", KEPT, FILES, mtime=time.time())
    studio.ok("scan")
    return root


def fresh(template, tmp_path) -> Studio:
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio",), extra=RULES)
    studio.ok("scan", "--full")  # a copy has new inode numbers: index them
    return studio


def originals(studio: Studio) -> dict[str, bytes]:
    out = {}
    for rel in DUE + [KEPT]:
        for name, data in FILES.items():
            out[f"{rel}/{name}"] = data
    return out


def locate(studio: Studio, rel: str) -> list[str]:
    """Where a file of the template is now: its place and/or trash batches."""
    vol = studio.volumes["studio"]
    found = ["place"] if (vol / rel).is_file() else []
    trash = vol / ".archivekeeper" / "trash"
    if trash.is_dir():
        found += [b.name for b in trash.iterdir() if (b / rel).is_file()]
    return found




def check_audit(studio: Studio) -> None:
    result = studio.cli("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def crash(studio: Studio, args: list[str], day: date, point: tuple[str, int]) -> None:
    """Run a command that fsops kills at `point`; fail if the point was never reached."""
    result = studio.cli(*args, env=env_at(day, **{point[0]: point[1]}))
    assert result.returncode == -signal.SIGKILL, (point, result.returncode, result.stderr)


# A clean run of each command on the template makes this many file operations (mkdir, rename,
# unlink, rmdir): every one of them is a kill point below.
APPLY_OPS, PURGE_OPS, RESTORE_OPS = 29, 22, 15


def points(total: int, after_step: int) -> list[tuple[str, int]]:
    return ([("ARCHIVEKEEPER_CRASH_AT", n) for n in range(1, total + 1)]
            + [("ARCHIVEKEEPER_CRASH_AFTER", n) for n in range(1, total + 1, after_step)])


@pytest.mark.parametrize("point", points(APPLY_OPS, 4), ids=lambda p: f"{p[0][-5:]}-{p[1]}")
def test_apply_killed_then_rerun_loses_nothing(template, tmp_path, point):
    studio = fresh(template, tmp_path)
    crash(studio, ["apply"], DAY, point)
    for rel in originals(studio):
        where = locate(studio, rel)
        assert len(where) == 1, (rel, where)  # never both in place and in trash, nor neither
    rerun = studio.cli("apply", env=env_at(DAY))
    assert rerun.returncode == 0, rerun.stderr
    for rel in originals(studio):
        assert len(locate(studio, rel)) == 1, rel
    # A shoot half moved by the killed run changed since its scan: the next scan (the daemon
    # scans before it applies) lets the next apply finish it.
    age_folders(studio)  # time passes: folders the killed run touched are no longer "racy"
    assert studio.cli("scan", env=env_at(DAY)).returncode == 0
    rerun = studio.cli("apply", env=env_at(DAY))
    assert rerun.returncode == 0, rerun.stderr
    for rel, data in originals(studio).items():
        where = locate(studio, rel)
        if rel.startswith(KEPT):
            assert where == ["place"]
            assert (studio.volumes["studio"] / rel).read_bytes() == data
        else:
            assert len(where) == 1 and where != ["place"], (rel, where)
    assert set(trash_states(studio)) <= {"trashed"}
    assert sum(trash_states(studio).values()) == len(DUE) * len(FILES)
    check_audit(studio)


@pytest.mark.parametrize("point", points(PURGE_OPS, 6),
                         ids=lambda p: f"{p[0][-5:]}-{p[1]}")
def test_purge_killed_then_rerun_finishes(template, tmp_path, point):
    studio = fresh(template, tmp_path)
    assert studio.cli("apply", env=env_at(DAY)).returncode == 0
    later = DAY + timedelta(days=31)
    crash(studio, ["trash", "purge"], later, point)
    for rel in originals(studio):
        if not rel.startswith(KEPT):
            assert "place" not in locate(studio, rel)  # a purge never puts anything back
    rerun = studio.cli("trash", "purge", env=env_at(later))
    assert rerun.returncode == 0, rerun.stderr
    for rel in originals(studio):
        expected = ["place"] if rel.startswith(KEPT) else []
        assert locate(studio, rel) == expected
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    assert list(trash.iterdir()) == []  # the emptied folders went too, half-done or not
    assert set(trash_states(studio)) == {"purged"}
    check_audit(studio)


@pytest.mark.parametrize("point", points(RESTORE_OPS, 5),
                         ids=lambda p: f"{p[0][-5:]}-{p[1]}")
def test_restore_killed_then_rerun_finishes(template, tmp_path, point):
    studio = fresh(template, tmp_path)
    assert studio.cli("apply", env=env_at(DAY)).returncode == 0
    crash(studio, ["trash", "restore", "1"], DAY, point)
    for rel in originals(studio):
        assert len(locate(studio, rel)) == 1, rel
    rerun = studio.cli("trash", "restore", "1", env=env_at(DAY))
    restored_already = "no restorable trash item" in rerun.stderr
    assert rerun.returncode == 0 or restored_already, rerun.stderr
    first = DUE[0]
    for rel, data in originals(studio).items():
        if rel.startswith(first) or rel.startswith(KEPT):
            assert locate(studio, rel) == ["place"], rel
            assert (studio.volumes["studio"] / rel).read_bytes() == data
        else:
            assert locate(studio, rel) not in ([], ["place"])
    assert "restoring" not in trash_states(studio) and "moving" not in trash_states(studio)
    check_audit(studio)


def test_a_scan_after_a_crash_finishes_the_half_done_step_first(template, tmp_path):
    studio = fresh(template, tmp_path)
    crash(studio, ["apply"], DAY, ("ARCHIVEKEEPER_CRASH_AFTER", 4))
    assert "moving" in trash_states(studio)
    assert studio.cli("scan", env=env_at(DAY)).returncode == 0
    assert "moving" not in trash_states(studio)
    for rel in originals(studio):
        assert len(locate(studio, rel)) == 1, rel
    check_audit(studio)
