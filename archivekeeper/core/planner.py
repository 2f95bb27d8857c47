"""From per-file verdicts to a plan: items, statuses, announcements, limits, clock guard.

Pure: no I/O, no clock; `today` and `now` are parameters. An item is one shoot's files that share
a date. Its status is, first that holds: blocked (an active hold, an offline or missing volume,
an incomplete shoot), upcoming (date within the notice period, or not yet announced for it),
awaiting-approval, due. The limits are checked on the whole due set: a plan that exceeds any is
refused and nothing in it is actionable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from archivekeeper.core.durations import Period
from archivekeeper.core.model import Announcement, FileFact, Limits, ShootFact
from archivekeeper.core.policy import FileGroup, ShootDecision, hold_active, hold_text, shoot_blocks

STATUSES = ("due", "awaiting-approval", "upcoming", "blocked")
_STATUS_ORDER = {status: i for i, status in enumerate(STATUSES)}
CLOCK_TOLERANCE = timedelta(minutes=5)
# File mtimes run ahead of the clock for harmless reasons (FAT keeps local time, copy tools keep
# camera dates): a fresh index distrusts a clock behind its newest mtime only past a day.
STAND_IN_TOLERANCE = timedelta(days=1)
# How much further the wall clock may move from the mark than the boot-time clock did: a
# command's own run time, NTP's small corrections; far below any notice or retention period.
RAN_TOLERANCE = timedelta(hours=1)


@dataclass(frozen=True)
class PlanItem:
    """Files of one shoot that become deletable on the same date.

    For a blocked item held by an active hold, date is the date the rules alone give.
    earliest is the first day it can actually go: its date, the end of its notice period (from
    its announcement, or from today if it is not announced yet), the day after its holds end, or
    None when that is not known (a hold with no end, an offline volume, an incomplete shoot).
    key identifies the item's content (volume, path, date, files with size and mtime): a changed
    item is a new item, so its old announcement and approval no longer count.
    """

    shoot_id: int
    volume: str
    path: str
    customer: str
    customer_key: str
    scope: str  # shoot | files
    files: tuple[str, ...]  # relpaths
    facts: tuple[FileFact, ...]  # what the executor re-verifies before touching each file
    bytes: int
    rule: str
    date: date
    status: str
    blocked_by: tuple[str, ...]
    announced_at: datetime | None
    key: str
    erasure: bool = False
    earliest: date | None = None

    def to_json(self) -> dict:
        return {
            "shoot_id": self.shoot_id,
            "volume": self.volume,
            "path": self.path,
            "customer": self.customer,
            "scope": self.scope,
            "files": len(self.files),
            "bytes": self.bytes,
            "rule": self.rule,
            "date": self.date.isoformat(),
            "status": self.status,
            "blocked_by": list(self.blocked_by),
            "announced_at": self.announced_at.isoformat() if self.announced_at else None,
            "earliest_deletion": self.earliest.isoformat() if self.earliest else None,
            "key": self.key,
            "erasure": self.erasure,
        }


@dataclass(frozen=True)
class Plan:
    as_of: date
    items: tuple[PlanItem, ...]
    refusals: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    to_announce: tuple[str, ...] = ()  # keys of listed, unblocked items never announced

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    def due_items(self) -> list[PlanItem]:
        """Return the items whose status is due, refused or not."""
        return [item for item in self.items if item.status == "due"]

    def actionable(self) -> list[PlanItem]:
        """Return the items a run may delete now: the due items, or none when refused."""
        return [] if self.refused else self.due_items()

    def with_warnings(self, warnings: Sequence[str]) -> Plan:
        """Return this plan with these warnings added."""
        return replace(self, warnings=self.warnings + tuple(warnings))

    def to_json(self) -> dict:
        """Return the `plan --json` document."""
        return {
            "as_of": self.as_of.isoformat(),
            "items": [item.to_json() for item in self.items],
            "refusals": list(self.refusals),
            "warnings": list(self.warnings),
            "refused": self.refused,
        }


def build_plan(
    shoots: Sequence[ShootFact],
    decisions: Sequence[ShootDecision],
    *,
    today: date,
    now: datetime,
    notice: Period,
    require_approval: bool,
    announcements: Mapping[str, Announcement],
    limits: Limits,
    volume_totals: Mapping[str, tuple[int, int]],
    clock: ClockCheck | None = None,
    erased_customers: frozenset[str] = frozenset(),
    warnings: Sequence[str] = (),
    announce_now: bool = False,
) -> Plan:
    """Given the shoots, their decisions (policy.evaluate_shoot, same order), today's local date,
    now (aware, local offset), the notice period, whether approval is required, the stored
    announcements by item key, the limits, each volume's indexed (files, bytes), the clock
    guard's verdict (None: trusted) and the customer keys whose erasure the owner confirmed (their
    erasure items are exempt from the max_* limits, as the erase preview listed them), return
    the plan. shoots and decisions may be iterators (streamed: only listed items keep their
    files). With announce_now, items never announced count as announced at `now` (the caller
    stores `to_announce`); on a distrusted clock nothing is announced, the plan is refused and
    its warnings say why. An announcement stored in the future of `now` was made on a clock that
    was ahead: it counts as none, and is announced again. Raise ValueError if shoots and
    decisions do not line up."""
    clock = clock or ClockCheck(now, None)
    announce_now = announce_now and clock.trusted
    items: list[PlanItem] = []
    # zip(strict=True) raises ValueError on a length mismatch and lets both be streamed
    for shoot, decision in zip(shoots, decisions, strict=True):
        if decision.shoot.id != shoot.id:
            raise ValueError(f"decision for shoot {decision.shoot.id} given for shoot {shoot.id}")
        items.extend(
            _shoot_items(shoot, decision, today, now, notice, require_approval, announcements,
                         announce_now)
        )
    if not clock.trusted:  # counted from a today that cannot be believed: not known
        items = [replace(i, earliest=None) for i in items]
    items.sort(key=lambda i: (_STATUS_ORDER[i.status], i.date, i.volume, i.path, i.files[0]))
    due = [
        i
        for i in items
        if i.status == "due" and not (i.erasure and i.customer_key in erased_customers)
    ]
    refusals = _limit_refusals(due, limits, volume_totals) + list(clock.refusals)
    to_announce = tuple(
        i.key for i in items
        if clock.trusted and i.status != "blocked"
        and _announcement(announcements, i.key, now) is None
    )
    warnings = tuple(warnings) + tuple(f"nothing was announced: {r}{clock.hint()}"
                                       for r in clock.refusals)
    return Plan(today, tuple(items), tuple(refusals), warnings, to_announce)


def _announcement(
    announcements: Mapping[str, Announcement], key: str, now: datetime
) -> Announcement | None:
    """Return the stored announcement of an item, unless it lies in the future of now (made on
    a clock that was ahead: never a date that holds deletion back for years)."""
    found = announcements.get(key)
    if found is None or found.announced_at > now + CLOCK_TOLERANCE:
        return None
    return found


def earliest_deletion(
    items: Sequence[PlanItem],
    files: Sequence[tuple[str, date | None, Sequence[date | None]]],
    today: date,
    notice: Period,
) -> date | None:
    """Given one shoot's plan items and some of its files as (relpath, the date its rules give,
    the ends of its active holds), return the first day all those files can actually go: a
    listed file's item's earliest day, else first_day of its own. None when a file is never
    deleted or its day is not known."""
    by_file = {f: item.earliest for item in items for f in item.files}
    days = [by_file[rel] if rel in by_file
            else None if when is None else first_day(when, ends, None, today, notice)
            for rel, when, ends in files]
    if not days or any(d is None for d in days):
        return None
    return max(days)  # type: ignore[type-var]


def item_key(volume: str, path: str, when: date, facts: Sequence[FileFact]) -> str:
    """Given an item's volume, shoot path, date and files, return its stable id."""
    digest = hashlib.sha256()
    digest.update(f"{volume}\0{path}\0{when.isoformat()}\0".encode("utf-8", "surrogateescape"))
    for relpath, size, mtime_ns in sorted((f.relpath, f.size, f.mtime_ns) for f in facts):
        digest.update(f"{relpath}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _shoot_items(
    shoot: ShootFact,
    decision: ShootDecision,
    today: date,
    now: datetime,
    notice: Period,
    require_approval: bool,
    announcements: Mapping[str, Announcement],
    announce_now: bool = False,
) -> list[PlanItem]:
    buckets: dict[tuple[date, tuple[str, ...]], list[FileGroup]] = {}
    for group in decision.groups:
        held = tuple(hold_text(h) for h in group.holds if hold_active(h, today))
        # A held file is listed at the date its rules give, blocked, so the plan shows the hold.
        when = group.unheld if held else group.date
        if when is None or notice.subtract_from(when) > today:
            continue
        buckets.setdefault((when, held), []).append(group)
    blocks = shoot_blocks(shoot)
    items = []
    for (when, held), groups in buckets.items():
        facts = tuple(f for g in groups for f in g.files)
        rules = list(dict.fromkeys(g.rule for g in groups if g.rule is not None))
        erasure = all(g.erasure for g in groups)
        key = item_key(shoot.volume, shoot.path, when, facts)
        announcement = _announcement(announcements, key, now)
        blocked_by = blocks + held
        if announcement is None and announce_now and not blocked_by:
            announcement = Announcement(key, now)  # the caller stores to_announce with `now`
        active = [h for g in groups for h in g.holds if hold_active(h, today)]
        items.append(
            PlanItem(
                shoot_id=shoot.id,
                volume=shoot.volume,
                path=shoot.path,
                customer=shoot.customer,
                customer_key=shoot.customer_key,
                scope="shoot" if len(facts) == len(shoot.files) else "files",
                files=tuple(f.relpath for f in facts),
                facts=facts,
                bytes=sum(f.size for f in facts),
                rule=", ".join(rules),
                date=when,
                status=_status(
                    when, blocked_by, erasure, announcement, today, now, notice, require_approval
                ),
                blocked_by=blocked_by,
                announced_at=announcement.announced_at if announcement else None,
                key=key,
                erasure=erasure,
                earliest=None if blocks else first_day(
                    when, [h.until for h in active],
                    announcement.announced_at.date() if announcement else None, today, notice,
                    erasure),
            )
        )
    return items


