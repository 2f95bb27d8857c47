"""Lists one shoot's folder tree for the scanner: its files packed as the index stores them
(filelist.py), its folders' mtimes and what could not be read. Never follows a symlink (a link
is listed as a file of kind "symlink"), never crosses onto another filesystem or into a folder
holding a volume marker.

Listing is CPU-bound Python (a stat per file). When a scan has many shoots to list, as a first
index does, `listings` hands them to two worker processes (`python -m archivekeeper.walker`,
standard library only) so both cores list while the scanner writes; answers come back in the
order asked. A worker that fails is replaced by listing the rest in this process.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

from archivekeeper.filelist import KIND_BY_EXT, pack_files

_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000
WORKERS_FROM = 64  # shoots to list before workers pay for their start-up (~40 ms)
_CHUNK = 16  # shoots per request
_WINDOW = 3  # requests in flight per worker


class Listing(NamedTuple):
    files: tuple  # filelist.pack_files columns: (count, relpaths, sizes, mtimes, inodes, kinds)
    dirs: list  # [(relpath, mtime_ns or -1 if racy)]
    nbytes: int
    newest_ns: int  # newest file mtime, or the folder's own if it holds no file
    incomplete: bool
    problems: list  # [(event, relpath, strerror)] for the scanner to log


class Walk(NamedTuple):
    """Where and how to list: the volume root, its st_dev (None: not checked), the instant from
    which a folder mtime is too recent to trust, and the marker path relative to a folder."""
    root: bytes
    root_dev: int | None
    racy_after_ns: int
    marker: bytes


def list_shoot(walk: Walk, rel: bytes, mtime_ns: int) -> Listing:
    """List the shoot folder `rel` (relative to walk.root) whose own mtime is mtime_ns."""
    root, root_dev, racy_after, marker = walk
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
                elif os.path.lexists(root + b"/" + child + b"/" + marker):
                    problems.append(("scan_nested_volume", child, ""))
                else:
                    stack.append((child, st.st_mtime_ns))
            elif fmt == _S_IFLNK:
                add((prefix + name, st.st_size, st.st_mtime_ns, st.st_ino, "symlink"))
    incomplete = any(p[0].startswith("scan_unreadable") for p in problems)
    return Listing(pack_files(files), dirs, sum(f[1] for f in files),
                   max((f[2] for f in files), default=mtime_ns), incomplete, problems)


def listings(walk: Walk, jobs: list[tuple[bytes, int]], workers: int = 2,
             command: list[str] | None = None) -> Iterator[Listing]:
    """Yield list_shoot(walk, rel, mtime_ns) for every (rel, mtime_ns) of jobs, in order; in up
    to `workers` worker processes when there are at least WORKERS_FROM jobs."""
    done = 0
    if workers > 1 and len(jobs) >= WORKERS_FROM:
        pool = _Pool(walk, workers, command)
        try:
            for listing in pool.run(jobs):
                done += 1
                yield listing
        except (OSError, EOFError, ValueError, TypeError) as exc:
            _warn("scan_worker_failed", error=str(exc) or type(exc).__name__,
                  listed_in_workers=done)
        finally:
            pool.close()
    for rel, mtime_ns in jobs[done:]:
        yield list_shoot(walk, rel, mtime_ns)


class _Pool:
    def __init__(self, walk: Walk, workers: int, command: list[str] | None):
        self.walk = walk
        self.procs: list[subprocess.Popen] = []
        # -P: the current folder (perhaps a customer's, holding anything) is not on sys.path;
        # this copy of archivekeeper is, first.
        env = dict(os.environ)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        for _ in range(workers):
            self.procs.append(subprocess.Popen(
                command or [sys.executable, "-P", "-m", "archivekeeper.walker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True))

    def run(self, jobs: list[tuple[bytes, int]]) -> Iterator[Listing]:
        """Requests are a few hundred bytes and at most _WINDOW are unanswered per worker, so
        writing one never blocks on a worker busy writing its answer; answers are read in the
        order asked, each worker answering its own requests in order."""
        chunks = deque(jobs[i:i + _CHUNK] for i in range(0, len(jobs), _CHUNK))
        asked: deque[subprocess.Popen] = deque()
        turn = 0

        def ask() -> None:
            nonlocal turn
            proc = self.procs[turn % len(self.procs)]
            turn += 1
            marshal.dump((tuple(self.walk), chunks.popleft()), proc.stdin)
            proc.stdin.flush()
            asked.append(proc)

        while chunks and len(asked) < _WINDOW * len(self.procs):
            ask()
        while asked:
            answer = marshal.load(asked.popleft().stdout)
            if chunks:
                ask()
            for item in answer:
                yield Listing._make(item)

    def close(self) -> None:
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            proc.kill()
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
    while True:
        try:
            walk, jobs = marshal.load(stdin)
        except EOFError:
            return
        walk = Walk(*walk)
        marshal.dump([tuple(list_shoot(walk, rel, mtime_ns)) for rel, mtime_ns in jobs], stdout)
        stdout.flush()


if __name__ == "__main__":
    _serve()
