"""The only module that renames, unlinks or removes directories of user files.

Safety model (what systemd-tmpfiles and tmpreaper learned from their symlink-race CVEs):

- Every operation is relative to directory file descriptors. From the volume root, each path
  component is opened with ``O_RDONLY|O_DIRECTORY|O_NOFOLLOW`` relative to its parent's fd, so a
  component swapped for a symlink is refused instead of followed, and a component renamed away
  mid-walk can never redirect the walk elsewhere: there is no path string to re-resolve.
- Every directory entered must be on the root's mount (``st_dev`` and the mount id: a bind mount
  of an outside folder has the volume's st_dev) and must not hold another volume's marker
  ``.archivekeeper/volume.json``.
- The marker is read through the root's fd, never following a symlink and never blocking (a FIFO
  planted there is refused, not waited on), and written the same way (``write_marker``).
- Right before a file is touched, ``lstat`` (relative to its parent fd) re-verifies it against the
  plan: a regular file of the planned size and mtime_ns, and inode when the filesystem keeps stable
  inode numbers. Anything else is reported ``changed`` and left alone.
- Only single regular files move, never directories: a file added after planning stays.
- Nothing is ever overwritten: trash moves and restores use ``renameat2(RENAME_NOREPLACE)``, falling
  back to link-then-unlink, and only on filesystems with neither to check-then-rename.

Residual window, accepted on purpose: between the ``lstat`` check and the rename/unlink, the name
can be replaced *in the same directory* (the parent fd is fixed). Whoever can do that has write
access to that directory and could delete the file anyway; a trashed file stays restorable.

Paths are bytes relative to the volume root, "/"-separated. Trash lives on the same volume at
``<root>/.archivekeeper/trash/<batch>/<relpath>`` so that a move is one atomic rename.

A ``VolumeRoot`` is not thread-safe: use it from one thread.

Crash testing: ``ARCHIVEKEEPER_CRASH_AT=N`` makes the process SIGKILL itself right before its Nth
mutating system call (mkdir, rename, link, unlink, rmdir; attempts are counted, failed ones too),
``ARCHIVEKEEPER_CRASH_AFTER=N`` right after it. Both are read once, at import.
Fault testing: ``ARCHIVEKEEPER_FAULT=EIO@N`` makes the Nth of those calls raise OSError(EIO)
instead of running (``@N+``: that one and every later one; see archivekeeper/faults.py).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from archivekeeper import faults
from archivekeeper.index.markers import (
    DIR_FLAGS,
    MARKER_NAME,
    META_DIR,
    NOT_A_DIRECTORY,
    MarkerError,
    RootError,
    closing,
    kind,
    lstat_at,
    meta_problem,
    open_root,
    read_marker_in,
)
from archivekeeper.index.mounts import holding_mount, mount_id, parse_mountinfo
from archivekeeper.logs import show_path

MARKER = META_DIR + b"/volume.json"
TRASH_DIR = b"trash"
_MARKER_TMP = b"volume.json.tmp"

TRASH_DIR_MODE = 0o700
# Restored parents get the process umask applied, like any mkdir(1).
RESTORED_DIR_MODE = 0o777

# Filesystems whose inode numbers are made up per mount or per cache lifetime. fuseblk is both
# ntfs-3g and exfat-fuse: it cannot be told apart from here, so it is treated as unstable.
UNSTABLE_INODE_FILESYSTEMS = frozenset({"vfat", "msdos", "fat", "exfat", "fuseblk", "fuse.exfat"})

_PRUNE_STOPS = (
    errno.ENOTEMPTY,
    errno.EEXIST,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.ELOOP,
    errno.EBUSY,
)
_RENAME_NOREPLACE = 1

T = TypeVar("T")


class FsError(Exception):
    """A filesystem operation failed for a reason other than a planned-for refusal."""

    def __init__(self, verb: str, path: bytes | str, volume: str, reason: str) -> None:
        self.verb = verb
        self.path = path
        self.volume = volume
        self.reason = reason
        super().__init__(f"error while {verb} {show_path(path)} on volume {volume}: {reason}")


@dataclass(frozen=True)
class Expect:
    """The facts the plan recorded for a file; inode None means: do not compare inodes."""

    size: int
    mtime_ns: int
    inode: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one file: moved, restored, unlinked, changed, gone, exists or refused."""

    status: str
    detail: str = ""