def first_day(
    when: date,
    hold_ends: Sequence[date | None],
    announced: date | None,
    today: date,
    notice: Period,
    erasure: bool = False,
) -> date | None:
    """The first day a file (or an item) can actually go, approval aside: its date, the day
    after its active holds end (None among hold_ends: a hold with no end, never), and the end of
    its notice period, counted from its announcement, or from the day a plan will first list it
    unheld (today, its date less the notice period, or the day after its holds end)."""
    if any(end is None for end in hold_ends):
        return None
    free = [end + timedelta(days=1) for end in hold_ends]  # type: ignore[operator]
    start = max([when, *free])
    if erasure or notice.count == 0:
        return start
    if announced is None:
        announced = max([today, notice.subtract_from(when), *free])
    return max(start, notice.add_to(announced))


def _status(
    when: date,
    blocked_by: tuple[str, ...],
    erasure: bool,
    announcement: Announcement | None,
    today: date,
    now: datetime,
    notice: Period,
    require_approval: bool,
) -> str:
    if blocked_by:
        return "blocked"
    if when > today:
        return "upcoming"
    if erasure:
        return "due"
    if notice.count > 0 and (
        announcement is None or not _noticed(announcement.announced_at, now, notice)
    ):
        return "upcoming"
    if require_approval and (announcement is None or announcement.approved_at is None):
        return "awaiting-approval"
    return "due"


