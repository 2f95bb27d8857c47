"""Shared fixtures: a studio archive on real temp directories, the CLI in-process and as the
installed entry point."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archivekeeper.cli import cli

BIN = Path(sys.executable).parent / "archivekeeper"
OLD = time.time() - 10 * 365 * 86400  # an mtime ten years back
# Everything older than five years is due at once: no notice, no fraction limit.
DUE_RULES = """\
rules:
  - {name: old-shoots, delete_after: 5 years}
safety:
  notice_period: 0 days
  trash_retention: 30 days
  max_fraction_per_volume: 1.0
"""


# The day the run was collected: test modules take their dates from date.today() at import, so
# a studio's clock must not move to the next day when a run crosses midnight.
TODAY = date.today()


def at(day: date, hour: int = 12, **extra) -> dict:
    """Env pinning the CLI's clock to `day` at `hour` local time (plus any extra variables)."""
    now = datetime(day.year, day.month, day.day, hour).astimezone().isoformat()
    return {"ARCHIVEKEEPER_FAKE_NOW": now, **{k: str(v) for k, v in extra.items()}}

BASE_CONFIG = """\
state_dir: {state}
volumes:
{volumes}
shoots:
  patterns:
    - "{{date}} {{customer}}"
    - "{{date}}_{{customer}}_{{type}}"
    - "{{customer}}/{{date}} {{type}}"
    - "Arkisto/{{customer}}"
{extra}
"""


class Studio:
    """A temp studio: volumes under root/vols, state under root/state, config at root/ak.yaml."""

    def __init__(self, root: Path, volumes=("studio",), removable=(), extra: str = ""):
        self.root = root
        self.state = root / "state"
        self.volumes = {name: root / "vols" / name for name in volumes}
        self.removable = set(removable)
        self.extra = extra
        self.config = root / "ak.yaml"
        # One clock for every command, noon today, unless a test pins another: the clock guard
        # (rightly) distrusts a clock that goes back, as mixing the real time with a pinned
        # noon would.
        self.clock_env = at(TODAY)
        self.write_config()

    def write_config(self, extra: str | None = None) -> None:
        if extra is not None:
            self.extra = extra
        vols = "\n".join(
            f"  - {{name: {n}, path: {p}{', removable: true' if n in self.removable else ''}}}"
            for n, p in self.volumes.items())
        self.config.write_text(BASE_CONFIG.format(state=self.state, volumes=vols,
                                                  extra=self.extra), encoding="utf-8")

    def init_volumes(self, accept_clock: bool = True) -> None:
        """Make the volumes; then, as an owner whose archive holds only old files does once,
        accept the clock (otherwise the clock guard reads today as a jump from the newest
        mtime, ten years back, and refuses; tests of that pass accept_clock=False)."""
        for name, path in self.volumes.items():
            path.mkdir(parents=True, exist_ok=True)
            self.ok("volume", "init", str(path), "--name", name)
        if accept_clock:
            self.ok("clock", "accept")

    def shoot(self, volume: str, rel: str | bytes, files: dict | None = None,
              mtime: float | None = None) -> Path:
        """Create a shoot folder with files {relative name: bytes}."""
        base = os.fsencode(self.volumes[volume]) + b"/" + (
            rel if isinstance(rel, bytes) else rel.encode())
        files = files if files is not None else {"JPEG/IMG_1.jpg": b"x" * 100,
                                                 "RAW/IMG_1.CR2": b"r" * 300}
        os.makedirs(base, exist_ok=True)
        for name, data in files.items():
            path = base + b"/" + (name if isinstance(name, bytes) else name.encode())
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            if mtime is not None:
                os.utime(path, (mtime, mtime))
        if mtime is not None:  # folders too: a folder changed just before a scan is never trusted
            for dirpath, _, _ in os.walk(base):
                os.utime(dirpath, (mtime, mtime))
        return Path(os.fsdecode(base))

    def run(self, *args: str, env: dict | None = None):
        runner = CliRunner()
        return runner.invoke(cli, ["--config", str(self.config), *args],
                             env={**self.clock_env, **(env or {})}, catch_exceptions=False)

    def ok(self, *args: str, env: dict | None = None):
        result = self.run(*args, env=env)
        assert result.exit_code == 0, (result.exit_code, result.output, result.stderr)
        return result

    def json(self, *args: str, env: dict | None = None) -> dict:
        return json.loads(self.ok(*args, "--json", env=env).stdout)

    def shoots(self) -> dict[tuple[str, str], dict]:
        return {(s["volume"], s["path"]): s for s in self.json("shoots")["shoots"]}

    def cli(self, *args: str, env: dict | None = None, timeout: float = 120):
        """The installed entry point as a subprocess."""
        full_env = {**os.environ, **self.clock_env, **(env or {})}
        return subprocess.run([str(BIN), "--config", str(self.config), *args],
                              capture_output=True, text=True, env=full_env, timeout=timeout)


def trash_states(studio: Studio) -> dict[str, int]:
    """How many files of the trash are in each state (moving, trashed, purging, ...)."""
    db = sqlite3.connect(studio.state / "index.sqlite")
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM trash_files GROUP BY state"))
    finally:
        db.close()


def age_folders(studio: Studio, volume: str = "studio") -> None:
    """Time passes: folders a run touched are no longer too fresh for a scan to trust."""
    for dirpath, dirnames, _ in os.walk(studio.volumes[volume]):
        dirnames[:] = [d for d in dirnames if d != ".archivekeeper"]
        os.utime(dirpath, (OLD, OLD))


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    s = Studio(tmp_path, volumes=("studio", "backup-1"), removable=("backup-1",))
    s.init_volumes()
    return s


@pytest.fixture
def bind_mount():
    """bind_mount(source, target) for one test; every mount is undone at teardown."""
    mounted: list[Path] = []

    def mount(source: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "--bind", str(source), str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs root and mount rights): {done.stderr}")
        mounted.append(target)

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(target)], check=True)
