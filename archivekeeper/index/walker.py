"""Lists one shoot's folder tree for the scanner: its files packed as the index stores them
(filelist.py), its folders' mtimes and what could not be read. Never follows a symlink (a link
is listed as a file of kind "symlink"), never crosses onto another filesystem or mount (a bind
mount of the same filesystem included) or into a folder holding a volume marker.

Listing is CPU-bound Python (a stat per file). When a scan has many shoots to list, as a first
index does, `listings` hands them to two worker processes (this module's __main__, standard
library only, started by workers.py) so both cores list while the scanner writes; answers come
back in the order asked. A worker that fails is replaced by listing the rest in this process.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import NamedTuple

from archivekeeper.index.filelist import KIND_BY_EXT, pack_files
from archivekeeper.index.mounts import mount_id
from archivekeeper.index.workers import command as workers_command

_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000
WORKERS_FROM = 64  # shoots to list before workers pay for their start-up (~40 ms)
_CHUNK = 16  # shoots per request


class Listing(NamedTuple):
    files: tuple  # filelist.pack_files columns: (count, relpaths, sizes, mtimes, inodes, kinds)
    dirs: list  # [(relpath, mtime_ns or -1 if racy)]
    nbytes: int
    newest_ns: int  # newest file mtime, or the folder's own if it holds no file
    incomplete: bool
    problems: list  # [(event, relpath, strerror)] for the scanner to log


class Walk(NamedTuple):
    """Where and how to list: the volume root, its st_dev (None: not checked), the instant from
    which a folder mtime is too recent to trust, the marker path relative to a folder, and the
    root's mount id (None: not checked)."""
    root: bytes
    root_dev: int | None
    racy_after_ns: int
    marker: bytes
    root_mount: int | None = None


def list_shoot(walk: Walk, rel: bytes, mtime_ns: int) -> Listing:
    """List the shoot folder `rel` (relative to walk.root) whose own mtime is mtime_ns."""
    root, root_dev, racy_after, marker, root_mount = walk
    files: list[tuple] = []
    dirs: list[tuple[bytes, int]] = []
    problems: list[tuple[str, bytes, str]] = []
    add, kinds = files.append, KIND_BY_EXT
    stack = [(rel, mtime_ns)]
    while stack:
        folder, folder_mtime = stack.pop()
        dirs.append((folder, -1 if folder_mtime >= racy_after else folder_mtime))
        prefix = folder + b"/"
        try:
            with os.scandir(root + b"/" + folder) as it:
                entries = list(it)
        except OSError as exc:
            problems.append(("scan_unreadable_folder", folder, exc.strerror or str(exc)))
            continue
        for entry in entries:
            name = entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                problems.append(("scan_unreadable_file", prefix + name, exc.strerror or str(exc)))
                continue
            fmt = st.st_mode & _S_IFMT
            if fmt == _S_IFREG:
                add((prefix + name, st.st_size, st.st_mtime_ns, st.st_ino,
                     kinds.get(name.rpartition(b".")[2].lower(), "other")
                     if b"." in name else "other"))
            elif fmt == _S_IFDIR:
                child = prefix + name
                if root_dev is not None and st.st_dev != root_dev:
                    problems.append(("scan_other_filesystem", child, ""))
                    continue
                if root_mount is not None:
                    try:
                        other_mount = mount_id(root + b"/" + child) != root_mount
                    except OSError as exc:
                        problems.append(("scan_unreadable_folder", child, exc.strerror or ""))
                        continue
                    if other_mount:
                        problems.append(("scan_other_mount", child, ""))
                        continue
                if os.path.lexists(root + b"/" + child + b"/" + marker):
                    problems.append(("scan_nested_volume", child, ""))
                else:
                    stack.append((child, st.st_mtime_ns))
            elif fmt == _S_IFLNK:
                add((prefix + name, st.st_size, st.st_mtime_ns, st.st_ino, "symlink"))
    incomplete = any(p[0].startswith("scan_unreadable") for p in problems)
    try:
        packed = pack_files(files)
    except OverflowError:  # an mtime past int64 nanoseconds (before 1677 or after 2262)
        files = [_clamped(f, problems) for f in files]
        packed = pack_files(files)
    newest = max((f[2] for f in files), default=min(max(mtime_ns, _INT64[0]), _INT64[1]))
    return Listing(packed, dirs, sum(f[1] for f in files), newest, incomplete, problems)