def _noticed(announced_at: datetime, now: datetime, notice: Period) -> bool:
    """Return whether the notice period has passed since announced_at, on the local wall clock.

    Both times are read in their own offset, so an announcement at 04:30 is noticed at 04:30
    fourteen days later even if a DST change lies between (elapsed time is then 13 d 23 h)."""
    start = announced_at.replace(tzinfo=None)
    end = datetime.combine(notice.add_to(start.date()), start.time())
    return now.replace(tzinfo=None) >= end


def _limit_refusals(
    due: Sequence[PlanItem], limits: Limits, volume_totals: Mapping[str, tuple[int, int]]
) -> list[str]:
    refusals = []
    files = sum(len(i.files) for i in due)
    size = sum(i.bytes for i in due)
    if files > limits.max_files_per_run:
        refusals.append(
            f"{files} files are due, more than max_files_per_run {limits.max_files_per_run}"
        )
    if size > limits.max_bytes_per_run:
        refusals.append(
            f"{_size(size)} are due, more than max_bytes_per_run {_size(limits.max_bytes_per_run)}"
        )
    per_volume: dict[str, list[int]] = {}
    for item in due:
        counts = per_volume.setdefault(item.volume, [0, 0])
        counts[0] += len(item.files)
        counts[1] += item.bytes
    cap = limits.max_fraction_per_volume
    for volume, (due_files, due_bytes) in sorted(per_volume.items()):
        total_files, total_bytes = volume_totals.get(volume, (0, 0))
        for what, part, whole in (
            ("files", due_files, total_files),
            ("bytes", due_bytes, total_bytes),
        ):
            if _fraction(part, whole) > cap:
                refusals.append(
                    f"volume {volume}: {_count(what, part)} due of {_count(what, whole)} is "
                    f"{_percent(part, whole)}, more than max_fraction_per_volume {cap:g}"
                )
    return refusals