class _Stop(Exception):
    """Ends an operation early with the outcome to report."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = Outcome(status, detail)


def _env_count(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


_CRASH_AT = _env_count("ARCHIVEKEEPER_CRASH_AT")
_CRASH_AFTER = _env_count("ARCHIVEKEEPER_CRASH_AFTER")
_FAULT = faults.from_env("ARCHIVEKEEPER_FAULT")
_mutations = 0


def mutation_count() -> int:
    """Return how many mutating system calls this process has attempted through this module."""
    return _mutations


def _mutate(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    global _mutations
    if _CRASH_AT is not None and _mutations + 1 == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
    _mutations += 1
    try:
        if _FAULT is not None:
            _FAULT.check()
        return call(*args, **kwargs)
    finally:
        if _mutations == _CRASH_AFTER:
            os.kill(os.getpid(), signal.SIGKILL)


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    function.restype = ctypes.c_int
    return function


# Module-level so tests can switch it off to exercise the fallbacks.
_RENAMEAT2 = _load_renameat2()


def filesystem_type(mountinfo: bytes, dev: int, path: bytes) -> str | None:
    """Given the text of /proc/self/mountinfo, a st_dev and the real path of a directory, return
    the type of the filesystem that holds it, or None if no line matches.

    A line whose major:minor equals dev wins; otherwise the longest (and, among equals, last)
    mount point containing path, because btrfs subvolumes report a st_dev of their own.
    """
    mounts = parse_mountinfo(mountinfo)
    for mount in mounts:
        if mount.dev == (os.major(dev), os.minor(dev)):
            return mount.fs_type
    found = holding_mount(mounts, path)
    return found.fs_type if found else None


def _open_real_dir(dir_fd: int, name: bytes) -> int:
    """Given a directory fd and a name in it, return an fd for that directory, never following a
    symlink. Raise _Stop(gone) if it is missing, _Stop(refused) if it is not a real directory."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _Stop("gone", f"directory {show_path(name)} is missing") from None
    except OSError as exc:
        if exc.errno not in NOT_A_DIRECTORY:
            raise
        entry = lstat_at(dir_fd, name)
        what = kind(entry.st_mode) if entry else "gone"
        raise _Stop("refused", f"{show_path(name)} is {what}, not a directory") from exc


