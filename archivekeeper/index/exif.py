"""EXIF shoot dates, read with exifread inside isolated worker processes.

This is the only module that uses exifread. exifread parses hostile bytes in pure Python and has
known inputs that make it loop forever (a HEIC box whose 64-bit size is 0 is one), so it never
runs in the caller's process: `ExifReader` feeds paths to a `python -m archivekeeper.index.exif` worker
over a pipe and kills the worker (SIGKILL) when one file takes longer than `timeout`. A hostile
file therefore costs at most `timeout` seconds, yields None and is logged; the scan goes on.

Which tag: the shoot date the camera recorded is EXIF DateTimeOriginal (0x9003, normally in the
Exif IFD, accepted in IFD0 too). When a file has none, DateTimeDigitized (0x9004) is used: cameras
write it as the same capture moment, scanners as the scan time. IFD0 DateTime is never used: it is
the file's last-change time, which every editor rewrites. `ExifDate.tag` says which one it was.

Worker protocol (bytes on the worker's stdin and stdout): the parent writes each path followed by
NUL (paths cannot contain NUL); the worker first writes "ready\\n", then one line per path in the
order received: "-" for no date, or the exifread tag name, a TAB and the ISO date and time.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO, NamedTuple

import exifread

from archivekeeper.index import workers

DEFAULT_SIZE_CAP = 64 * 1024 * 1024

# Preference order; stop_tag ends the IFD walk at DateTimeOriginal, so DateTimeDigitized (which
# follows it in a sorted IFD) is only parsed when there is no DateTimeOriginal.
_DATE_TAGS = ("EXIF DateTimeOriginal", "Image DateTimeOriginal", "EXIF DateTimeDigitized")
_STOP_TAG = "DateTimeOriginal"

# Paths kept queued per worker: enough that a worker never waits for the parent, few enough that
# a killed worker's queue is cheap to hand to its successor.
_MAX_QUEUED = 512
_REFILL_BELOW = 256
# Workers answer with one line per file. While their queues are full the parent lets answers pile
# up this long (seconds) before reading: one wake-up per dozens of files, not one per file, which
# saves about a fifth of the CPU on small JPEGs (the parent competes with the workers for cores).
_GATHER = 0.002
# Python start-up plus imports; generous because a loaded machine can be slow to start a process.
_STARTUP_TIMEOUT = 30.0
_READY = b"ready"
_NO_DATE = b"-"

_DATE_RE = re.compile(
    r"(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?"
    r"(?:\.\d*)?(?:Z|[+-]\d{2}:?\d{2})?"
)


class ExifDate(NamedTuple):
    """A date read from a file's EXIF, and the exifread tag it came from."""

    taken: datetime  # naive: EXIF dates carry no zone, they are the camera's wall clock
    tag: str  # "EXIF DateTimeOriginal", "Image DateTimeOriginal" or "EXIF DateTimeDigitized"


def parse_exif_datetime(text: str) -> datetime | None:
    """Given an EXIF date string ("YYYY:MM:DD HH:MM:SS"), return it as a naive datetime.

    Tolerates the junk cameras and tools write: surrounding NULs and spaces, "-", "/" or "." as
    the date separator, a "T" before the time, missing seconds or time, fractional seconds and
    a zone suffix (ignored). Return None for blanks, zeros ("0000:00:00 00:00:00") and anything
    else that is not a real calendar date and time. Never raises.
    """
    if not isinstance(text, str):
        return None
    match = _DATE_RE.fullmatch(text.strip("\x00 \t\r\n"))
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups("0")))  # noqa: DTZ001
    except ValueError:
        return None


