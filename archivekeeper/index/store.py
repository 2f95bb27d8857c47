"""The SQLite index under state_dir: volumes, shoots, files, folders, holds, uses, plan state.

Paths are stored relative to the volume root as raw bytes (names need not be UTF-8), so a drive
mounted somewhere else keeps its shoots. `secure_delete` is on so erased names do not linger in
free pages; WAL lets the daemon and the CLI read while one writes.

Fault testing: ``ARCHIVEKEEPER_STORE_FAULT=ENOSPC@N`` makes the Nth COMMIT fail as SQLite fails
on that errno (ENOSPC: "database or disk is full"; ``@N+``: that COMMIT and every later one; see
archivekeeper/faults.py). Read once, at import.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from archivekeeper import faults
from archivekeeper.index.filelist import DamagedList, pack_files, unpack_files
from archivekeeper.logs import exact_path, get_logger, show_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  volume_id TEXT NOT NULL,
  path TEXT NOT NULL,
  last_seen TEXT,
  last_full_scan TEXT
);
CREATE TABLE IF NOT EXISTS shoots (
  id INTEGER PRIMARY KEY,
  volume TEXT NOT NULL,
  path BLOB NOT NULL,
  customer TEXT NOT NULL,
  customer_key TEXT NOT NULL,
  date TEXT NOT NULL,
  date_source TEXT NOT NULL,
  type TEXT,
  files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  newest_mtime_ns INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'online',
  incomplete INTEGER NOT NULL DEFAULT 0,
  missing_full_scans INTEGER NOT NULL DEFAULT 0,
  seen_gen INTEGER NOT NULL DEFAULT 0,
  first_seen TEXT NOT NULL,
  UNIQUE (volume, path)
);
CREATE INDEX IF NOT EXISTS shoots_customer ON shoots (customer_key);
-- One row per shoot holding its files column by column (see filelist.py): every lookup of a
-- file goes through its shoot anyway.
CREATE TABLE IF NOT EXISTS shoot_files (
  shoot_id INTEGER PRIMARY KEY REFERENCES shoots (id) ON DELETE CASCADE,
  count INTEGER NOT NULL,
  relpaths BLOB NOT NULL,
  sizes BLOB NOT NULL,
  mtimes BLOB NOT NULL,
  inodes BLOB NOT NULL,
  kinds BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dirs (
  volume TEXT NOT NULL,
  relpath BLOB NOT NULL,
  shoot_id INTEGER NOT NULL REFERENCES shoots (id) ON DELETE CASCADE,
  mtime_ns INTEGER NOT NULL,
  PRIMARY KEY (volume, relpath)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dirs_shoot ON dirs (shoot_id);
CREATE TABLE IF NOT EXISTS unrecognised (
  volume TEXT NOT NULL,
  relpath BLOB NOT NULL,
  reason TEXT NOT NULL,
  seen_gen INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (volume, relpath)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uses (
  id INTEGER PRIMARY KEY,
  customer_key TEXT NOT NULL,
  shoot_date TEXT NOT NULL,
  shoot_type TEXT,
  at TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
  id INTEGER PRIMARY KEY,
  scope TEXT NOT NULL,
  customer TEXT,
  customer_key TEXT,
  volume TEXT,
  path BLOB,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  until TEXT,
  created_at TEXT NOT NULL,
  released_at TEXT
);
-- Holds whose end was recorded in the audit log (hold_expired), so each is recorded once: by a
-- hash of the hold (ops.expiry_key), as config holds have no lasting id.
CREATE TABLE IF NOT EXISTS expired_holds (key TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS announcements (
  key TEXT PRIMARY KEY,
  shoot_id INTEGER,
  announced_at TEXT NOT NULL,
  approved_at TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  changed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS trash_groups (
  id INTEGER PRIMARY KEY,
  batch TEXT NOT NULL,
  volume TEXT NOT NULL,
  shoot_path BLOB NOT NULL,
  customer_key TEXT NOT NULL,
  item_key TEXT NOT NULL,
  rule TEXT NOT NULL,
  trashed_at TEXT NOT NULL,
  purge_after TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'trashed'
);
-- state: moving -> trashed -> restoring -> restored | purging -> purged; moving/restoring/
-- purging are intents written before the file operation, resolved by recovery after a crash.
CREATE TABLE IF NOT EXISTS trash_files (
  group_id INTEGER NOT NULL REFERENCES trash_groups (id),
  relpath BLOB NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (group_id, relpath)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trash_files_state ON trash_files (state);
-- Art. 17 erasure records, by customer token (never the name once done): a shoot of that
-- customer dated on or before `on_date` that turns up later is due at once. customer_key is
-- kept only while the erasure runs (a crash is finished from it), then cleared.
CREATE TABLE IF NOT EXISTS erasures (
  id INTEGER PRIMARY KEY,
  token TEXT NOT NULL,
  on_date TEXT NOT NULL,
  at TEXT NOT NULL,
  reason TEXT NOT NULL,
  customer_key TEXT,
  state TEXT NOT NULL DEFAULT 'running'
);
-- An erasure still to be carried out on a volume that was offline: its shoots are found by
-- token when the volume is next online; its trash by path token (no name is kept).
CREATE TABLE IF NOT EXISTS pending_erasures (
  erasure_id INTEGER NOT NULL REFERENCES erasures (id),
  volume TEXT NOT NULL,
  PRIMARY KEY (erasure_id, volume)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_trash (
  erasure_id INTEGER NOT NULL REFERENCES erasures (id),
  volume TEXT NOT NULL,
  batch TEXT NOT NULL,
  path_token TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  PRIMARY KEY (volume, batch, path_token)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  command TEXT NOT NULL,
  reasons TEXT NOT NULL
);
"""

_FILE_COLUMNS = "count, relpaths, sizes, mtimes, inodes, kinds"
_REASON_TABLES = ("holds", "uses", "erasures")
_FAULT = faults.from_env("ARCHIVEKEEPER_STORE_FAULT")
# What SQLite says when a write to the index fails with the errno (the fault hook's messages).
_SQLITE_MESSAGES = {errno.ENOSPC: "database or disk is full", errno.EIO: "disk I/O error",
                    errno.EROFS: "attempt to write a readonly database"}
