"""Index rows -> the plain ShootFact values the decision core takes (shell side)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime

from archivekeeper.core.model import FileFact, ShootFact
from archivekeeper.core.naming import EARLIEST_PLAUSIBLE
from archivekeeper.index.store import Store
from archivekeeper.logs import exact_path

# mtimes before this (a camera clock never set, 0 from MTP copies) are not evidence of a date
PLAUSIBLE_NS = int(datetime.combine(EARLIEST_PLAUSIBLE, datetime.min.time(), UTC)
                   .timestamp()) * 10**9


def mtime_date(mtime_ns: int) -> date:
    """Local calendar date of a file mtime."""
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC).astimezone().date()


def last_used_map(store: Store, rows: list[sqlite3.Row]) -> dict[int, date]:
    """Given shoots rows, return id -> last used: the newest of shoot date, newest file mtime and
    use events recorded for any copy (same customer, date and type)."""
    uses = store.last_uses()
    out = {}
    for r in rows:
        candidates = [date.fromisoformat(r["date"]), modified_date(r)]
        used = uses.get((r["customer_key"], r["date"], r["type"]))
        if used:
            candidates.append(datetime.fromisoformat(used).date())
        out[r["id"]] = max(candidates)
    return out


def modified_date(row: sqlite3.Row) -> date:
    """Newest file mtime as a local date; an implausible one (a camera clock never set) counts
    as the day the shoot was first seen: when in doubt, the later date."""
    if row["newest_mtime_ns"] is None:
        return date.fromisoformat(row["date"])
    modified = mtime_date(row["newest_mtime_ns"])  # 0 (1970, MTP copies) is implausible too
    if modified < EARLIEST_PLAUSIBLE:
        return max(date.fromisoformat(row["first_seen"][:10]), date.fromisoformat(row["date"]))
    return modified


def shoot_fact(row: sqlite3.Row, last_used: date, files: tuple[FileFact, ...]) -> ShootFact:
    modified = modified_date(row)
    return ShootFact(
        id=row["id"], volume=row["volume"], path=exact_path(row["path"]),
        customer=row["customer"], customer_key=row["customer_key"],
        date=date.fromisoformat(row["date"]), date_source=row["date_source"], type=row["type"],
        modified=modified, last_used=last_used, state=row["state"],
        incomplete=bool(row["incomplete"]), files=files,
    )


def iter_shoot_facts(store: Store, rows: list[sqlite3.Row] | None = None) -> Iterator[ShootFact]:
    """Yield a ShootFact with its files for every indexed shoot (or the given rows), streaming
    one shoot's files at a time so a million files never sit in memory twice."""
    rows = rows if rows is not None else store.shoots()
    used = last_used_map(store, rows)
    for row in rows:
        files = tuple(
            FileFact(relpath=exact_path(f[0]), size=f[1], mtime_ns=f[2], inode=f[3], kind=f[4])
            for f in store.file_tuples(row["id"])
        )
        yield shoot_fact(row, used[row["id"]], files)
