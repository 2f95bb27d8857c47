"""Promise 8 for the daemon's jobs (issue 13, part 2): `archivekeeper daemon` killed with SIGKILL
before (ARCHIVEKEEPER_CRASH_AT=N) and after (ARCHIVEKEEPER_CRASH_AFTER=N) each file operation of
its apply job, which moves what is due and then purges what expired, on the tree of
test_crash_points.py; then started again. The second daemon's start finishes the half-done
step and its catch-up apply does the rest: every file is in exactly one place, no step is left
half done, what expired is purged, `audit verify` passes, and a scan and apply after it leave
every due file in trash exactly once and the kept shoot in place. The same after SIGKILLs at
random moments of its apply of 360 files (the delay drawn over the length of a clean one). The whole enumeration is `slow`; the default suite runs one point in 104."""

from __future__ import annotations

import random
import shutil
import signal
import time

import pytest
from conftest import DUE_RULES, Studio, at, trash_states
from e2e.test_daemon import TEST_CONFIG, Daemon, Notifications

from safety.test_crash_points import (
    DAY,
    HOOKS,
    KEPT,
    LATER,
    OPS,
    finish_apply,
    locate,
    originals,
    verified,
)

CONFIG = TEST_CONFIG + DUE_RULES
# The daemon's catch-up apply on DAY moves what apply moves; on LATER, after an apply on DAY,
# it purges what purge purges: the same file operations as the commands.
JOBS = {"apply": (DAY, OPS["apply"]), "purge": (LATER, OPS["purge"])}
ALL_POINTS = [(job, hook, n) for job, (_, total) in JOBS.items() for hook in HOOKS
              for n in range(1, total + 1)]
CI_POINTS = ALL_POINTS[::104]


def point_id(point) -> str:
    job, hook, n = point
    return f"daemon-{job}-{hook.rsplit('_', 1)[1].lower()}-{n}"


def daemon(studio: Studio, day, **env) -> Daemon:
    studio.clock_env = at(day)
    return Daemon(studio, Notifications(), {k: str(v) for k, v in env.items()})


def restart(studio: Studio, day) -> list[dict]:
    """Start the daemon again, let its start and catch-up jobs run, stop it; its events."""
    again = daemon(studio, day)
    try:
        again.notes.wait("READY=1", timeout=60)
        again.notes.wait_idle(120)
        assert again.stop(30) == 0
        assert again.proc.stderr.read() == ""
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
        again.notes.sock.close()
    return again.events


def crash_and_restart(template, tmp_path, point) -> None:
    job, hook, n = point
    day, _ = JOBS[job]
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio",), extra=CONFIG)
    assert studio.cli("scan", "--full", env=at(DAY)).returncode == 0
    if job == "purge":
        assert studio.cli("apply", env=at(DAY)).returncode == 0

    killed = daemon(studio, day, **{hook: n})
    try:
        assert killed.proc.wait(120) == -signal.SIGKILL, (point, killed.events[-5:])
    finally:
        if killed.proc.poll() is None:
            killed.proc.kill()
        killed.notes.sock.close()
    files = originals()
    for rel, data in files.items():  # never both in place and in trash, nor neither
        where = locate(studio, rel, data)
        if job == "purge" and not rel.startswith(KEPT):
            assert "place" not in where and len(where) <= 1, (rel, where)
        else:
            assert len(where) == 1, (rel, where)

    events = restart(studio, day)
    assert [e for e in events if e["event"] == "job_finished" and e["job"] == "apply"], \
        (point, events[-10:])
    if job == "apply":
        # a shoot the killed run had half moved changed: the second daemon's apply may leave
        # its rest for the next apply after a scan (nothing lost, nothing half done)
        for rel, data in files.items():
            assert len(locate(studio, rel, data)) == 1, rel
        assert set(trash_states(studio)) == {"trashed"}
        verified(studio)
        finish_apply(studio, files, KEPT)
        return
    for rel, data in files.items():
        assert locate(studio, rel, data) == (["place"] if rel.startswith(KEPT) else []), rel
    assert set(trash_states(studio)) == {"purged"}
    verified(studio)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from safety.test_crash_points import DUE, FILES, build

    return build(tmp_path_factory.mktemp("daemon-crash") / "t", FILES, DUE, KEPT).root


@pytest.mark.parametrize("point", CI_POINTS, ids=point_id)
@pytest.mark.timeout(300)
def test_the_daemon_killed_at_a_point_of_its_apply_then_restarted_loses_nothing(
        template, tmp_path, point):
    crash_and_restart(template, tmp_path, point)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("point", [p for p in ALL_POINTS if p not in CI_POINTS], ids=point_id)
def test_the_daemon_killed_at_every_point_of_its_apply_then_restarted_loses_nothing(
        template, tmp_path, point):
    crash_and_restart(template, tmp_path, point)


# -- kills at random moments ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_template(tmp_path_factory):
    from safety.test_crash_points import BIG_DUE, BIG_FILES, BIG_KEPT, build

    root = build(tmp_path_factory.mktemp("daemon-random") / "t", BIG_FILES, BIG_DUE,
                 BIG_KEPT).root
    probe = tmp_path_factory.mktemp("daemon-random-probe") / "s"
    shutil.copytree(root, probe, symlinks=True)
    studio = Studio(probe, volumes=("studio",), extra=CONFIG)
    assert studio.cli("scan", "--full", env=at(DAY)).returncode == 0
    clean = daemon(studio, DAY)
    try:  # how long the daemon's apply of it takes here, from its job_started to its end
        clean.wait("job_started", job="apply", timeout=120)
        started = time.monotonic()
        clean.wait("job_finished", job="apply", timeout=120)
        duration = time.monotonic() - started
        assert clean.stop(30) == 0
    finally:
        if clean.proc.poll() is None:
            clean.proc.kill()
        clean.notes.sock.close()
    return root, duration


def random_kill(big_template, tmp_path, seed: int) -> bool:
    """SIGKILL the daemon at a random moment of its catch-up apply of 360 due files, start it
    again; return whether the kill landed before the apply ended."""
    from safety.test_crash_points import BIG_DUE, BIG_FILES, BIG_KEPT

    template, duration = big_template
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio",), extra=CONFIG)
    assert studio.cli("scan", "--full", env=at(DAY)).returncode == 0
    first = daemon(studio, DAY)
    try:
        first.wait("job_started", job="apply", timeout=120)
        time.sleep(random.Random(seed).uniform(0, duration))
        landed = not first.found("job_finished", job="apply")
        first.proc.kill()
        first.proc.wait(30)
    finally:
        first.notes.sock.close()
    files = originals(BIG_FILES, BIG_DUE, BIG_KEPT)
    for rel, data in files.items():
        assert len(locate(studio, rel, data)) == 1, (seed, rel)
    restart(studio, DAY)
    for rel, data in files.items():
        assert len(locate(studio, rel, data)) == 1, (seed, rel)
    verified(studio)
    finish_apply(studio, files, BIG_KEPT)
    return landed


@pytest.mark.timeout(300)
def test_the_daemon_killed_at_a_random_moment_of_its_apply_then_restarted_loses_nothing(
        big_template, tmp_path, record_property):
    record_property("killed_mid_run", random_kill(big_template, tmp_path, 0))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", range(1, 30))
def test_the_daemon_killed_at_many_random_moments_then_restarted_loses_nothing(
        big_template, tmp_path, seed, record_property):
    record_property("killed_mid_run", random_kill(big_template, tmp_path, seed))
