"""Plain frozen values shared by the core and the shell. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from archivekeeper.core.durations import Period

HOLD_KINDS = ("accounting", "invoice", "collection", "legal-claim", "restriction", "other")
BASES = ("shoot_date", "last_used", "modified")


@dataclass(frozen=True, slots=True)  # a million of these in a big plan: no __dict__ each
class FileFact:
    """One file of a shoot, as the index recorded it."""

    relpath: str  # relative to the volume root, "/"-separated, undecodable bytes escaped
    size: int
    mtime_ns: int
    inode: int = 0
    kind: str = "other"  # raw | image | video | sidecar | other | symlink

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class ShootFact:
    """One shoot as the decision core sees it. Dates are local calendar dates."""

    id: int
    volume: str
    path: str  # relative to the volume root
    customer: str  # as written in the folder name
    customer_key: str  # naming.normalize_customer(customer)
    date: date
    date_source: str  # folder | exif | mtime
    type: str | None
    modified: date  # newest file mtime, local date
    last_used: date  # max(date, modified, use events)
    state: str = "online"  # online | offline | missing
    incomplete: bool = False
    files: tuple[FileFact, ...] = ()


@dataclass(frozen=True)
class Match:
    """Keys of a rule's match: or exclude: block; None = not constrained."""

    customer: str | None = None
    type: str | None = None
    volume: str | None = None
    path: str | None = None
    files: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # keep | delete
    period: Period
    since: str = "shoot_date"  # one of BASES
    match: Match | None = None
    exclude: Match | None = None


@dataclass(frozen=True)
class Hold:
    """Blocks deletion of a customer, a shoot or a path. until is inclusive; None = no end."""

    id: str  # "cfg-N" for config holds, a number as text for stored ones
    kind: str
    reason: str
    until: date | None = None
    customer_key: str | None = None  # customer scope
    volume: str | None = None  # shoot / path scope: volume + path relative to it
    path: str | None = None
    scope: str = "customer"  # customer | shoot | path
    source: str = "config"  # config | cli


@dataclass(frozen=True)
class Erasure:
    """An art. 17 erasure record: shoots of this customer dated on or before `on` are due."""

    customer_key: str
    on: date
    reason: str = ""


@dataclass(frozen=True)
class Limits:
    max_files_per_run: int = 20000
    max_bytes_per_run: int = 500 * 10**9
    max_fraction_per_volume: float = 0.10


@dataclass(frozen=True)
class Announcement:
    """When an item (shoot, date, file set) was first computed as upcoming or due."""

    key: str
    announced_at: datetime
    approved_at: datetime | None = None
