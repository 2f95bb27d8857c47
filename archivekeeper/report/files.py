"""Stored reports: report-YYYY-Www.{html,txt,json} in report.dir (mode 0700), each file 0600,
written whole under a temporary name and renamed into place, through the folder's descriptor
and never through a symlink; reports older than report.keep are deleted."""

from __future__ import annotations

import os
import re
import secrets
from datetime import date
from pathlib import Path

from archivekeeper.core.durations import Period
from archivekeeper.index.store import private_dir

NAME = re.compile(r"report-(\d{4})-W(\d{2})\.(html|txt|json)")


def _open_dir(directory: Path, private: bool = True) -> int:
    """Open report.dir, made 0700 (created if missing); another folder (`report --out`) is
    the owner's own: created 0700 if missing, its mode never changed."""
    if private:
        private_dir(directory)
    elif not os.path.lexists(directory):
        os.mkdir(directory, 0o700)
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def write_reports(directory: Path, week: str, renderings: dict[str, str],
                  private: bool = True) -> list[Path]:
    """Given the folder, the ISO week ("2026-W49") and {suffix: text}, write each file and
    return their paths. A report of the same week is replaced. `private`: the folder is
    report.dir (see _open_dir). Raise OSError or StoreError."""
    dir_fd = _open_dir(directory, private)
    try:
        paths = []
        for suffix, body in renderings.items():
            name = f"report-{week}.{suffix}"
            temp = f".{name}.{secrets.token_hex(4)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                    out.write(body)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                os.unlink(temp, dir_fd=dir_fd)
                raise
            paths.append(Path(directory) / name)
        os.fsync(dir_fd)
        return paths
    finally:
        os.close(dir_fd)


def prune_reports(directory: Path, today: date, keep: Period) -> list[str]:
    """Delete the stored reports whose week began before `keep` before this week's Monday;
    return their names. Only files named like a report are touched."""
    dir_fd = _open_dir(directory)
    try:
        this_monday = date.fromordinal(today.toordinal() - today.weekday())
        cutoff = keep.subtract_from(this_monday)
        removed = []
        for name in sorted(os.listdir(dir_fd)):
            found = NAME.fullmatch(name)
            if found is None:
                continue
            try:
                monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
            except ValueError:
                continue
            if monday < cutoff:
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
        return removed
    finally:
        os.close(dir_fd)


def stored_weeks(directory: Path) -> list[str]:
    """The weeks ("2026-W49") with a stored report file in the folder."""
    dir_fd = _open_dir(directory)
    try:
        return sorted({f"{m[1]}-W{m[2]}" for m in map(NAME.fullmatch, os.listdir(dir_fd)) if m})
    finally:
        os.close(dir_fd)


def read_report(directory: Path, week: str) -> dict[str, str]:
    """{suffix: text} of a stored report's files (never through a symlink)."""
    dir_fd = _open_dir(directory)
    try:
        texts = {}
        for suffix in ("html", "txt", "json"):
            try:
                fd = os.open(f"report-{week}.{suffix}", os.O_RDONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as f:
                texts[suffix] = f.read()
        return texts
    finally:
        os.close(dir_fd)


def remove_report(directory: Path, week: str) -> None:
    dir_fd = _open_dir(directory)
    try:
        for suffix in ("html", "txt", "json"):
            try:
                os.unlink(f"report-{week}.{suffix}", dir_fd=dir_fd)
            except FileNotFoundError:
                pass
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
