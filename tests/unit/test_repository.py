"""The repository explains itself and runs anywhere it is cloned: no absolute path of the
machine it was written on (its own location, its parent, the home folder) in any tracked file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / os.fsdecode(name) for name in out.split(b"\0") if name]


def machine_paths() -> list[str]:
    found = {str(ROOT) + "/", str(ROOT.parent) + "/"}
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        found.add(home.rstrip("/") + "/")
    return sorted(p for p in found if p != "/")


def test_no_tracked_file_names_an_absolute_path_of_this_machine():
    needles = [p.encode() for p in machine_paths()]
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        offenders += [f"{path.relative_to(ROOT)}: {n.decode()}" for n in needles if n in data]
    assert offenders == []


def test_the_check_would_see_such_a_path(tmp_path):
    # the needles are real absolute paths, not empty or "/": a leak of them would be caught
    assert all(p.startswith("/") and len(p) > 1 for p in machine_paths())
    assert str(ROOT.parent) + "/" in machine_paths()