_DISK_TROUBLE = ("disk is full", "disk I/O error", "readonly database")


def _utc_text(at: datetime) -> str:
    """An instant as fixed-width UTC text, so that text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def inode_to_sql(inode: int) -> int:
    """SQLite integers are signed 64-bit; an inode may use all 64 bits (FUSE, some NAS)."""
    return inode - 2**64 if inode >= 2**63 else inode


def inode_from_sql(value: int) -> int:
    return value + 2**64 if value < 0 else value


class StoreError(Exception):
    pass


def private_dir(path: Path) -> None:
    """Create state_dir with mode 0700, or make an existing one 0700: the index, the audit log
    and the reports hold customer names. Every creator of state_dir goes through here, so the
    first command, whichever it is, sets the mode; umask cannot loosen it. Raise StoreError for
    a shared (sticky) directory, which chmod would take from its other users."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise StoreError(f"{path}: cannot create state_dir: {exc.strerror}") from exc
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot use as state_dir: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path}: state_dir is not a directory")
    if st.st_mode & stat.S_ISVTX:
        raise StoreError(f"{path}: state_dir is a shared directory (sticky bit); give "
                         "archivekeeper a directory of its own")
    mode = stat.S_IMODE(st.st_mode)
    if mode == 0o700:
        return
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        raise StoreError(f"{path}: state_dir has mode {mode:04o} and cannot be made 0700: "
                         f"{exc.strerror}") from exc
    if not created and mode & 0o077:
        get_logger().warning("state_dir_made_private", path=str(path), mode=f"{mode:04o}")