def _rename_noreplace(src_fd: int, src: bytes, dst_fd: int, dst: bytes) -> None:
    """Given two directory fds and names, move src to dst. Raise FileExistsError, never
    replacing anything, if dst exists."""
    if _RENAMEAT2 is not None:
        if _mutate(_RENAMEAT2, src_fd, src, dst_fd, dst, _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code))
    try:
        _mutate(os.link, src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # No hard links here either (FAT, exFAT): check, then rename. A file appearing at dst
        # between the two calls would be replaced; dst is in our 0700 trash or is the spot a
        # restore has just seen empty.
        if lstat_at(dst_fd, dst) is not None:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from exc
        _mutate(os.rename, src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return
    _mutate(os.unlink, src, dir_fd=src_fd)


def write_marker(root_fd: int, content: bytes) -> None:
    """Given an open volume root that has no marker, write content as .archivekeeper/volume.json.

    Through fds and never through a symlink: a symlink at .archivekeeper is refused, one at the
    temp file is removed (unlink never follows), the temp file is created O_EXCL|O_NOFOLLOW.
    Never onto another mount. Synced, renamed into place, the folders synced. Raise MarkerError
    or OSError.
    """
    try:
        os.mkdir(META_DIR, dir_fd=root_fd)
    except FileExistsError:
        pass  # the open below decides whether it is a real directory
    try:
        meta_fd = os.open(META_DIR, DIR_FLAGS, dir_fd=root_fd)
    except OSError as exc:
        raise MarkerError(meta_problem(root_fd, exc)) from exc
    with closing(meta_fd):
        root = os.fstat(root_fd)
        if os.fstat(meta_fd).st_dev != root.st_dev or mount_id(meta_fd) != mount_id(root_fd):
            raise MarkerError(".archivekeeper is another mount")
        # Two inits racing both saw no marker: the lock makes them take turns, and the one
        # that comes second finds the first's marker and refuses, never replacing it (nor
        # removing the other's temp file as a crashed init's).
        fcntl.flock(meta_fd, fcntl.LOCK_EX)
        if lstat_at(meta_fd, MARKER_NAME) is not None:
            raise MarkerError("a marker appeared while this one was being written "
                              "(another volume init?)")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(_MARKER_TMP, flags, 0o644, dir_fd=meta_fd)
        except FileExistsError:
            os.unlink(_MARKER_TMP, dir_fd=meta_fd)  # a crashed init's, or planted: never followed
            fd = os.open(_MARKER_TMP, flags, 0o644, dir_fd=meta_fd)
        with closing(fd):
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        os.rename(_MARKER_TMP, MARKER_NAME, src_dir_fd=meta_fd, dst_dir_fd=meta_fd)
        os.fsync(meta_fd)
    os.fsync(root_fd)


class VolumeRoot:
    """An open volume root: every operation below it is fd-relative and re-verified."""

    def __init__(
        self,
        root_fd: int,
        meta_fd: int,
        name: str,
        dev: int,
        mount: int | None,
        fs_type: str | None,
        stable_inodes: bool,
    ) -> None:
        self._root_fd = root_fd
        self._meta_fd = meta_fd
        self.name = name
        self.dev = dev
        self.mount = mount  # mount id; None: cannot be told here, st_dev alone is compared
        self.fs_type = fs_type
        self.stable_inodes = stable_inodes

    @classmethod
    def open(
        cls,
        path: str | bytes,
        name: str,
        expected_dev: int | None = None,
        stable_inodes: bool | None = None,
        expected_id: str | None = None,
    ) -> VolumeRoot:
        """Given a volume's configured absolute path and name, return it opened (see open_root).

        The marker is read through the opened root, so the id checked is that of the directory
        every later operation goes through. stable_inodes None reads the filesystem type from
        /proc/self/mountinfo (unknown: True). Raise FsError as open_root does, or if the root is
        not on expected_dev, or its marker is missing, unusable, or not of expected_id.
        """
        def refuse(reason: str) -> FsError:
            return FsError("opening", os.fsencode(path), name, reason)

        try:
            root_fd = open_root(path)
        except RootError as exc:
            raise refuse(exc.reason) from exc

        try:
            dev = os.fstat(root_fd).st_dev
            if expected_dev is not None and dev != expected_dev:
                raise refuse(f"on device {dev}, expected {expected_dev} (another drive mounted?)")
            mount = mount_id(root_fd)
            meta_fd = cls._open_meta(root_fd, dev, mount, expected_id, refuse)
        except BaseException:
            os.close(root_fd)
            raise
        fs_type = _root_fs_type(root_fd, dev)
        if stable_inodes is None:
            stable_inodes = fs_type not in UNSTABLE_INODE_FILESYSTEMS
        return cls(root_fd, meta_fd, name, dev, mount, fs_type, stable_inodes)

    @staticmethod
    def _open_meta(
        root_fd: int,
        dev: int,
        mount: int | None,
        expected_id: str | None,
        refuse: Callable[[str], FsError],
    ) -> int:
        missing = "holds no volume marker .archivekeeper/volume.json"
        try:
            meta_fd = os.open(META_DIR, DIR_FLAGS, dir_fd=root_fd)
        except FileNotFoundError:
            raise refuse(missing) from None
        except OSError as exc:
            raise refuse(meta_problem(root_fd, exc)) from exc
        try:
            if os.fstat(meta_fd).st_dev != dev or mount_id(meta_fd) != mount:
                raise refuse(".archivekeeper is another mount")
            try:
                marker = read_marker_in(meta_fd)
            except MarkerError as exc:
                raise refuse(str(exc)) from exc
            if marker is None:
                raise refuse(missing)
            if expected_id is not None and marker["id"] != expected_id:
                raise refuse(f"holds another volume (id {marker['id']}), expected id "
                             f"{expected_id}")
        except BaseException:
            os.close(meta_fd)
            raise
        return meta_fd

    def close(self) -> None:
        """Release the root's file descriptors. Idempotent."""
        for fd in (self._root_fd, self._meta_fd):
            if fd >= 0:
                os.close(fd)
        self._root_fd = self._meta_fd = -1

    def __enter__(self) -> VolumeRoot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Public operations ---------------------------------------------------------------------

    def move_to_trash(self, relpath: bytes, batch: str, expect: Expect) -> Outcome:
        """Given a planned file, move it to .archivekeeper/trash/<batch>/<relpath>.

        Return moved (also when a crashed earlier attempt already moved it), changed (it no longer
        matches expect: left in place), gone, or refused (a symlink, another filesystem or another
        volume on the way, or trash already holding a different file there). Raise FsError on
        a malformed relpath or batch, or an unexpected OS error.
        """
        verb = "moving to trash"
        dirs, name = self._split(relpath, verb)
        trash_dirs = (TRASH_DIR, self._batch(batch, relpath, verb), *dirs)
        return self._run(verb, relpath, lambda: self._move_to_trash(dirs, name, trash_dirs, expect))

    def restore(self, batch: str, relpath: bytes, expect: Expect | None = None) -> Outcome:
        """Given a trashed file, move it back to relpath, recreating missing parent directories.

        Never overwrites: return exists if something is at relpath now (the file stays in trash).
        Return restored (also when a crashed earlier attempt already did it, which is only
        recognised with expect), gone, changed (the trash copy does not match expect) or refused.
        Raise FsError on a malformed relpath or batch, or an unexpected OS error.
        """
        verb = "restoring"
        dirs, name = self._split(relpath, verb)
        trash_dirs = (TRASH_DIR, self._batch(batch, relpath, verb), *dirs)
        return self._run(verb, relpath, lambda: self._restore(dirs, name, trash_dirs, expect))

    def unlink(self, relpath: bytes, expect: Expect) -> Outcome:
        """Given a planned file, delete it for good (erasure, no trash).

        Return unlinked, changed (left in place), gone or refused. Raise FsError on a malformed
        relpath or an unexpected OS error.
        """
        verb = "deleting"
        dirs, name = self._split(relpath, verb)
        return self._run(verb, relpath, lambda: self._unlink(self._root_fd, dirs, name, expect))

    def unlink_trash(self, batch: str, relpath: bytes, expect: Expect) -> Outcome:
        """Given a trashed file and what was trashed, delete it for good (purge).

        Return unlinked, gone, changed (not a regular file, or does not match expect: left in
        trash) or refused.
        Raise FsError on a malformed relpath or batch, or an unexpected OS error.
        """
        verb = "purging"
        dirs, name = self._split(relpath, verb)
        trash_dirs = (TRASH_DIR, self._batch(batch, relpath, verb), *dirs)
        return self._run(
            verb, relpath, lambda: self._unlink(self._meta_fd, trash_dirs, name, expect)
        )

    def prune_empty_dirs(self, rel_dir: bytes, stop_at: bytes) -> int:
        """Given a directory and an ancestor of it (b"" = the volume root), remove the directory
        and its parents while they are empty, never stop_at itself, and return how many went.

        A non-empty, missing-in-between, swapped (symlink), mounted-on or other-volume directory
        ends it quietly. Raise FsError if stop_at is not rel_dir or an ancestor of it, on a
        malformed path, or on an unexpected OS error.
        """
        verb = "removing empty directories of"
        parts = self._components(rel_dir, verb)
        stop = self._components(stop_at, verb) if stop_at else ()
        if parts[: len(stop)] != stop:
            raise FsError(verb, rel_dir, self.name, f"{show_path(stop_at)} is not an ancestor")
        return self._prune(verb, rel_dir, self._root_fd, parts, len(stop))

    def prune_trash_dirs(self, batch: str, rel_dir: bytes = b"") -> int:
        """Given a batch and a directory inside it (b"" = the batch directory), remove it and its
        parents while they are empty, the batch directory included, never the trash root.

        Return how many went. Raise FsError as prune_empty_dirs does.
        """
        verb = "removing empty trash directories of"
        parts = (TRASH_DIR, self._batch(batch, rel_dir, verb))
        if rel_dir:
            parts += self._components(rel_dir, verb)
        return self._prune(verb, rel_dir, self._meta_fd, parts, 1)

    # Internals -----------------------------------------------------------------------------

    def _run(self, verb: str, relpath: bytes, operation: Callable[[], Outcome]) -> Outcome:
        try:
            return operation()
        except _Stop as stop:
            return stop.outcome
        except OSError as exc:
            raise FsError(verb, relpath, self.name, exc.strerror or str(exc)) from exc

    def _split(self, relpath: bytes | str, verb: str) -> tuple[tuple[bytes, ...], bytes]:
        parts = self._components(relpath, verb)
        return parts[:-1], parts[-1]

    def _components(self, relpath: bytes | str, verb: str) -> tuple[bytes, ...]:
        raw = os.fsencode(relpath)
        parts = tuple(raw.split(b"/"))

        def refuse(reason: str) -> FsError:
            return FsError(verb, raw, self.name, f"invalid relative path: {reason}")

        if raw.startswith(b"/"):
            raise refuse("absolute")
        if b"\0" in raw:
            raise refuse("contains a NUL byte")
        if any(part in (b"", b".", b"..") for part in parts):
            raise refuse('empty, "." or ".." component')
        if parts[0] == META_DIR:
            raise refuse("inside .archivekeeper, which is reserved")
        return parts

    def _batch(self, batch: str, relpath: bytes, verb: str) -> bytes:
        raw = os.fsencode(batch)
        if raw in (b"", b".", b"..") or b"/" in raw or b"\0" in raw:
            raise FsError(verb, relpath, self.name, f"invalid trash batch name {batch!r}")
        return raw

    def _open_dirs(
        self, start_fd: int, names: Sequence[bytes], create_mode: int | None = None
    ) -> int:
        """Given a directory fd and the names below it, return a new fd for the last one (a
        duplicate of start_fd when names is empty), opened one component at a time.

        With create_mode, missing directories are created. Raise _Stop(gone) for a missing one,
        _Stop(refused) for a symlink, non-directory, other filesystem or other volume.
        """
        fd = os.dup(start_fd)
        try:
            for name in names:
                child_fd = self._open_child(fd, name, create_mode)
                os.close(fd)
                fd = child_fd
                self._check_entered(fd, name)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_child(self, dir_fd: int, name: bytes, create_mode: int | None) -> int:
        if create_mode is not None:
            try:
                return _open_real_dir(dir_fd, name)
            except _Stop as stop:
                if stop.outcome.status != "gone":
                    raise
            try:
                _mutate(os.mkdir, name, create_mode, dir_fd=dir_fd)
            except FileExistsError:
                pass  # created meanwhile by someone else: the open below decides what it is
        return _open_real_dir(dir_fd, name)

    def _check_entered(self, fd: int, name: bytes) -> None:
        if os.fstat(fd).st_dev != self.dev:
            raise _Stop("refused", f"{show_path(name)} is on another filesystem")
        if mount_id(fd) != self.mount:
            raise _Stop("refused", f"{show_path(name)} is another mount (a bind mount?)")
        try:
            os.stat(MARKER, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        raise _Stop("refused", f"{show_path(name)} holds another volume's marker")

    def _mismatch(self, found: os.stat_result, expect: Expect) -> str | None:
        if not stat.S_ISREG(found.st_mode):
            return f"is now {kind(found.st_mode)}"
        if found.st_dev != self.dev:
            return "is on another filesystem"
        if found.st_size != expect.size:
            return f"size changed from {expect.size} to {found.st_size}"
        if found.st_mtime_ns != expect.mtime_ns:
            return f"modification time changed from {expect.mtime_ns} to {found.st_mtime_ns} ns"
        if expect.inode is not None and self.stable_inodes and found.st_ino != expect.inode:
            return f"replaced by another file (inode {expect.inode} is now {found.st_ino})"
        return None

    def _verified(self, dir_fd: int, name: bytes, expect: Expect | None) -> os.stat_result:
        found = lstat_at(dir_fd, name)
        if found is None:
            raise _Stop("gone", "the file is missing")
        if not stat.S_ISREG(found.st_mode):
            raise _Stop("changed", f"is now {kind(found.st_mode)}")
        reason = self._mismatch(found, expect) if expect is not None else None
        if reason is not None:
            raise _Stop("changed", reason)
        return found

    def _matches_at(
        self, start_fd: int, dirs: Sequence[bytes], name: bytes, expect: Expect
    ) -> bool:
        try:
            dir_fd = self._open_dirs(start_fd, dirs)
        except _Stop:
            return False
        with closing(dir_fd):
            found = lstat_at(dir_fd, name)
        return found is not None and self._mismatch(found, expect) is None

    def _move_to_trash(
        self, dirs: Sequence[bytes], name: bytes, trash_dirs: Sequence[bytes], expect: Expect
    ) -> Outcome:
        try:
            with closing(self._open_dirs(self._root_fd, dirs)) as parent_fd:
                found = self._verified(parent_fd, name, expect)
                with closing(
                    self._open_dirs(self._meta_fd, trash_dirs, TRASH_DIR_MODE)
                ) as trash_fd:
                    try:
                        _rename_noreplace(parent_fd, name, trash_fd, name)
                    except FileExistsError:
                        return self._finish_half_done(parent_fd, trash_fd, name, found, "moved")
        except _Stop as stop:
            # A crash after the rename but before the caller recorded it: report it done.
            if stop.outcome.status == "gone" and self._matches_at(
                self._meta_fd, trash_dirs, name, expect
            ):
                return Outcome("moved", "already in trash")
            raise
        return Outcome("moved")

    def _finish_half_done(
        self, src_fd: int, dst_fd: int, name: bytes, found: os.stat_result, status: str
    ) -> Outcome:
        """A link-then-unlink interrupted before its unlink leaves the same inode at both ends."""
        existing = lstat_at(dst_fd, name)
        if existing is not None and os.path.samestat(existing, found):
            _mutate(os.unlink, name, dir_fd=src_fd)
            return Outcome(status, "finished an interrupted move")
        if status == "restored":
            return Outcome("exists", "something is at the original path now; left in trash")
        return Outcome("refused", "trash already holds a different file at this path")

    def _restore(
        self,
        dirs: Sequence[bytes],
        name: bytes,
        trash_dirs: Sequence[bytes],
        expect: Expect | None,
    ) -> Outcome:
        try:
            with closing(self._open_dirs(self._meta_fd, trash_dirs)) as trash_fd:
                found = self._verified(trash_fd, name, expect)
                with closing(self._open_dirs(self._root_fd, dirs, RESTORED_DIR_MODE)) as parent_fd:
                    try:
                        _rename_noreplace(trash_fd, name, parent_fd, name)
                    except FileExistsError:
                        return self._finish_half_done(trash_fd, parent_fd, name, found, "restored")
        except _Stop as stop:
            if stop.outcome.status == "gone" and expect is not None:
                if self._matches_at(self._root_fd, dirs, name, expect):
                    return Outcome("restored", "already restored")
            raise
        return Outcome("restored")

    def _unlink(
        self, start_fd: int, dirs: Sequence[bytes], name: bytes, expect: Expect | None
    ) -> Outcome:
        with closing(self._open_dirs(start_fd, dirs)) as parent_fd:
            self._verified(parent_fd, name, expect)
            _mutate(os.unlink, name, dir_fd=parent_fd)
        return Outcome("unlinked")

    def _prune(
        self, verb: str, rel_dir: bytes, start_fd: int, parts: Sequence[bytes], keep: int
    ) -> int:
        """Open parts one by one from start_fd, then rmdir from the deepest reached up to, never
        including, parts[keep - 1]. Return how many were removed."""
        fds = [os.dup(start_fd)]
        try:
            for name in parts:
                try:
                    fds.append(self._open_dirs(fds[-1], (name,)))
                except _Stop as stop:
                    if stop.outcome.status != "gone":
                        return 0
                    break  # already removed, e.g. by a crashed run: prune what is above it
            removed = 0
            for depth in range(len(fds) - 2, keep - 1, -1):
                # rmdir never follows a symlink and only removes an empty directory, so a name
                # swapped since it was opened can at worst lose an empty directory of this volume.
                try:
                    _mutate(os.rmdir, parts[depth], dir_fd=fds[depth])
                except OSError as exc:
                    if exc.errno in _PRUNE_STOPS:
                        break
                    raise
                removed += 1
            return removed
        except OSError as exc:
            raise FsError(verb, rel_dir, self.name, exc.strerror or str(exc)) from exc
        finally:
            for fd in fds:
                os.close(fd)


def _root_fs_type(root_fd: int, dev: int) -> str | None:
    try:
        with open("/proc/self/mountinfo", "rb") as mountinfo:
            text = mountinfo.read()
        real_path = os.readlink(f"/proc/self/fd/{root_fd}".encode())
    except OSError:
        return None
    return filesystem_type(text, dev, real_path)