_INT64 = (-(2**63), 2**63 - 1)


def _clamped(file: tuple, problems: list) -> tuple:
    """Record an mtime the index cannot hold as the nearest it can: a file "modified in 2262"
    is kept, and apply, finding the real mtime differs, never moves it."""
    rel, size, mtime_ns, inode, kind = file
    low, high = _INT64
    if low <= mtime_ns <= high:
        return file
    problems.append(("scan_mtime_out_of_range", rel, ""))
    return (rel, size, min(max(mtime_ns, low), high), inode, kind)


def listings(walk: Walk, jobs: list[tuple[bytes, int]], workers: int = 2,
             command: list[str] | None = None) -> Iterator[Listing]:
    """Yield list_shoot(walk, rel, mtime_ns) for every (rel, mtime_ns) of jobs, in order; in up
    to `workers` worker processes when there are at least WORKERS_FROM jobs."""
    done = 0
    if workers > 1 and len(jobs) >= WORKERS_FROM:
        pool = _Pool(walk, command or workers_command("archivekeeper.index.walker"))
        try:
            for listing in pool.run(jobs, workers):
                done += 1
                yield listing
        except Exception as exc:  # whatever went wrong there, this process lists the rest
            _warn("scan_worker_failed", error=str(exc) or type(exc).__name__,
                  listed_in_workers=done)
        finally:
            pool.close()
    for rel, mtime_ns in jobs[done:]:
        yield list_shoot(walk, rel, mtime_ns)


class _Pool:
    """Chunk i goes to worker i % n. A feeder thread per worker writes that worker's requests
    while this thread reads answers in chunk order, so neither side ever waits on a pipe the
    other is not draining, whatever the size of a request or an answer."""

    def __init__(self, walk: Walk, command: list[str]):
        self.walk = tuple(walk)
        self.command = command
        self.procs: list[subprocess.Popen] = []
        self.feeders: list[threading.Thread] = []

    def run(self, jobs: list[tuple[bytes, int]], workers: int) -> Iterator[Listing]:
        chunks = [jobs[i:i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
        n = min(workers, len(chunks))
        for _ in range(n):
            self.procs.append(subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, close_fds=True))
        for k, proc in enumerate(self.procs):
            feeder = threading.Thread(target=self._feed, args=(proc, chunks[k::n]), daemon=True)
            feeder.start()
            self.feeders.append(feeder)
        for i, chunk in enumerate(chunks):
            answer = marshal.load(self.procs[i % n].stdout)
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ValueError(f"a worker answered {len(chunk)} shoots with something else")
            found = [Listing._make(item) for item in answer]
            for (rel, _), listing in zip(chunk, found, strict=True):
                if listing.dirs[0][0] != rel:  # a listing starts with its own shoot folder
                    raise ValueError("a worker answered for another shoot")
            yield from found

    def _feed(self, proc: subprocess.Popen, chunks: list) -> None:
        try:
            for chunk in chunks:
                marshal.dump((self.walk, chunk), proc.stdin)
                proc.stdin.flush()
            proc.stdin.close()  # the worker ends after its last answer
        except (OSError, ValueError):
            pass  # the worker died or was stopped: reading its answers says so

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()  # a feeder blocked on its pipe now fails and ends
        for feeder in self.feeders:
            feeder.join(timeout=10)
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
            proc.wait()


def _warn(event: str, **fields: object) -> None:
    from archivekeeper.logs import get_logger  # not at the top: workers never log

    get_logger().warning(event, **fields)


def _serve() -> None:
    """Answer marshalled (walk, [(rel, mtime_ns)]) requests on stdin with marshalled lists of
    listings on stdout until stdin closes (the scanner finished or died)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scanner's to handle
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        while True:
            try:
                walk, jobs = marshal.load(stdin)
            except EOFError:
                return
            walk = Walk(*walk)
            marshal.dump([tuple(list_shoot(walk, rel, mtime_ns)) for rel, mtime_ns in jobs],
                         stdout)
            stdout.flush()
    except OSError:
        os._exit(0)  # the scanner went away: nothing to say, and no one to say it to


if __name__ == "__main__":
    _serve()