def _private_file(path: Path, create: bool) -> None:
    """Create `path` empty with mode 0600 (with `create`; else leave an absent one absent), and
    take group and other bits off an existing one, e.g. an index an older version left 0644.
    SQLite gives the -wal, -shm and -journal files it creates the mode of the index."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        return
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
            get_logger().warning("state_file_made_private", path=str(path), mode=f"{mode:04o}")
    finally:
        os.close(fd)


class Store:
    """Given state_dir, open (creating) the index. One connection per process."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "index.sqlite"
        private_dir(state_dir)
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                _private_file(Path(f"{self.path}{suffix}"), create=not suffix)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            # nothing recorded yet: made just now (an index in use always has meta rows)
            self.fresh = self.db.execute("SELECT 1 FROM meta LIMIT 1").fetchone() is None
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the index: {exc}") from exc
        self.db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        self._migrate_clock_mark()
        self._migrate_file_rows()

    def _migrate_clock_mark(self) -> None:
        """An index from before the clock mark was kept: its runs stand in for it, once. Only
        at that upgrade: on a new index a run recorded before anything was indexed (nothing
        to judge its clock by) must never become the mark."""
        if self.get_meta("clock_guard") is not None:
            return
        with self.transaction():
            if self.get_meta("clock_guard") is not None:
                return  # another process migrated it meanwhile
            instants = [datetime.fromisoformat(v) for row in self.db.execute(
                "SELECT started_at, finished_at FROM runs") for v in row if v]
            if instants and self.get_meta("clock_mark") is None:
                self.set_clock_mark(max(instants))
            self.set_meta("clock_guard", "1")

    def _migrate_file_rows(self) -> None:
        """An index from before shoot_files kept a row per file: pack those rows into
        shoot_files, so plans and recovery see the same files as before the upgrade."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone():
            return
        with self.transaction():
            if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone():
                return  # another process migrated it meanwhile
            rows = self.db.execute("SELECT shoot_id, relpath, size, mtime_ns, inode, kind "
                                   "FROM files ORDER BY shoot_id")
            for shoot_id, files in itertools.groupby(rows, key=lambda r: r[0]):
                self.db.execute(
                    f"INSERT OR REPLACE INTO shoot_files (shoot_id, {_FILE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (shoot_id, *pack_files([(r[1], r[2], r[3], inode_from_sql(r[4]), r[5])
                                            for r in files])))
            self.db.execute("DROP TABLE files")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one IMMEDIATE transaction: all of it is stored, or none. Raise
        StoreError, naming the index, if it cannot be written (a full or failing disk)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            if _FAULT is not None and (code := _FAULT.hit()) is not None:
                raise sqlite3.OperationalError(_SQLITE_MESSAGES.get(code, "disk I/O error"))
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the original error is the one to report
            # a disk that is full, read-only or failing: not a lock to wait for, nor our bug
            if isinstance(exc, sqlite3.OperationalError) and any(
                    words in str(exc) for words in _DISK_TROUBLE):
                raise StoreError(f"{self.path}: cannot write the index ({exc}); this step was "
                                 "not stored and nothing more was done: check the disk under "
                                 "state_dir, then run the command again") from exc
            raise

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- audit chain memory (audit.ChainMemory) --------------------------------------------------
    def audit_head(self) -> tuple[int, str] | None:
        """The last (seq, record hash) of the audit log this index knows of, or None."""
        value = self.get_meta("audit_head")
        if value is None:
            return None
        seq, _, record_hash = value.partition(" ")
        if not seq.isdigit() or len(record_hash) != 64:
            raise StoreError(f"{self.path}: the audit chain it remembers is damaged ({value!r})")
        return int(seq), record_hash

    def remember_audit_head(self, seq: int, record_hash: str) -> None:
        """Remember the audit log's last record, in one statement so that two processes that
        appended in turn but remember out of turn keep the later seq."""
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('audit_head', ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value "
            "WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
            (f"{seq} {record_hash}",),
        )

    def prepare_for_bulk_writes(self) -> None:
        """A scan writes many pages: keep them in memory (64 MB) rather than re-reading them;
        other commands keep SQLite's small default cache."""
        self.db.execute("PRAGMA cache_size=-65536")

    def next_gen(self) -> int:
        gen = int(self.get_meta("scan_gen") or 0) + 1
        self.set_meta("scan_gen", str(gen))
        return gen

    # -- volumes ------------------------------------------------------------------------------
    def volume_row(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()

    def volume_ids(self) -> dict[str, str]:
        """Each registered volume's marker id, by name."""
        return {r[0]: r[1] for r in self.db.execute("SELECT name, volume_id FROM volumes")}

    def has_half_done_steps(self) -> bool:
        """Whether a crash left a trash step (move, restore, purge) half-done."""
        return self.db.execute(
            "SELECT 1 FROM trash_files WHERE state IN ('moving', 'restoring', 'purging') "
            "LIMIT 1").fetchone() is not None

    def register_volume(self, name: str, volume_id: str, path: str) -> None:
        self.db.execute(
            "INSERT INTO volumes (name, volume_id, path) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, volume_id, path),
        )

    def mark_volume_seen(self, name: str, path: str, at: datetime, full: bool) -> None:
        self.db.execute(
            "UPDATE volumes SET path = ?, last_seen = ?"
            + (", last_full_scan = ?" if full else "")
            + " WHERE name = ?",
            (path, at.isoformat(), *([at.isoformat()] if full else []), name),
        )

    def shoots_per_volume(self) -> dict[str, tuple[int, int]]:
        """Each volume's (shoots, bytes) in the index."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT volume, COUNT(*), COALESCE(SUM(bytes), 0) FROM shoots GROUP BY volume")}

    def volume_totals(self) -> dict[str, tuple[int, int]]:
        rows = self.db.execute(
            "SELECT volume, COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0) FROM shoots "
            "GROUP BY volume"
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    # -- clock guard --------------------------------------------------------------------------
    def clock_mark(self) -> datetime | None:
        """The latest instant a command recorded on a trusted clock; None on a fresh index."""
        value = self.get_meta("clock_mark")
        return datetime.fromisoformat(value) if value is not None else None

    def redate_first_seen(self, old: str, new: str, plausible_ns: int) -> None:
        """Shoots first seen at `old` were first seen at `new`; so were the dates of those dated
        by it (mtimes before plausible_ns: their date is the day they were first seen)."""
        self.db.execute(
            "UPDATE shoots SET date = CASE WHEN date_source = 'mtime' AND newest_mtime_ns < ? "
            "THEN substr(?, 1, 10) ELSE date END, first_seen = ? WHERE first_seen = ?",
            (plausible_ns, new, new, old))

    def untrusted_first_seen(self) -> list[str]:
        """The first-seen instants scans recorded on a distrusted clock, not yet settled."""
        return json.loads(self.get_meta("first_seen_untrusted") or "[]")

    def set_untrusted_first_seen(self, instants: list[str]) -> None:
        self.set_meta("first_seen_untrusted", json.dumps(sorted(set(instants))))

    def shoot_in_trash(self, volume: str, shoot_path: bytes) -> bool:
        """Is any of this shoot's files in trash (not yet purged or restored)?"""
        return self.db.execute(
            "SELECT 1 FROM trash_groups WHERE volume = ? AND shoot_path = ? AND state = "
            "'trashed' LIMIT 1", (volume, shoot_path)).fetchone() is not None

    def announce(self, items: Iterable[tuple[str, int]], at: datetime) -> None:
        """Announce (item key, shoot id) at `at`; an announcement already stored for a key is
        replaced, its approval with it (the planner only asks for absent or future ones)."""
        self.db.executemany(
            "INSERT INTO announcements (key, shoot_id, announced_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET announced_at = excluded.announced_at, "
            "approved_at = NULL", ((key, shoot_id, at.isoformat()) for key, shoot_id in items))

    def index_lost(self) -> str | None:
        """Set when this index was made although the audit log already held records: the
        index before it (with the holds `hold add` kept only there) was lost. Until `clock
        accept`, the clock guard distrusts the clock."""
        return self.get_meta("index_lost")

    def note_index_lost(self, since: str) -> None:
        self.set_meta("index_lost", since)

    def clock_boot(self) -> tuple[str, float] | None:
        """The boot id and boot-time clock read with the mark, if known (clock.boot_of)."""
        value = self.get_meta("clock_boot")
        if value is None:
            return None
        boot, seconds = json.loads(value)
        return boot, seconds

    def _set_clock_boot(self, boot: tuple[str, float] | None) -> None:
        if boot is None:
            self.db.execute("DELETE FROM meta WHERE key = 'clock_boot'")
        else:
            self.set_meta("clock_boot", json.dumps(list(boot)))

    def set_clock_mark(self, at: datetime, boot: tuple[str, float] | None = None) -> None:
        """`clock accept`: the mark becomes `at`, and a lost index's warning is answered."""
        self.set_meta("clock_mark", _utc_text(at))
        self._set_clock_boot(boot)
        self.db.execute("DELETE FROM meta WHERE key = 'index_lost'")

    def raise_clock_mark(self, at: datetime, boot: tuple[str, float] | None = None) -> None:
        """Move the mark up to `at`, never down: in one statement, so two processes noting
        their times in either order leave the later one, and the boot sample read with it."""
        raised = self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('clock_mark', ?) ON CONFLICT (key) DO "
            "UPDATE SET value = excluded.value WHERE excluded.value > meta.value",
            (_utc_text(at),)).rowcount
        if raised:
            self._set_clock_boot(boot)

    def note_newest_mtime(self, volume: str, mtime_ns: int) -> None:
        """Remember the newest plausible mtime a scan saw on a volume (see newest_mtime)."""
        key = f"newest_mtime_ns:{volume}"
        if mtime_ns > int(self.get_meta(key) or 0):
            self.set_meta(key, str(mtime_ns))

    def newest_mtime(self, floor_ns: int) -> tuple[int, str] | None:
        """The newest file or folder mtime at or after floor_ns that scans saw on the volumes,
        and where: (mtime_ns, "volume:path" or "volume"), or None if none was seen."""
        found = []
        row = self.db.execute(
            "SELECT m.mtime_ns, s.volume, s.path FROM (SELECT id AS shoot_id, newest_mtime_ns "
            "AS mtime_ns FROM shoots WHERE state = 'online' UNION ALL SELECT d.shoot_id, "
            "d.mtime_ns FROM dirs d JOIN shoots t ON t.id = d.shoot_id WHERE t.state = "
            "'online') m JOIN shoots s ON s.id = m.shoot_id WHERE m.mtime_ns >= ? "
            "ORDER BY m.mtime_ns DESC LIMIT 1", (floor_ns,)).fetchone()
        if row is not None:
            found.append((row[0], f"{row[1]}:{show_path(row[2])}"))
        for key, value in self.db.execute(
                "SELECT key, value FROM meta WHERE key LIKE 'newest_mtime_ns:%'"):
            if int(value) >= floor_ns:
                found.append((int(value), f"a folder on volume {key.split(':', 1)[1]}"))
        return max(found, default=None)

    def set_volume_state(self, name: str, offline: bool) -> None:
        """Shoots of an offline volume are offline; back online they are online again (a
        missing shoot stays missing until a scan sees it)."""
        if offline:
            self.db.execute(
                "UPDATE shoots SET state = 'offline' WHERE volume = ? AND state = 'online'",
                (name,),
            )
        else:
            self.db.execute(
                "UPDATE shoots SET state = 'online' WHERE volume = ? AND state = 'offline'",
                (name,),
            )

    # -- shoots -------------------------------------------------------------------------------
    def shoot_by_path(self, volume: str, relpath: bytes) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM shoots WHERE volume = ? AND path = ?", (volume, relpath)
        ).fetchone()

    def shoot(self, shoot_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM shoots WHERE id = ?", (shoot_id,)).fetchone()

    def shoot_dirs(self, volume: str) -> dict[int, list[tuple[bytes, int]]]:
        """Return shoot id -> [(folder relpath, mtime_ns)] for the quick-scan skip."""
        out: dict[int, list[tuple[bytes, int]]] = {}
        for shoot_id, relpath, mtime_ns in self.db.execute(
            "SELECT shoot_id, relpath, mtime_ns FROM dirs WHERE volume = ?", (volume,)
        ):
            out.setdefault(shoot_id, []).append((relpath, mtime_ns))
        return out

    def known_shoots(self, volume: str) -> dict[bytes, tuple]:
        """Return path -> (id, customer, type, files, bytes) for the volume's shoots."""
        return {r[0]: tuple(r[1:]) for r in self.db.execute(
            "SELECT path, id, customer, type, files, bytes FROM shoots WHERE volume = ?",
            (volume,))}

    def upsert_shoot(self, volume: str, relpath: bytes, fields: dict, gen: int, at: str,
                     shoot_id: int | None) -> int:
        """Insert the shoot (shoot_id None: not indexed yet) or update it; return its id."""
        cols = (
            "customer", "customer_key", "date", "date_source", "type", "files", "bytes",
            "newest_mtime_ns", "incomplete",
        )
        values = [fields[c] for c in cols]
        if shoot_id is None:
            cur = self.db.execute(
                f"INSERT INTO shoots (volume, path, {', '.join(cols)}, state, seen_gen, "
                f"first_seen) VALUES (?, ?, {', '.join('?' * len(cols))}, 'online', ?, ?)",
                (volume, relpath, *values, gen, at),
            )
            return cur.lastrowid
        self.db.execute(
            f"UPDATE shoots SET {', '.join(c + ' = ?' for c in cols)}, state = 'online', "
            "missing_full_scans = 0, seen_gen = ? WHERE id = ?",
            (*values, gen, shoot_id),
        )
        return shoot_id

    def replace_files(self, shoot_id: int, volume: str, packed: tuple,
                      dirs: Iterable[tuple[bytes, int]], new: bool = False) -> None:
        """Store a shoot's files (filelist.pack_files columns) and folder mtimes."""
        self.db.execute(f"INSERT OR REPLACE INTO shoot_files (shoot_id, {_FILE_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (shoot_id, *packed))
        if not new:
            self.db.execute("DELETE FROM dirs WHERE shoot_id = ?", (shoot_id,))
        self.db.executemany(
            "INSERT OR REPLACE INTO dirs (volume, relpath, shoot_id, mtime_ns) VALUES (?, ?, ?, ?)",
            ((volume, rel, shoot_id, mtime) for rel, mtime in dirs),
        )

    def mark_seen(self, shoot_ids: list[int], gen: int) -> None:
        """Shoots a quick scan found unchanged are seen in scan `gen` (and online)."""
        self.db.executemany(
            "UPDATE shoots SET seen_gen = ?, state = 'online', missing_full_scans = 0 "
            "WHERE id = ?",
            ((gen, shoot_id) for shoot_id in shoot_ids),
        )

    def retire_unseen(self, volume: str, gen: int, full: bool, protected: list[bytes],
                      scopes: list[bytes] | None = None) -> tuple[int, int]:
        """Shoots of `volume` not seen in scan `gen` become missing; a full scan counts one more
        confirmation, and a shoot missing through two later full scans is dropped. Shoots under
        a `protected` prefix (an unreadable container) are left as they were, and so are those
        under none of `scopes` (the folders a partial scan looked at; None: all). Return (newly
        missing, dropped)."""
        newly = dropped = 0
        rows = self.db.execute(
            "SELECT id, path, state, missing_full_scans FROM shoots "
            "WHERE volume = ? AND seen_gen != ?",
            (volume, gen),
        ).fetchall()
        for row in rows:
            path = row["path"]
            if _under(path, protected) or (scopes is not None and not _under(path, scopes)):
                continue
            if row["state"] != "missing":
                newly += 1
                self.db.execute(
                    "UPDATE shoots SET state = 'missing', missing_full_scans = 0 WHERE id = ?",
                    (row["id"],),
                )
            elif full:
                confirmations = row["missing_full_scans"] + 1
                if confirmations >= 2:
                    dropped += 1
                    self.db.execute("DELETE FROM shoots WHERE id = ?", (row["id"],))
                else:
                    self.db.execute(
                        "UPDATE shoots SET missing_full_scans = ? WHERE id = ?",
                        (confirmations, row["id"]),
                    )
        return newly, dropped

    def record_unrecognised(self, volume: str, relpath: bytes, reason: str, gen: int) -> None:
        self.db.execute(
            "INSERT INTO unrecognised (volume, relpath, reason, seen_gen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (volume, relpath) DO UPDATE SET reason = excluded.reason, "
            "seen_gen = excluded.seen_gen",
            (volume, relpath, reason, gen),
        )

    def forget_unrecognised(self, volume: str, gen: int,
                            scopes: list[bytes] | None = None) -> None:
        """Forget the unrecognised folders scan `gen` did not see (under `scopes`, if given)."""
        if scopes is None:
            self.db.execute(
                "DELETE FROM unrecognised WHERE volume = ? AND seen_gen != ?", (volume, gen)
            )
            return
        gone = [(volume, r[0]) for r in self.db.execute(
            "SELECT relpath FROM unrecognised WHERE volume = ? AND seen_gen != ?", (volume, gen))
            if _under(r[0], scopes)]
        self.db.executemany("DELETE FROM unrecognised WHERE volume = ? AND relpath = ?", gone)

    def unrecognised(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT volume, relpath, reason FROM unrecognised ORDER BY volume, relpath"
        ).fetchall()

    def shoots(self, customer_key: str | None = None, volume: str | None = None,
               ) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM shoots WHERE 1", []
        if customer_key is not None:
            sql += " AND customer_key = ?"
            args.append(customer_key)
        if volume is not None:
            sql += " AND volume = ?"
            args.append(volume)
        return self.db.execute(sql + " ORDER BY volume, path", args).fetchall()

    def file_tuples(self, shoot_id: int) -> list[tuple[bytes, int, int, int, str]]:
        """The shoot's files as plain (relpath, size, mtime_ns, inode, kind), by relpath."""
        row = self.db.execute(f"SELECT {_FILE_COLUMNS} FROM shoot_files WHERE shoot_id = ?",
                              (shoot_id,)).fetchone()
        if row is None:
            return []
        try:
            return unpack_files(*row)
        except DamagedList as exc:
            raise StoreError(f"{self.path}: the file list of shoot {shoot_id} is damaged ({exc}):"
                             " run `archivekeeper scan --full`") from exc

    def forget_files(self, shoot_id: int, relpaths: Iterable[bytes]) -> None:
        """Drop moved files from the index; a shoot with none left leaves the index. A damaged
        list is dropped whole and the shoot marked incomplete until a scan lists it again."""
        gone = set(relpaths)
        try:
            left = [f for f in self.file_tuples(shoot_id) if f[0] not in gone]
        except StoreError:
            self.db.execute("DELETE FROM shoot_files WHERE shoot_id = ?", (shoot_id,))
            self.db.execute("DELETE FROM dirs WHERE shoot_id = ?", (shoot_id,))
            self.db.execute("UPDATE shoots SET incomplete = 1 WHERE id = ?", (shoot_id,))
            return
        if not left:
            self.db.execute("DELETE FROM shoots WHERE id = ?", (shoot_id,))
            return
        self.db.execute(f"UPDATE shoot_files SET ({_FILE_COLUMNS}) = (?, ?, ?, ?, ?, ?) "
                        "WHERE shoot_id = ?", (*pack_files(left), shoot_id))
        self.db.execute("UPDATE shoots SET files = ?, bytes = ? WHERE id = ?",
                        (len(left), sum(f[1] for f in left), shoot_id))

    # -- uses -----------------------------------------------------------------------------------
    def last_uses(self) -> dict[tuple[str, str, str | None], str]:
        """Return (customer_key, shoot date, type) -> latest use time (ISO), i.e. per copy set."""
        rows = self.db.execute(
            "SELECT customer_key, shoot_date, shoot_type, MAX(at) FROM uses "
            "GROUP BY customer_key, shoot_date, shoot_type"
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def add_uses(self, copy_sets: Iterable[tuple[str, str, str | None]], at: datetime,
                 reason: str) -> None:
        """Record a use at `at` of each (customer_key, shoot date, type) copy set."""
        self.db.executemany(
            "INSERT INTO uses (customer_key, shoot_date, shoot_type, at, reason) "
            "VALUES (?, ?, ?, ?, ?)", ((k, d, t, at.isoformat(), reason) for k, d, t in copy_sets))

    def count_copies(self, copy_sets: Iterable[tuple[str, str, str | None]]) -> int:
        """How many shoots the (customer_key, shoot date, type) copy sets hold between them."""
        return sum(self.db.execute(
            "SELECT COUNT(*) FROM shoots WHERE customer_key = ? AND date = ? AND type IS ?",
            copy_set).fetchone()[0] for copy_set in copy_sets)

    # -- shoots, as commands and the executor read them ---------------------------------------
    def knows_customer(self, customer_key: str) -> bool:
        """Has the customer a shoot in the index, or one in trash (a hold saves it from purge)?"""
        return self.db.execute(
            "SELECT 1 FROM shoots WHERE customer_key = ? UNION ALL SELECT 1 FROM trash_groups "
            "WHERE customer_key = ? AND state = 'trashed' LIMIT 1",
            (customer_key, customer_key)).fetchone() is not None

    def shoot_names(self) -> list[sqlite3.Row]:
        """(volume, path, customer, customer_key) of every shoot the index knows, indexed or in
        trash (a trash group's customer is its customer_key)."""
        return self.db.execute(
            "SELECT volume, path, customer, customer_key FROM shoots UNION ALL "
            "SELECT volume, shoot_path, customer_key, customer_key FROM trash_groups").fetchall()

    def oldest_shoot_of_type(self, shoot_type: str, not_customer_key: str
                             ) -> sqlite3.Row | None:
        """(volume, path) of the earliest dated shoot of a type, not of the given customer."""
        return self.db.execute(
            "SELECT volume, path FROM shoots WHERE type = ? AND customer_key != ? "
            "ORDER BY date LIMIT 1", (shoot_type, not_customer_key)).fetchone()

    def folder_mtimes(self, shoot_id: int) -> list[sqlite3.Row]:
        """(relpath, mtime_ns) of the shoot's folders as the last scan saw them."""
        return self.db.execute("SELECT relpath, mtime_ns FROM dirs WHERE shoot_id = ?",
                               (shoot_id,)).fetchall()

    # -- holds ------------------------------------------------------------------------------------
    def open_holds(self) -> list[sqlite3.Row]:
        """The stored holds not released, by id."""
        return self.db.execute(
            "SELECT * FROM holds WHERE released_at IS NULL ORDER BY id").fetchall()

    def open_hold(self, hold_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM holds WHERE id = ? AND released_at IS NULL",
                               (hold_id,)).fetchone()

    def hold_customer(self, hold_id: int) -> str | None:
        """The customer name a stored hold was given with, as typed."""
        row = self.db.execute("SELECT customer FROM holds WHERE id = ?", (hold_id,)).fetchone()
        return row[0] if row else None

    def add_hold(self, *, scope: str, customer: str | None, customer_key: str | None,
                 volume: str | None, path: bytes | None, kind: str, reason: str,
                 until: date | None, at: datetime) -> int:
        """Store a hold; return its id."""
        return self.db.execute(
            "INSERT INTO holds (scope, customer, customer_key, volume, path, kind, reason, "
            "until, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (scope, customer, customer_key, volume, path, kind, reason,
             until.isoformat() if until else None, at.isoformat())).lastrowid

    def release_hold(self, hold_id: int, at: datetime) -> None:
        self.db.execute("UPDATE holds SET released_at = ? WHERE id = ?",
                        (at.isoformat(), hold_id))

    # -- announcements ----------------------------------------------------------------------------
    def announcements(self) -> list[sqlite3.Row]:
        """(key, announced_at, approved_at) of every announced item."""
        return self.db.execute(
            "SELECT key, announced_at, approved_at FROM announcements").fetchall()

    def approve(self, items: Iterable[tuple[str, int]], at: datetime) -> None:
        """Approve (item key, shoot id) at `at`; an item not announced yet is announced too."""
        self.db.executemany(
            "INSERT INTO announcements (key, shoot_id, announced_at, approved_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET approved_at = excluded.approved_at",
            ((key, shoot_id, at.isoformat(), at.isoformat()) for key, shoot_id in items))

    def forget_announcement(self, key: str) -> None:
        """The item's announcement (and approval) starts again, e.g. once it is restored."""
        self.db.execute("DELETE FROM announcements WHERE key = ?", (key,))

    # -- trash ------------------------------------------------------------------------------------
    # Inodes are stored as inode_to_sql gives them; the rows below give them back that way.
    def trash_group(self, group_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM trash_groups WHERE id = ?",
                               (group_id,)).fetchone()

    def trash_group_bytes(self, group_id: int, state: str) -> int:
        """The bytes of a trash group's files in `state` (the weekly report's sizes)."""
        return self.db.execute("SELECT COALESCE(SUM(size), 0) FROM trash_files WHERE "
                               "group_id = ? AND state = ?", (group_id, state)).fetchone()[0]

    def customer_name(self, customer_key: str) -> str | None:
        """A customer's name as a shoot folder writes it, or None if no shoot has it now."""
        row = self.db.execute("SELECT customer FROM shoots WHERE customer_key = ? LIMIT 1",
                              (customer_key,)).fetchone()
        return row[0] if row else None

    def expired_trash_groups(self, today: date) -> list[sqlite3.Row]:
        """The trash groups whose retention has passed on `today`, by id."""
        return self.db.execute(
            "SELECT * FROM trash_groups WHERE state = 'trashed' AND purge_after <= ? "
            "ORDER BY id", (today.isoformat(),)).fetchall()

    def trash_summary(self) -> list[sqlite3.Row]:
        """(id, volume, shoot_path, trashed_at, purge_after, files, bytes) of every trash group
        with files in trash now, by id."""
        return self.db.execute(
            "SELECT g.id, g.volume, g.shoot_path, g.trashed_at, g.purge_after, COUNT(f.relpath), "
            "COALESCE(SUM(f.size), 0) FROM trash_groups g JOIN trash_files f ON f.group_id = g.id "
            "AND f.state = 'trashed' GROUP BY g.id ORDER BY g.id").fetchall()

    def half_done_steps(self) -> list[sqlite3.Row]:
        """(group id, batch, volume, shoot_path, purge_after, relpath, state, size, mtime_ns,
        inode) of every file whose move, restore or purge a crash left half-done."""
        return self.db.execute(
            "SELECT g.id, g.batch, g.volume, g.shoot_path, g.purge_after, f.relpath, f.state, "
            "f.size, f.mtime_ns, f.inode FROM trash_files f JOIN trash_groups g ON "
            "g.id = f.group_id WHERE f.state IN ('moving', 'restoring', 'purging')").fetchall()

    def trashed_files(self, group_id: int) -> list[sqlite3.Row]:
        """(relpath, size, mtime_ns, inode) of the group's files in trash now."""
        return self.db.execute(
            "SELECT relpath, size, mtime_ns, inode FROM trash_files WHERE group_id = ? AND "
            "state = 'trashed'", (group_id,)).fetchall()

    def add_trash_group(self, *, batch: str, volume: str, shoot_path: bytes, customer_key: str,
                        item_key: str, rule: str, trashed_at: datetime, purge_after: str,
                        files: Iterable[tuple[bytes, int, int, int]]) -> int:
        """Record the intent to move (relpath, size, mtime_ns, inode) files of a shoot to trash
        as a new trash group, its files 'moving'; return the group's id."""
        group_id = self.db.execute(
            "INSERT INTO trash_groups (batch, volume, shoot_path, customer_key, item_key, "
            "rule, trashed_at, purge_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (batch, volume, shoot_path, customer_key, item_key, rule, trashed_at.isoformat(),
             purge_after)).lastrowid
        self.db.executemany(
            "INSERT INTO trash_files (group_id, relpath, size, mtime_ns, inode, state) "
            "VALUES (?, ?, ?, ?, ?, 'moving')",
            ((group_id, *f) for f in files))
        return group_id

    def set_trash_files_state(self, group_id: int, state: str, relpaths: Iterable[bytes]
                              ) -> None:
        self.db.executemany(
            "UPDATE trash_files SET state = ? WHERE group_id = ? AND relpath = ?",
            ((state, group_id, rel) for rel in relpaths))

    def drop_trash_files(self, group_id: int, relpaths: Iterable[bytes]) -> None:
        """Forget files a step never moved (refused, or rolled back after a crash)."""
        self.db.executemany("DELETE FROM trash_files WHERE group_id = ? AND relpath = ?",
                            ((group_id, rel) for rel in relpaths))

    def drop_trash_group(self, group_id: int) -> None:
        self.db.execute("DELETE FROM trash_groups WHERE id = ?", (group_id,))

    def set_trash_group_state(self, group_id: int, state: str) -> None:
        self.db.execute("UPDATE trash_groups SET state = ? WHERE id = ?", (state, group_id))

    def start_purging(self, group_id: int) -> list[sqlite3.Row]:
        """Mark the group's files in trash 'purging'; return their (relpath, size, mtime_ns,
        inode)."""
        return self.db.execute(
            "UPDATE trash_files SET state = 'purging' WHERE group_id = ? AND "
            "state = 'trashed' RETURNING relpath, size, mtime_ns, inode", (group_id,)).fetchall()

    def start_restoring(self, group_id: int) -> None:
        """Mark the group's files in trash 'restoring'."""
        self.db.execute("UPDATE trash_files SET state = 'restoring' WHERE group_id = ? AND "
                        "state = 'trashed'", (group_id,))

    def settle_trash_groups(self) -> None:
        """A group's state follows its files: no files left -> dropped; all purged -> purged;
        all restored -> restored."""
        self.db.execute("DELETE FROM trash_groups WHERE NOT EXISTS (SELECT 1 FROM trash_files f "
                        "WHERE f.group_id = trash_groups.id)")
        for state in ("purged", "restored"):
            self.db.execute(
                "UPDATE trash_groups SET state = ? WHERE state != ? AND NOT EXISTS (SELECT 1 "
                "FROM trash_files f WHERE f.group_id = trash_groups.id AND f.state != ?)",
                (state, state, state))

    # -- erasure (art. 17) -----------------------------------------------------------------------
    def add_erasure(self, *, token: str, customer_key: str, on: date, at: datetime, reason: str,
                    pending: Iterable[str]) -> int:
        """Record an erasure (running) and the volumes where it waits to be carried out."""
        erasure_id = self.db.execute(
            "INSERT INTO erasures (token, on_date, at, reason, customer_key) "
            "VALUES (?, ?, ?, ?, ?)",
            (token, on.isoformat(), at.isoformat(), reason, customer_key)).lastrowid
        self.db.executemany("INSERT INTO pending_erasures (erasure_id, volume) VALUES (?, ?)",
                            ((erasure_id, v) for v in pending))
        return erasure_id

    def has_erasures(self) -> bool:
        return self.db.execute("SELECT 1 FROM erasures LIMIT 1").fetchone() is not None

    def erasures(self) -> list[sqlite3.Row]:
        """Every erasure record (id, token, on_date, at, reason, customer_key, state), by id."""
        return self.db.execute("SELECT * FROM erasures ORDER BY id").fetchall()

    def running_erasures(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM erasures WHERE state = 'running' ORDER BY id").fetchall()

    def finish_erasure(self, erasure_id: int) -> None:
        """The online part is done: the name goes (secure_delete overwrites it)."""
        self.db.execute("UPDATE erasures SET state = 'done', customer_key = NULL WHERE id = ?",
                        (erasure_id,))

    def pending_erasures(self) -> list[sqlite3.Row]:
        """(erasure_id, volume, token, on_date) of every erasure waiting for a volume."""
        return self.db.execute(
            "SELECT p.erasure_id, p.volume, e.token, e.on_date FROM pending_erasures p "
            "JOIN erasures e ON e.id = p.erasure_id ORDER BY p.erasure_id, p.volume").fetchall()

    def finish_pending(self, erasure_id: int, volume: str) -> None:
        self.db.execute("DELETE FROM pending_erasures WHERE erasure_id = ? AND volume = ?",
                        (erasure_id, volume))

    def customer_keys(self) -> list[str]:
        """Every customer key the index holds (shoots, trash, holds, uses)."""
        return [r[0] for r in self.db.execute(
            "SELECT customer_key FROM shoots UNION SELECT customer_key FROM trash_groups "
            "UNION SELECT customer_key FROM holds WHERE customer_key IS NOT NULL "
            "UNION SELECT customer_key FROM uses")]

    def customer_trash(self, customer_key: str) -> list[sqlite3.Row]:
        """The customer's trash groups with files in trash now, by id."""
        return self.db.execute(
            "SELECT * FROM trash_groups WHERE customer_key = ? AND state = 'trashed' "
            "ORDER BY id", (customer_key,)).fetchall()

    def hold_pending_trash(self, erasure_id: int, group_id: int, tokens: dict[bytes, str]) -> None:
        """Keep a trash group on an offline volume as path tokens only, for the pending
        erasure; tokens maps each file's relpath to its token."""
        group = self.trash_group(group_id)
        self.db.executemany(
            "INSERT OR IGNORE INTO pending_trash (erasure_id, volume, batch, path_token, size, "
            "mtime_ns, inode) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((erasure_id, group["volume"], group["batch"], tokens[r[0]], r[1], r[2], r[3])
             for r in self.trashed_files(group_id)))

    def pending_trash(self, erasure_id: int, volume: str) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT batch, path_token, size, mtime_ns, inode FROM pending_trash WHERE "
            "erasure_id = ? AND volume = ?", (erasure_id, volume)).fetchall()

    def drop_pending_trash(self, volume: str, batch: str, path_token: str) -> None:
        self.db.execute("DELETE FROM pending_trash WHERE volume = ? AND batch = ? AND "
                        "path_token = ?", (volume, batch, path_token))

    def forget_customer(self, customer_key: str, shoot_ids: Iterable[int],
                        unrecognised: Iterable[tuple[str, bytes]], today: date) -> None:
        """After an erasure, delete the rows that name the customer and keep nothing: the
        given shoots of theirs (with files, folders and announcements), their trash history,
        uses of copy sets with no shoot left, holds released or ended, and the given
        unrecognised folders. Shoots a hold kept are not given, and stay."""
        gone = [i for i in shoot_ids if self.db.execute(
            "SELECT 1 FROM shoots WHERE id = ? AND customer_key = ?",
            (i, customer_key)).fetchone()]
        self.db.executemany("DELETE FROM announcements WHERE shoot_id = ?",
                            ((i,) for i in gone))
        self.db.executemany("DELETE FROM shoots WHERE id = ?", ((i,) for i in gone))
        groups = [r[0] for r in self.db.execute(
            "SELECT id FROM trash_groups WHERE customer_key = ? AND (state != 'trashed' OR NOT "
            "EXISTS (SELECT 1 FROM trash_files f WHERE f.group_id = trash_groups.id AND "
            "f.state != 'purged'))", (customer_key,))]
        self.db.executemany("DELETE FROM trash_files WHERE group_id = ?", ((g,) for g in groups))
        self.db.executemany("DELETE FROM trash_groups WHERE id = ?", ((g,) for g in groups))
        self.db.execute("DELETE FROM uses WHERE customer_key = ? AND NOT EXISTS (SELECT 1 FROM "
                        "shoots s WHERE s.customer_key = uses.customer_key AND s.date = "
                        "uses.shoot_date AND s.type IS uses.shoot_type)", (customer_key,))
        self.db.execute("DELETE FROM holds WHERE customer_key = ? AND (released_at IS NOT NULL "
                        "OR until < ?)", (customer_key, today.isoformat()))
        self.db.executemany("DELETE FROM unrecognised WHERE volume = ? AND relpath = ?",
                            unrecognised)

    def forget_trash_group(self, group_id: int) -> None:
        self.db.execute("DELETE FROM trash_files WHERE group_id = ?", (group_id,))
        self.db.execute("DELETE FROM trash_groups WHERE id = ?", (group_id,))

    def forget_holds(self, ids: Iterable[int]) -> None:
        """Delete holds that keep nothing any more (their text names an erased customer)."""
        self.db.executemany("DELETE FROM holds WHERE id = ?", ((i,) for i in ids))

    def reasons(self) -> list[tuple[str, int, str]]:
        """(table, id, reason) of every reason the owner typed that the index keeps: holds, uses
        and erasure records."""
        return [(table, *row) for table in _REASON_TABLES
                for row in self.db.execute(f"SELECT id, reason FROM {table}")]

    def redact_reasons(self, rows: Iterable[tuple[str, int]]) -> None:
        """Replace the given rows' reasons by "[erased]": they named an erased customer."""
        for table, row_id in rows:
            self.db.execute(f"UPDATE {table} SET reason = '[erased]' WHERE id = ?", (row_id,))

    def checkpoint(self) -> bool:
        """Copy the WAL into the index and truncate it, so deleted rows linger in no journal.
        Return False if a reader kept part of it (then the WAL still holds old pages)."""
        busy, *_ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0

    # -- runs and refusals -----------------------------------------------------------------------
    def begin_run(self, kind: str, started_at: datetime) -> int:
        """Record a run as changing things from its start; return its id (see end_run)."""
        return self.db.execute(
            "INSERT INTO runs (kind, started_at, changed) VALUES (?, ?, 1)",
            (kind, started_at.astimezone(UTC).isoformat())).lastrowid

    def end_run(self, run_id: int, finished_at: datetime, changed: bool) -> None:
        self.db.execute("UPDATE runs SET finished_at = ?, changed = ? WHERE id = ?",
                        (finished_at.astimezone(UTC).isoformat(), int(changed), run_id))

    def add_refusal(self, at: datetime, command: str, reasons: Iterable[str]) -> None:
        """Store a refusal for the next report."""
        self.db.execute("INSERT INTO refusals (at, command, reasons) VALUES (?, ?, ?)",
                        (at.isoformat(), command, "\n".join(reasons)))

    # -- hold expiry --------------------------------------------------------------------------
    def expired_hold_keys(self) -> set[str]:
        """The keys of the holds whose end the audit log has recorded."""
        return {r[0] for r in self.db.execute("SELECT key FROM expired_holds")}

    def note_hold_expired(self, key: str, at: datetime) -> bool:
        """Remember that a hold's end is recorded; False if it already was (another process)."""
        return self.db.execute("INSERT OR IGNORE INTO expired_holds (key, at) VALUES (?, ?)",
                               (key, at.isoformat())).rowcount == 1

    # -- export (art. 15) -------------------------------------------------------------------
    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Read in one deferred transaction: every query sees the index as it was at the
        first one, though a scan or apply commits meanwhile (WAL). Nothing is written."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("COMMIT")

    def holds_ever(self) -> list[sqlite3.Row]:
        """Every stored hold, released ones too (the index keeps them), by id."""
        return self.db.execute("SELECT * FROM holds ORDER BY id").fetchall()

    def customer_uses(self, customer_key: str) -> list[sqlite3.Row]:
        """(at, reason, shoot_date, shoot_type) of the customer's recorded uses, oldest first."""
        return self.db.execute(
            "SELECT at, reason, shoot_date, shoot_type FROM uses WHERE customer_key = ? "
            "ORDER BY at, id", (customer_key,)).fetchall()

    def customer_trash_groups(self, customer_key: str) -> list[sqlite3.Row]:
        """The customer's trash groups in every state (purged ones still name a path), by id."""
        return self.db.execute("SELECT * FROM trash_groups WHERE customer_key = ? ORDER BY id",
                               (customer_key,)).fetchall()

    def trash_group_files(self, group_id: int) -> list[sqlite3.Row]:
        """(relpath, size, mtime_ns, state) of every file of a trash group, by relpath."""
        return self.db.execute(
            "SELECT relpath, size, mtime_ns, state FROM trash_files WHERE group_id = ? "
            "ORDER BY relpath", (group_id,)).fetchall()


