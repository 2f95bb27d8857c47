"""A real temp studio for the model test, and what the test can see of it.

Layout under one temp root:
    vols/studio, vols/backup   the configured volume paths (backup is removable)
    park/<drive>               where an unplugged drive waits (outside every volume root)
    outside/                   a sentinel tree beside the volumes: it must never change
    state/                     state_dir; ak.yaml the config

Commands run in-process through click's CliRunner on `archivekeeper.cli:cli` (the same code
path as the installed entry point, ~10-30 ms each instead of ~250 ms), with the clock pinned per
invocation by ARCHIVEKEEPER_FAKE_NOW; runs to be killed at a file operation are real
subprocesses of the installed `archivekeeper`, because fsops reads ARCHIVEKEEPER_CRASH_AT/AFTER
once, at import, and kills its own process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import traceback
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from archivekeeper.act import fsops
from archivekeeper.cli import cli

BIN = Path(sys.executable).parent / "archivekeeper"
META = ".archivekeeper"

# In-process runs must never be killed, and must not inherit a crash point from the outer
# environment: fsops read these at import, in this process.
assert fsops._CRASH_AT is None and fsops._CRASH_AFTER is None, "unset ARCHIVEKEEPER_CRASH_*"

HAS_CLOCK_ACCEPT = CliRunner().invoke(cli, ["clock", "accept", "--help"]).exit_code == 0

CONFIG = """\
state_dir: {root}/state
volumes:
  - {{name: studio, path: {root}/vols/studio}}
  - {{name: backup, path: {root}/vols/backup, removable: true}}
shoots:
  patterns:
    - "{{date}} {{customer}}"
    - "{{date}}_{{customer}}_{{type}}"
    - "{{customer}}/{{date}} {{type}}"
rules:
  - {{name: raw-20-days, match: {{files: "*.cr2"}}, delete_after: 20 days, since: modified}}
  - {{name: passport-10-days, match: {{type: passport}}, delete_after: 10 days}}
  - {{name: keep-weddings, match: {{type: wedding}}, keep_for: 60 days}}
  - {{name: unused-30-days, delete_after: 30 days, since: last_used}}
safety:
  notice_period: {notice}
  trash_retention: {retention}
  max_files_per_run: {max_files}
  max_bytes_per_run: 1 GB
  max_fraction_per_volume: {fraction}
schedule:  # hourly, daily: a daemon session after the clock moved catches up on each
  scan: "15 * * * *"
  full_scan: "0 2 * * *"
  apply: "30 4 * * *"
  report: "0 7 * * *"
daemon:
  debounce: 1 second
"""


def normalize_customer(name: str) -> str:
    """SPEC: NFC, case-folded, `_` and runs of white space as one space (written here, not
    imported, so the oracle does not share the product's code)."""
    folded = unicodedata.normalize("NFC", name).casefold().replace("_", " ")
    return " ".join(folded.split())


def mtime_date(mtime_ns: int) -> date:
    """Local calendar date of an mtime (SPEC: dates are local calendar dates)."""
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC).astimezone().date()


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def noticed(announced: datetime, now: datetime, days: int) -> bool:
    """Has a notice period of `days` passed since `announced`, on the local wall clock?"""
    start = announced.replace(tzinfo=None)
    return now.replace(tzinfo=None) >= datetime.combine(start.date() + timedelta(days=days),
                                                        start.time())