class _CappedReader:
    """A read-only binary file view that ends at `cap` bytes, whatever the file's real size.

    exifread follows offsets and counts taken from the file, so without this a crafted tag
    could make it read gigabytes from a huge file.
    """

    def __init__(self, file: BinaryIO, cap: int) -> None:
        self._file = file
        self._cap = cap

    def read(self, size: int | None = -1) -> bytes:
        left = max(self._cap - self._file.tell(), 0)
        if size is None or size < 0 or size > left:
            size = left
        return self._file.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _read_exif_date(path: bytes | str, size_cap: int) -> ExifDate | None:
    """Given a path, return its EXIF shoot date and tag, or None.

    None when the path is a symlink (never followed), not a regular file, unreadable, has no
    usable date, or exifread fails on it in any way. Reads at most `size_cap` bytes of it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        with open(fd, "rb", buffering=65536, closefd=False) as file:
            # A file no larger than the cap cannot give more than the cap: spare the wrapper,
            # which costs a fifth of the parse time on small JPEGs.
            tags = exifread.process_file(
                file if info.st_size <= size_cap else _CappedReader(file, size_cap),
                stop_tag=_STOP_TAG,
                details=False,
                extract_thumbnail=False,
                builtin_types=True,
            )
    except Exception:  # exifread raises anything from ValueError to EOFError to MemoryError
        return None
    finally:
        os.close(fd)
    for tag in _DATE_TAGS:
        if tag in tags:
            taken = parse_exif_datetime(tags[tag])
            return ExifDate(taken, tag) if taken else None
    return None


def read_date_inprocess(path: bytes | str, size_cap: int = DEFAULT_SIZE_CAP) -> datetime | None:
    """Given a path, return its EXIF shoot date (see the module docstring), or None.

    Runs exifread in this process with no timeout: meant for the worker; use `ExifReader`
    everywhere else. Never follows a symlink, refuses non-regular files, reads at most
    `size_cap` bytes and never raises.
    """
    found = _read_exif_date(path, size_cap)
    return found.taken if found else None


def _worker_command(size_cap: int) -> list[str]:
    """Given a size cap, return the argv that starts one worker."""
    return workers.command("archivekeeper.index.exif", str(size_cap))


def _log():
    """Return the project's logger (structlog, set up on first use). Imported here, not at the
    top, because the worker never logs and the import would double its start-up time."""
    from archivekeeper.logs import get_logger

    return get_logger()


def _printable(path: bytes) -> str:
    """Given a path, return it as text with undecodable bytes escaped (safe in any log)."""
    return path.decode("utf-8", "backslashreplace")


class _Worker:
    """One worker process and the paths sent to it that it has not answered yet."""

    def __init__(self, size_cap: int) -> None:
        self.proc = subprocess.Popen(
            _worker_command(size_cap),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.to_worker = self.proc.stdin.fileno()
        self.from_worker = self.proc.stdout.fileno()
        # Never block on a worker that stopped reading: a hung worker must not hang us.
        os.set_blocking(self.to_worker, False)
        self.ready = False
        self.queued: deque[bytes] = deque()  # sent or about to be sent, in order, unanswered
        self.unsent = b""
        self.partial_line = b""
        self.progress_at = time.monotonic()

    def deadline(self, timeout: float) -> float:
        return self.progress_at + (timeout if self.ready else _STARTUP_TIMEOUT)

    def send(self, paths: list[bytes], cwd: bytes) -> None:
        """Queue `paths` (the caller's spelling) and send them, made absolute against `cwd`."""
        if not self.queued:
            self.progress_at = time.monotonic()
        self.queued.extend(paths)
        self.unsent += b"".join(
            (path if path[:1] == b"/" else os.path.join(cwd, path)) + b"\0" for path in paths
        )
        self.flush()

    def flush(self) -> None:
        try:
            written = os.write(self.to_worker, self.unsent)
        except BlockingIOError:
            return
        except BrokenPipeError:
            written = len(self.unsent)  # it died; reading its stdout will say so
        self.unsent = self.unsent[written:]

    def receive(self) -> list[bytes] | None:
        """Return the complete lines the worker wrote since last time, or None at its end."""
        data = os.read(self.from_worker, 65536)
        if not data:
            return None
        *lines, self.partial_line = (self.partial_line + data).split(b"\n")
        self.progress_at = time.monotonic()
        return lines

    def stop(self) -> int:
        """Kill the worker, reap it and return its exit status."""
        self.proc.kill()
        self.proc.stdin.close()
        self.proc.stdout.close()
        return self.proc.wait()


def _decode_answer(line: bytes) -> ExifDate | None:
    if line == _NO_DATE:
        return None
    tag, _, iso = line.decode("ascii").partition("\t")
    return ExifDate(datetime.fromisoformat(iso), tag)


class ExifReader:
    """Reads EXIF shoot dates in isolated worker processes, started on the first read.

    Use as a context manager (or call close()). Not for concurrent use from several threads at
    once: calls are serialised by a lock.
    """

    def __init__(
        self, timeout: float = 5.0, size_cap: int = DEFAULT_SIZE_CAP, workers: int = 1
    ) -> None:
        """Raise ValueError unless timeout and size_cap are positive and workers is at least 1."""
        if timeout <= 0 or size_cap <= 0 or workers < 1:
            raise ValueError(
                f"ExifReader needs timeout > 0, size_cap > 0 and workers >= 1, "
                f"got {timeout}, {size_cap}, {workers}"
            )
        self._timeout = timeout
        self._size_cap = size_cap
        self._max_workers = workers
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ExifReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers. A later read starts new ones."""
        with self._lock:
            self._stop_all()

    def read_dates(self, paths: Iterable[bytes]) -> dict[bytes, datetime | None]:
        """Given file paths, return each one's EXIF shoot date, or None (see `read_tagged_dates`)."""
        return {
            path: found.taken if found else None
            for path, found in self.read_tagged_dates(paths).items()
        }

    def read_tagged_dates(self, paths: Iterable[bytes]) -> dict[bytes, ExifDate | None]:
        """Given file paths, return each one's EXIF shoot date and tag, or None.

        None for a symlink, a non-regular file, a file without a usable date, one exifread cannot
        parse (a CR3 or RAF, for example), and one that took longer than `timeout` or crashed its
        worker (logged as "exif_timeout" / "exif_worker_died"). Relative paths are taken against
        the current directory. Never raises for a bad file.
        """
        with self._lock:
            return self._read(paths)

    def _read(self, paths: Iterable[bytes]) -> dict[bytes, ExifDate | None]:
        ordered = list(dict.fromkeys(paths))
        results: dict[bytes, ExifDate | None] = {}
        todo: deque[bytes] = deque()
        for path in ordered:
            if b"\0" in path or not path:
                results[path] = None
            else:
                todo.append(path)
        cwd = os.getcwdb()
        while todo or any(worker.queued for worker in self._workers):
            self._reap_idle_dead()
            if not self._hand_out(todo, cwd) or not self._wait_and_collect(results, todo):
                self._stop_all(results)
                for path in todo:
                    results[path] = None
                break
        return {path: results[path] for path in ordered}

    def _reap_idle_dead(self) -> None:
        """Drop workers that exited while they had nothing to do (the OOM killer, an admin)."""
        for worker in [w for w in self._workers if not w.queued and w.proc.poll() is not None]:
            worker.stop()
            self._workers.remove(worker)

    def _hand_out(self, todo: deque[bytes], cwd: bytes) -> bool:
        """Start workers as the work needs them and top up their queues from `todo`. Return False
        if a worker cannot be started at all."""
        while (
            len(self._workers) < self._max_workers
            and todo
            and all(len(worker.queued) >= _REFILL_BELOW for worker in self._workers)
        ):
            try:
                self._workers.append(_Worker(self._size_cap))
            except OSError as err:
                self._unavailable(reason=str(err))
                return False
            self._top_up(self._workers[-1], todo, cwd)
        for worker in self._workers:
            if len(worker.queued) < _REFILL_BELOW and todo:
                self._top_up(worker, todo, cwd)
        return True

    def _top_up(self, worker: _Worker, todo: deque[bytes], cwd: bytes) -> None:
        count = min(_MAX_QUEUED - len(worker.queued), len(todo))
        worker.send([todo.popleft() for _ in range(count)], cwd)

    def _wait_and_collect(self, results: dict[bytes, ExifDate | None], todo: deque) -> bool:
        """Wait for answers or a deadline and record what arrived. Return False if a worker
        failed before it was ready (it cannot start)."""
        busy = [worker for worker in self._workers if worker.queued]
        if all(w.ready and not w.unsent and len(w.queued) >= _REFILL_BELOW for w in busy):
            time.sleep(_GATHER)
        poller = select.poll()
        by_fd: dict[int, _Worker] = {}
        for worker in busy:
            poller.register(worker.from_worker, select.POLLIN)
            by_fd[worker.from_worker] = worker
            if worker.unsent:
                poller.register(worker.to_worker, select.POLLOUT)
                by_fd[worker.to_worker] = worker
        wait = min(worker.deadline(self._timeout) for worker in busy) - time.monotonic()
        for fd, _ in poller.poll(max(wait, 0.0) * 1000):
            worker = by_fd[fd]
            if worker not in self._workers:  # lost while handling its other pipe
                continue
            if fd == worker.to_worker:
                worker.flush()
                continue
            lines = worker.receive()
            if lines is None:
                if not self._lose(worker, todo, results, "exif_worker_died"):
                    return False
                continue
            for line in lines:
                if not worker.ready and line == _READY:
                    worker.ready = True
                else:
                    results[worker.queued.popleft()] = _decode_answer(line)
        now = time.monotonic()
        for worker in busy:
            if worker in self._workers and worker.deadline(self._timeout) <= now:
                if not self._lose(worker, todo, results, "exif_timeout"):
                    return False
        return True

    def _lose(self, worker: _Worker, todo: deque, results: dict, event: str) -> bool:
        """Stop a worker that timed out or died, charge it to the file it was on and put its
        other paths back in front of `todo`. Return False if it never started."""
        status = worker.stop()
        self._workers.remove(worker)
        if not worker.ready:
            self._unavailable(reason=event, status=status)
            for path in worker.queued:
                results[path] = None
            return False
        culprit = worker.queued.popleft()
        results[culprit] = None
        if event == "exif_timeout":
            _log().warning(event, path=_printable(culprit), timeout=self._timeout)
        else:
            _log().warning(event, path=_printable(culprit), status=status)
        todo.extendleft(reversed(worker.queued))
        return True

    def _unavailable(self, **why: object) -> None:
        _log().error(
            "exif_worker_unavailable",
            command=" ".join(_worker_command(self._size_cap)),
            **why,
        )

    def _stop_all(self, results: dict | None = None) -> None:
        for worker in self._workers:
            worker.stop()
            if results is not None:
                for path in worker.queued:
                    results[path] = None
        self._workers.clear()


def _exit_if_orphaned(parent: int) -> None:
    """End this process if `parent` is no longer its parent (it died and we were re-parented)."""
    if os.getppid() != parent:
        os._exit(0)


def _serve(size_cap: int) -> None:
    """Answer NUL-terminated paths from stdin on stdout (see the module docstring) until stdin
    closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # An orphaned worker stuck in an exifread loop would spin forever: a once-a-second alarm,
    # handled between bytecodes even inside that loop, ends it. Cheaper than a watcher thread.
    parent = os.getppid()
    signal.signal(signal.SIGALRM, lambda _signum, _frame: _exit_if_orphaned(parent))
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    logging.getLogger("exifread").disabled = True  # its warnings would litter the parent's stderr
    os.write(1, _READY + b"\n")
    pending = b""
    while chunk := os.read(0, 65536):
        *paths, pending = (pending + chunk).split(b"\0")
        for path in paths:
            found = _read_exif_date(path, size_cap)
            if found is None:
                answer = _NO_DATE
            else:
                answer = f"{found.tag}\t{found.taken.isoformat()}".encode("ascii")
            # One write per file: when a file hangs, every earlier answer is already out, so
            # the parent knows exactly which file to blame.
            os.write(1, answer + b"\n")


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