def _under(path: bytes, folders: list[bytes]) -> bool:
    """Is relpath `path` one of `folders` or inside one (b"" is the volume root)?"""
    return any(f == b"" or path == f or path.startswith(f + b"/") for f in folders)


def shoot_json(row: sqlite3.Row, last_used: date | None = None) -> dict:
    """Given a shoots row, return the SPEC's `shoots --json` shape."""
    return {
        "id": row["id"],
        "volume": row["volume"],
        "path": exact_path(row["path"]),
        "customer": row["customer"],
        "date": row["date"],
        "date_source": row["date_source"],
        "type": row["type"],
        "files": row["files"],
        "bytes": row["bytes"],
        "last_used": (last_used.isoformat() if last_used else row["date"]),
        "state": row["state"],
        "incomplete": bool(row["incomplete"]),
    }


class RunLock:
    """state_dir/lock: one process at a time scans, applies, purges, restores or recovers
    (state_dir/daemon.lock, by name: one daemon per state_dir). The holder's pid is in the file.

    An flock is released by the kernel when its holder dies, so a kill -9 never leaves it stuck.
    """

    def __init__(self, state_dir: Path, name: str = "lock"):
        self.path = Path(state_dir) / name
        self.fd: int | None = None

    def acquire(self, wait: float) -> bool:
        """Take the lock, waiting up to `wait` seconds; return False if another holds it."""
        import fcntl
        import time

        private_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the lock: {exc.strerror}") from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