@dataclass
class Ran:
    """One command's result: exit code (-9 when killed) and its output."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"`archivekeeper {' '.join(self.args)}` exit {self.code}\n{self.out}{self.err}"


class Archive:
    """The temp tree and the two ways to run the CLI on it."""

    def __init__(self, root: Path, *, notice: str, retention: str, max_files: int,
                 fraction: float):
        self.root = root
        self.config = root / "ak.yaml"
        self.state = root / "state"
        self.vols = root / "vols"
        self.park = root / "park"
        self.outside = root / "outside"
        for d in (self.vols / "studio", self.vols / "backup", self.park, self.outside):
            d.mkdir(parents=True)
        self.text = CONFIG.format(root=root, notice=notice, retention=retention,
                                  max_files=max_files, fraction=fraction)
        self.config.write_text(self.text, encoding="utf-8")
        self.lock_wait = "0"  # while a daemon runs, more: the CLI waits for its job

    def write_config(self, holds: list[str], broken: bool = False) -> None:
        """The config with these `holds:` entries (YAML flow mappings); `broken` adds an
        unknown key, so the whole file is invalid."""
        text = self.text
        if holds:
            text += "holds:\n" + "".join(f"  - {h}\n" for h in holds)
        if broken:
            text += "bogus: 1\n"
        self.config.write_text(text, encoding="utf-8")

    def volume_path(self, volume: str) -> Path:
        return self.vols / volume

    def run(self, now: datetime, *args: str) -> Ran:
        """The command in-process, its clock pinned to `now`."""
        env = {"ARCHIVEKEEPER_FAKE_NOW": iso(now), "ARCHIVEKEEPER_LOCK_WAIT": self.lock_wait}
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args], env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(result.exception))
            raise AssertionError(f"[internal-error] `{' '.join(args)}` raised:\n{tb}")
        ran = Ran(tuple(args), result.exit_code, result.stdout, result.stderr)
        assert "internal error" not in ran.err and "Traceback" not in ran.err, \
            f"[internal-error] {ran}"
        return ran

    def spawn(self, now: datetime, *args: str, crash: tuple[str, int]) -> Ran:
        """The installed entry point as a subprocess that fsops kills at `crash`."""
        env = {**os.environ, "ARCHIVEKEEPER_FAKE_NOW": iso(now), "ARCHIVEKEEPER_LOCK_WAIT": "0",
               crash[0]: str(crash[1])}
        proc = subprocess.run([str(BIN), "--config", str(self.config), *args],
                              capture_output=True, text=True, env=env, timeout=120)
        ran = Ran(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        assert "internal error" not in ran.err and "Traceback" not in ran.err, \
            f"[internal-error] {ran} (killed at {crash})"
        return ran

    def audit_records(self) -> list[dict]:
        log = self.state / "audit.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
                if line.strip()]


def write_file(path: Path, data: bytes, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def matches(path: Path, data: bytes, mtime_ns: int) -> bool:
    """Is a regular file with exactly this content and mtime at path (symlinks not followed)?"""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (os.path.isfile(path) and not os.path.islink(path) and st.st_mtime_ns == mtime_ns
            and st.st_size == len(data) and path.read_bytes() == data)


def regular_files(top: Path, skip_meta: bool) -> dict[str, Path]:
    """Every regular file under top, by path relative to it (symlinks are not entered)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip_meta and dirpath == str(top):
            dirnames[:] = [d for d in dirnames if d != META]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                out[os.path.relpath(path, top)] = path
    return out


def trash_files(top: Path) -> dict[tuple[str, str], Path]:
    """Every regular file in a drive's trash, by (batch, path relative to the volume)."""
    trash = top / META / "trash"
    out = {}
    if not trash.is_dir():
        return out
    for batch in sorted(os.listdir(trash)):
        for rel, path in regular_files(trash / batch, skip_meta=False).items():
            out[(batch, rel)] = path
    return out


def tree_digest(top: Path) -> str:
    """Hash of a tree: every entry's path, kind, mode, size, mtime and content (or link
    target). Symlinks are recorded, never followed."""
    digest = hashlib.sha256()
    if not top.exists():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = os.lstat(path)
            digest.update(f"{os.path.relpath(path, top)}\0{st.st_mode}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(f"{st.st_size}\0{st.st_mtime_ns}\0".encode())
                digest.update(path.read_bytes())
            else:
                digest.update(f"{st.st_mtime_ns}".encode())
    return digest.hexdigest()


def newest_mtime(top: Path) -> datetime | None:
    """Newest file or folder mtime on a volume, its .archivekeeper/ aside (the clock guard's
    stand-in for a mark on a fresh index)."""
    newest = None
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == str(top):
            dirnames[:] = [d for d in dirnames if d != META]
        for name in [*dirnames, *filenames, "."]:
            ns = os.lstat(Path(dirpath) / name).st_mtime_ns
            newest = ns if newest is None else max(newest, ns)
    return None if newest is None else datetime.fromtimestamp(newest / 1e9, tz=UTC).astimezone()


def age_folders(top: Path, stamps) -> None:
    """Time passes for folders: each one changed in the last few seconds (by the test or the
    product) gets a new mtime from `stamps`, unique and safely in the past. The scanner never
    trusts a folder changed within 2 s of its listing (real time), so without this a shoot the
    product touched would stay unmovable for the rest of a fast example."""
    recent = (datetime.now().timestamp() - 3) * 10**9
    for dirpath, dirnames, _ in os.walk(top):
        if dirpath == str(top):
            dirnames[:] = [d for d in dirnames if d != META]
        if os.lstat(dirpath).st_mtime_ns >= recent:
            stamp = next(stamps)
            os.utime(dirpath, ns=(stamp, stamp))
