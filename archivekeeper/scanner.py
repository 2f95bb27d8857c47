"""Walks online volumes into the index. Never deletes, never follows a symlink, never crosses
onto another filesystem or into another volume.

A quick scan skips a shoot whose folders all kept their mtime since the last listing (a folder
whose mtime was within 2 s of its listing is recorded as "racy" and always re-listed: FAT keeps
mtimes to 2 s). `full` re-lists every folder and stats every file. A volume is scanned in one
transaction, committed only if its marker is still there at the end: a drive that goes away
mid-scan changes nothing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from archivekeeper import naming
from archivekeeper.facts import mtime_date
from archivekeeper.logs import get_logger, show_path
from archivekeeper.naming import EARLIEST_PLAUSIBLE
from archivekeeper.store import Store
from archivekeeper.volumes import MARKER, MARKER_DIR, VolumeStatus, read_marker

RAW_EXT = {"cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "dng", "raf", "orf", "rw2",
           "pef", "srw", "x3f", "3fr", "iiq", "erf", "kdc", "mrw", "raw"}
IMAGE_EXT = {"jpg", "jpeg", "png", "tif", "tiff", "heic", "heif", "avif", "webp", "jxl", "gif",
             "bmp", "psd", "psb"}
VIDEO_EXT = {"mp4", "mov", "avi", "mts", "m2ts", "m4v", "mkv", "mpg", "mpeg", "3gp"}
SIDECAR_EXT = {"xmp", "pp3", "dop", "thm", "on1", "cos", "aae"}
EXIF_EXT = {"jpg", "jpeg", "tif", "tiff", "dng", "arw", "nef", "cr2", "orf", "rw2", "pef", "srw",
            "heic", "heif"}
EXIF_SAMPLE = 12
RACY_NS = 2_000_000_000
_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = stat.S_IFMT(0o170000), stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK

log = get_logger()


_KIND_BY_EXT = {
    ext.encode(): kind
    for kind, exts in (("raw", RAW_EXT), ("image", IMAGE_EXT), ("video", VIDEO_EXT),
                       ("sidecar", SIDECAR_EXT))
    for ext in exts
}


def file_kind(name: bytes) -> str:
    """raw | image | video | sidecar | other, by extension (case-insensitive)."""
    base, dot, ext = name.rpartition(b".")
    return _KIND_BY_EXT.get(ext.lower(), "other") if dot else "other"


@dataclass
class ScanSummary:
    shoots: int = 0
    files: int = 0
    bytes: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    dropped: int = 0
    unrecognised: int = 0
    errors: int = 0
    offline: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [
            f"{self.shoots} shoots", f"{self.files} files", f"{human_bytes(self.bytes)}",
            f"{self.new} new", f"{self.changed} changed", f"{self.missing} missing",
            f"{len(self.offline)} offline volumes", f"{self.unrecognised} unrecognised folders",
            f"{self.errors} errors",
        ]
        return "scan: " + ", ".join(parts)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass
class _ShootWalk:
    files: list[tuple[bytes, int, int, int, str]]
    dirs: list[tuple[bytes, int]]
    incomplete: bool
    errors: int


class VolumeScan:
    """Scan one online volume into the store (the caller owns the transaction)."""

    def __init__(self, status: VolumeStatus, store: Store, patterns, *, full: bool,
                 today: date, exif_reader: Callable[[], object] | None,
                 progress: Callable[[int], None] | None = None):
        self.status = status
        self.store = store
        self.patterns = patterns
        self.full = full
        self.today = today
        self.exif_reader = exif_reader
        self.progress = progress or (lambda n: None)
        self.root = os.fsencode(str(status.path))
        self.summary = ScanSummary()
        self.start_ns = time.time_ns()
        self.protected: list[bytes] = []

    def abs(self, rel: bytes) -> bytes:
        return self.root + b"/" + rel if rel else self.root

    def run(self) -> ScanSummary:
        store, name = self.store, self.status.name
        gen = store.next_gen()
        at = datetime.fromtimestamp(self.start_ns / 1e9, tz=UTC).astimezone().isoformat()
        ids = store.known_shoots(name)
        self.seen: list[int] = []
        known_dirs = {} if self.full else store.shoot_dirs(name)
        root_dev = os.lstat(self.root).st_dev
        stack: list[tuple[bytes, tuple[str, ...]]] = [(b"", ())]
        while stack:
            rel, parts = stack.pop()
            try:
                with os.scandir(self.abs(rel)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if rel == b"":
                    raise
                self._error("scan_unreadable_folder", rel, exc)
                self.protected.append(rel)
                continue
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if rel == b"" and entry.name == os.fsencode(MARKER_DIR):
                    continue
                child = rel + b"/" + entry.name if rel else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self._error("scan_unreadable_folder", child, exc)
                    self.protected.append(child)
                    continue
                if st.st_dev != root_dev:
                    self._unrecognised(child, "another filesystem is mounted here (not entered)",
                                       gen)
                    continue
                if os.path.lexists(self.abs(child) + b"/" + os.fsencode(MARKER)):
                    self._unrecognised(child, "another volume (has a volume marker; not entered)",
                                       gen)
                    continue
                try:
                    text = entry.name.decode("utf-8")
                except UnicodeDecodeError:
                    self._unrecognised(child, "folder name is not valid UTF-8", gen)
                    continue
                verdict = naming.classify(self.patterns, (*parts, text), self.today)
                if isinstance(verdict, naming.ShootName):
                    self._shoot(child, verdict, st.st_mtime_ns, ids, known_dirs, gen, at)
                elif isinstance(verdict, naming.Container):
                    stack.append((child, (*parts, text)))
                else:
                    self._unrecognised(child, verdict.reason, gen)
        store.mark_seen(self.seen, gen)
        missing, dropped = store.retire_unseen(name, gen, self.full, self.protected)
        store.forget_unrecognised(name, gen)
        self.summary.missing, self.summary.dropped = missing, dropped
        return self.summary

    def _error(self, event: str, rel: bytes, exc: OSError) -> None:
        self.summary.errors += 1
        log.warning(event, volume=self.status.name, path=show_path(rel), error=exc.strerror)

    def _unrecognised(self, rel: bytes, reason: str, gen: int) -> None:
        self.summary.unrecognised += 1
        self.store.record_unrecognised(self.status.name, rel, reason, gen)
        log.info("scan_unrecognised_folder", volume=self.status.name, path=show_path(rel),
                 reason=reason)

    def _unchanged(self, dirs: list[tuple[bytes, int]]) -> bool:
        for rel, mtime_ns in dirs:
            if mtime_ns < 0:
                return False
            try:
                st = os.lstat(self.abs(rel))
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode) or st.st_mtime_ns != mtime_ns:
                return False
        return True

    def _shoot(self, rel: bytes, name: naming.ShootName, mtime_ns: int, ids, known_dirs,
               gen: int, at: str) -> None:
        store, summary = self.store, self.summary
        known = ids.get(rel)
        shoot_id = known[0] if known else None
        if known and shoot_id in known_dirs and self._unchanged(known_dirs[shoot_id]):
            _, customer, shoot_type, files, nbytes = known
            if (customer, shoot_type) == (name.customer, name.type):
                self.seen.append(shoot_id)
                self._count(files, nbytes)
                return
        walk = self._walk_shoot(rel, mtime_ns)
        newest = max((f[2] for f in walk.files), default=mtime_ns)
        old = store.shoot(shoot_id) if shoot_id is not None else None
        shoot_date, source = name.date, "folder"
        if shoot_date is None:
            shoot_date, source = self._exif_date(walk.files), "exif"
            if shoot_date is None:
                shoot_date, source = mtime_date(newest), "mtime"
                if shoot_date < EARLIEST_PLAUSIBLE:
                    # a camera clock never set: the later date, the day we first saw the shoot
                    shoot_date = date.fromisoformat(old["first_seen"][:10]) if old else self.today
        fields = {
            "customer": name.customer, "customer_key": name.customer_key,
            "date": shoot_date.isoformat(), "date_source": source, "type": name.type,
            "files": len(walk.files), "bytes": sum(f[1] for f in walk.files),
            "newest_mtime_ns": newest, "incomplete": int(walk.incomplete),
        }
        new_id = store.upsert_shoot(self.status.name, rel, fields, gen, at, shoot_id)
        store.replace_files(new_id, self.status.name, walk.files, walk.dirs)
        if old is None:
            summary.new += 1
        elif (old["files"], old["bytes"], old["newest_mtime_ns"], old["date"]) != (
                fields["files"], fields["bytes"], newest, fields["date"]):
            summary.changed += 1
        summary.errors += walk.errors
        self._count(fields["files"], fields["bytes"])

    def _count(self, files: int, nbytes: int) -> None:
        self.summary.shoots += 1
        self.summary.files += files
        self.summary.bytes += nbytes
        self.progress(files)

    def _walk_shoot(self, rel: bytes, mtime_ns: int) -> _ShootWalk:
        racy_after = self.start_ns - RACY_NS
        out = _ShootWalk(files=[], dirs=[], incomplete=False, errors=0)
        root_dev = self.status.dev
        files, kinds = out.files, _KIND_BY_EXT
        stack = [(rel, mtime_ns)]
        while stack:
            folder, folder_mtime = stack.pop()
            out.dirs.append((folder, -1 if folder_mtime >= racy_after else folder_mtime))
            try:
                with os.scandir(self.abs(folder)) as it:
                    entries = list(it)
            except OSError as exc:
                out.incomplete = True
                out.errors += 1
                log.warning("scan_unreadable_folder", volume=self.status.name,
                            path=show_path(folder), error=exc.strerror)
                continue
            for entry in entries:
                name = entry.name
                child = folder + b"/" + name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    out.incomplete = True
                    out.errors += 1
                    log.warning("scan_unreadable_file", volume=self.status.name,
                                path=show_path(child), error=exc.strerror)
                    continue
                fmt = st.st_mode & _S_IFMT
                if fmt == _S_IFREG:
                    ext = name.rpartition(b".")[2].lower()
                    files.append((child, st.st_size, st.st_mtime_ns, st.st_ino,
                                  kinds.get(ext, "other") if b"." in name else "other"))
                elif fmt == _S_IFDIR:
                    if root_dev is not None and st.st_dev != root_dev:
                        log.warning("scan_other_filesystem", volume=self.status.name,
                                    path=show_path(child))
                        continue
                    if os.path.lexists(self.abs(child) + b"/" + os.fsencode(MARKER)):
                        log.warning("scan_nested_volume", volume=self.status.name,
                                    path=show_path(child))
                        continue
                    stack.append((child, st.st_mtime_ns))
                elif fmt == _S_IFLNK:
                    files.append((child, st.st_size, st.st_mtime_ns, st.st_ino, "symlink"))
        return out

    def _exif_date(self, files) -> date | None:
        """Latest plausible EXIF DateTimeOriginal among a sample of the shoot's images."""
        if self.exif_reader is None:
            return None
        candidates = sorted(f[0] for f in files
                            if f[4] in ("image", "raw") and f[0].rsplit(b".", 1)[-1].lower()
                            .decode("ascii", "replace") in EXIF_EXT)
        if not candidates:
            return None
        step = max(1, len(candidates) // EXIF_SAMPLE)
        sample = candidates[::step][:EXIF_SAMPLE] + [candidates[-1]]
        dates = self.exif_reader().read_dates(self.abs(p) for p in dict.fromkeys(sample))
        latest_ok = self.today + timedelta(days=1)
        plausible = [d.date() for d in dates.values()
                     if d is not None and EARLIEST_PLAUSIBLE <= d.date() <= latest_ok]
        return max(plausible, default=None)


def scan(statuses: list[VolumeStatus], store: Store, patterns, *, full: bool, today: date,
         now: datetime, exif_reader=None, progress=None) -> ScanSummary:
    """Scan every online volume of `statuses`; offline ones are reported, never touched."""
    total = ScanSummary()
    store.prepare_for_bulk_writes()
    for status in statuses:
        if not status.online:
            total.offline.append(status.name)
            with store.transaction():
                store.set_volume_state(status.name, offline=True)
            continue
        try:
            with store.transaction():
                store.set_volume_state(status.name, offline=False)
                part = VolumeScan(status, store, patterns, full=full, today=today,
                                  exif_reader=exif_reader, progress=progress).run()
                marker = read_marker(status.path)
                if marker is None or marker["id"] != status.volume_id:
                    raise _VolumeVanished(f"{status.path}: the volume went away during the scan")
                store.mark_volume_seen(status.name, str(status.path), now, full)
        except (_VolumeVanished, OSError) as exc:
            message = exc.args[0] if isinstance(exc, _VolumeVanished) else (
                f"{status.path}: {exc.strerror}")
            log.warning("volume_vanished_mid_scan", volume=status.name, error=message)
            total.aborted.append(status.name)
            total.offline.append(status.name)
            total.errors += 1
            continue
        for name in ("shoots", "files", "bytes", "new", "changed", "missing", "dropped",
                     "unrecognised", "errors"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
    return total


class _VolumeVanished(Exception):
    pass
