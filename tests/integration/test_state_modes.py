"""state_dir is 0700 and every file in it 0600, whichever command comes first, under a umask
that would leave them readable by others (installed CLI, real state dir)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, Studio

FIRST_COMMANDS = {
    "plan": ["plan"],
    "hold-add": ["hold", "add", "--customer", "Mäkinen Anna", "--kind", "invoice", "--reason",
                 "unpaid", "--force"],
    "scan": ["scan"],
    "audit-verify": ["audit", "verify"],
    "volume-list": ["volume", "list"],
}


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    """A studio whose state_dir no command has created yet (no clock accepted either)."""
    s = Studio(tmp_path, volumes=("studio", "backup-1"), removable=("backup-1",))
    s.init_volumes(accept_clock=False)
    return s


def run(studio: Studio, *args: str) -> subprocess.CompletedProcess:
    """The installed CLI with umask 022, the usual default that makes files world-readable."""
    return subprocess.run([str(BIN), "--config", str(studio.config), *args],
                          capture_output=True, text=True, timeout=120, umask=0o022)


def modes(state: Path) -> dict[str, str]:
    """Name -> octal mode of state_dir ('.') and of everything in it."""
    out = {".": f"{stat.S_IMODE(state.lstat().st_mode):04o}"}
    for path in state.iterdir():
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode), path
        out[path.name] = f"{stat.S_IMODE(st.st_mode):04o}"
    return out


def assert_private(state: Path) -> dict[str, str]:
    found = modes(state)
    assert found == {name: "0700" if name == "." else "0600" for name in found}
    return found


@pytest.mark.parametrize("args", FIRST_COMMANDS.values(), ids=FIRST_COMMANDS.keys())
def test_the_first_command_creates_a_private_state_dir(studio: Studio, args: list[str]) -> None:
    assert not studio.state.exists()
    result = run(studio, *args)
    assert result.returncode == 0, result.stderr
    found = assert_private(studio.state)
    assert "index.sqlite" in found


def test_check_config_creates_no_state(studio: Studio) -> None:
    result = run(studio, "check-config")
    assert result.returncode == 0, result.stderr
    assert not studio.state.exists()


def test_the_index_journal_files_are_private_too(studio: Studio) -> None:
    assert run(studio, "plan").returncode == 0
    reader = sqlite3.connect(studio.state / "index.sqlite")
    try:  # an open reader keeps -wal and -shm after the writer below exits
        reader.execute("SELECT COUNT(*) FROM meta").fetchone()
        assert run(studio, "hold", "add", "--customer", "Virtanen Matti", "--kind", "other",
                   "--reason", "asked", "--force").returncode == 0
        found = assert_private(studio.state)
    finally:
        reader.close()
    assert {"index.sqlite-wal", "index.sqlite-shm", "audit.jsonl", "audit.key", "audit.head",
            "audit.lock"} <= set(found)


def test_a_state_dir_left_readable_by_an_older_version_is_made_private(studio: Studio) -> None:
    studio.state.mkdir(mode=0o755)
    studio.state.chmod(0o755)
    sqlite3.connect(studio.state / "index.sqlite").close()
    (studio.state / "index.sqlite").chmod(0o644)

    result = run(studio, "plan")

    assert result.returncode == 0, result.stderr
    assert_private(studio.state)
    assert "state_dir_made_private" in result.stderr and "0755" in result.stderr
    assert "state_file_made_private" in result.stderr and "0644" in result.stderr


def test_a_shared_sticky_directory_is_refused_as_state_dir(studio: Studio) -> None:
    studio.state.mkdir()
    studio.state.chmod(0o1777)
    result = run(studio, "plan")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"archivekeeper: {studio.state}: state_dir is a shared directory (sticky bit); give "
        "archivekeeper a directory of its own"]
    assert stat.S_IMODE(studio.state.stat().st_mode) == 0o1777
    assert list(studio.state.iterdir()) == []