def _fraction(part: int, whole: int) -> float:
    # A volume whose totals are unknown (or smaller than what is due) cannot be checked: refuse.
    if part == 0:
        return 0.0
    if whole <= 0 or part > whole:
        return float("inf")
    return part / whole


def _count(what: str, n: int) -> str:
    return _size(n) if what == "bytes" else f"{n} files"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "an unknown share"


def _size(n: int) -> str:
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


@dataclass(frozen=True)
class ClockCheck:
    """Whether the clock can be trusted now, and the instant it was judged against."""

    now: datetime
    reference: datetime | None  # the high-water mark, or the newest mtime standing in for it
    refusals: tuple[str, ...] = ()  # no names or paths: they go into the audit log
    where: str = ""  # where the newest mtime standing in for the mark is, for the owner
    boot: tuple[str, float] | None = None  # clock.boot_of(now): kept with the mark

    @property
    def trusted(self) -> bool:
        return not self.refusals

    def hint(self) -> str:
        """Where the newest mtime is, as words to add to a refusal shown to the owner."""
        return f" (the newest is {self.where})" if self.where and not self.trusted else ""


def check_clock(
    now: datetime,
    mark: datetime | None,
    newest_mtime: datetime | None,
    max_jump: Period,
    newest_where: str = "",
    ran: timedelta | None = None,
) -> ClockCheck:
    """Given now, the high-water mark (the latest instant archivekeeper recorded, None on a
    fresh index), the newest file or folder mtime scans saw on the volumes (None if
    nothing is indexed) and where it is, safety.max_clock_jump, and how long the machine
    really ran since the mark (the same boot's boot-time clock; None after a reboot or when
    unknown), return the verdict.

    Distrusted: more than CLOCK_TOLERANCE before the mark (the clock went back), more than
    RAN_TOLERANCE further from the mark than the machine ran (a jump while it ran: a bad NTP
    answer must not shorten the notice period or the trash retention), or more than max_jump
    after it (a jump, or a machine off that long). With no mark the newest mtime stands in, so
    a new install on a clock decades ahead is a jump too; it is only ahead of the clock past
    STAND_IN_TOLERANCE."""
    accept = "if the clock is right, run `archivekeeper clock accept`"
    if mark is not None:
        reference, what, tolerance = mark, "the last time archivekeeper recorded", CLOCK_TOLERANCE
    elif newest_mtime is not None:
        reference, tolerance = newest_mtime, STAND_IN_TOLERANCE
        what = "the newest file or folder on the volumes"
    else:
        return ClockCheck(now, None)
    shown_now = now.isoformat(timespec="seconds")
    shown_ref = reference.astimezone(now.tzinfo).isoformat(timespec="seconds")
    if now < reference - tolerance:
        return ClockCheck(now, reference, (
            f"the clock ({shown_now}) is earlier than {what} ({shown_ref}): the clock went "
            f"back; fix it, or {accept}",), newest_where if mark is None else "")
    if mark is not None and ran is not None and now - mark > ran + RAN_TOLERANCE:
        return ClockCheck(now, reference, (
            f"the clock ({shown_now}) is {_span(now - mark)} after {what} ({shown_ref}), "
            f"{_span(now - mark - ran)} more than this machine has run since then: a jump of "
            f"the clock; {accept}",))
    latest = datetime.combine(max_jump.add_to(reference.date()), reference.timetz())
    if now > latest:
        return ClockCheck(now, reference, (
            f"the clock ({shown_now}) is more than {max_jump} (safety.max_clock_jump) after "
            f"{what} ({shown_ref}): a jump of the clock, or the machine was off; {accept}",),
            newest_where if mark is None else "")
    return ClockCheck(now, reference)


def _span(delta: timedelta) -> str:
    """A duration in words, to the unit that matters: '40 days', '3 hours', '2 minutes'."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
