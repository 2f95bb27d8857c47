"""A stateful model test: random sequences of what happens in a studio (shoots and files come,
change and go, holds are added and released, the clock moves, drives are unplugged and swapped,
runs are killed at a file operation) against a real temp archive and the real commands, with
SPEC's promises checked after every step:

- nothing held, inside a keep period, announced for less than the notice period on a trusted
  clock, or on an offline volume is moved to trash or purged; nothing is purged before its trash
  retention, on a distrusted clock, or without an audit record; only `trash restore` puts a file
  back (promises 2, 3, 5, 8, the clock guard);
- `erase` deletes for good only files of the customer it names, on online volumes, on a clock
  not distrusted, that no hold keeps (in trash: that no hold reaches) and that did not change
  since the scan its preview read; with exit 0 it leaves none of those it listed; a pending
  erasure is carried out only by an apply that finds the volume back, on the customer's shoots
  dated on or before it and their trash; an erased customer's shoot dated on or before the
  erasure is due at once, keep rules and notice aside (SPEC "Erasure", promise 3);
- every file the test created is in exactly one place: in place, in the trash of its own volume,
  purged or erased (with an audit record), or deleted by the test; nothing unknown appears
  (promise 8);
- nothing outside the volume roots changes, parked drives included (promise 1);
- `audit verify` passes (promise 6); `apply`/`trash purge` on a distrusted clock exit 3; `plan`
  on one says why and shows no announcement made at a distrusted instant;
- the stored reports parse, and after an erasure none names the customer while nothing of
  theirs is left to name (promise 7);
- the real `archivekeeper daemon` (daemon_session), run at the model's clock through its
  catch-up jobs, SIGHUPs (config holds added or removed, a broken config), a drive hot-plugged,
  a file added, `hold add`, `trash restore` and `erase` from a terminal, exits 0 within 10 s
  of SIGTERM (sent sometimes just after a job started) with no traceback; each settled phase
  is checked as an apply (promise 10, and the ones above).

The model is deliberately permissive where the SPEC leaves the product room (which commands move
the clock guard's mark, which announcements an item saw): it flags only what the SPEC forbids.
Profiles (tests/safety/conftest.py): `ci` (default, >= 200 examples, derandomized) and `long`
(>= 5,000 examples: HYPOTHESIS_PROFILE=long, or `pytest -m slow tests/safety`).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from e2e.test_daemon import Daemon, Notifications
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from safety import fuzzing
from safety.harness import (
    HAS_CLOCK_ACCEPT,
    META,
    Archive,
    Ran,
    age_folders,
    iso,
    matches,
    mtime_date,
    newest_mtime,
    normalize_customer,
    noticed,
    regular_files,
    trash_files,
    tree_digest,
    write_file,
)

DAY = timedelta(days=1)
CLOCK_TOLERANCE = timedelta(minutes=5)
STAND_IN_TOLERANCE = timedelta(days=1)  # archivekeeper.core.planner.STAND_IN_TOLERANCE
MAX_CLOCK_JUMP = timedelta(days=60)  # safety.max_clock_jump's default (SPEC)
NOTICES = {"0 days": 0, "1 day": 1, "1 week": 7, "14 days": 14}
RETENTIONS = {"1 day": 1, "7 days": 7}
CUSTOMERS = ("Virtanen Matti", "Mäkinen Anna", "Korhonen Päivi")
TYPES = ("wedding", "passport", "portrait")
FILE_NAMES = ("IMG_{n}.jpg", "RAW/IMG_{n}.CR2", "JPEG/IMG_{n}.jpg", "export/web/IMG_{n}.jpg")
FILE_AGES = (0, 3, 12, 25, 45, 90, 400)  # days before now
SHOOT_AGES = (0, 5, 20, 40, 70, 400)
ADVANCE = st.sampled_from((0, 0, 1, 8, 15, 31))  # days the clock moves before a command
CLOCK_MOVES = {"+1d": DAY, "+3d": 3 * DAY, "+15d": 15 * DAY, "-1d": -DAY, "-20d": -20 * DAY,
               "+60d": 60 * DAY, "+61d": 61 * DAY, "+1y": 365 * DAY, "+30y": 10958 * DAY}
# the moves that leave the clock distrusted for the rest of an example (until `fix`) less often
CLOCK_RULE_MOVES = ("+1d", "+1d", "+3d", "+3d", "+15d", "+15d", "-1d", "-20d", "+60d", "+61d",
                    "+1y", "+30y", "fix", "fix")
HALF_MOVES = {"none": timedelta(0), "+1d": DAY, "+8d": 8 * DAY, "-3d": -3 * DAY,
              "+1y": CLOCK_MOVES["+1y"], "+30y": CLOCK_MOVES["+30y"]}
UNTIL = (None, -1, 0, 1, 10, 40, 400)  # hold end, days from today (None: no end)
PICK = st.integers(0, 10**6)  # an index into whatever list exists then
SESSION_ACTIONS = ("config_hold", "config_release", "broken_config", "hot_plug", "add_file",
                   "hold_add", "restore", "erase")  # what happens while the daemon runs

# Exploring past holes still open: ARCHIVEKEEPER_MODEL_RELAX=guard,modes leaves out the checks
# tagged so ("guard" also treats every clock as trusted). Unset, everything SPEC says is checked.
RELAXED = frozenset(filter(None, os.environ.get("ARCHIVEKEEPER_MODEL_RELAX", "").split(",")))

# What the machine did over all examples of a run: the ci test asserts deletions happened.
STATS: Counter = Counter()

shoot_specs = st.tuples(
    st.sampled_from(("studio", "studio", "backup")), st.integers(0, 2),
    st.sampled_from(CUSTOMERS), st.sampled_from(TYPES), st.sampled_from(SHOOT_AGES),
    st.lists(st.tuples(st.integers(0, len(FILE_NAMES) - 1), st.sampled_from(FILE_AGES)),
             min_size=1, max_size=3))
hold_specs = st.tuples(st.sampled_from(("customer", "shoot", "path", "path-sub", "volume")),
                       PICK, st.sampled_from(UNTIL), st.booleans())


def note(what: str) -> None:
    """hypothesis.event, also when a plain test drives the machine."""
    try:
        event(what)
    except InvalidArgument:
        pass


def fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


@dataclass
class Drive:
    name: str
    volume: str | None  # the configured volume the index registered it as
    where: Path
    park: Path
    parked_digest: str | None = None


@dataclass
class Shoot:
    drive: str
    rel: str
    customer: str
    date: date
    type: str | None
    indexed: set | None = None  # (file id, mtime_ns) the last scan that saw it indexed
    # versions an apply may have indexed since (it scans a volume before carrying out a
    # pending erasure there): what the model cannot tell, it allows
    maybe: set = field(default_factory=set)

    @property
    def key(self) -> str:
        return normalize_customer(self.customer)


@dataclass
class File:
    fid: int
    drive: str
    shoot: str
    rel: str  # relative to the volume root
    data: bytes
    mtime_ns: int
    state: str = "place"  # place | trash | purged | erased | deleted
    batch: str | None = None
    trashed_on: date | None = None
    heard: list[datetime] = field(default_factory=list)  # trusted announcing instants since
    # this content appeared (or was restored) at which its item was within the notice window
    planted: bool = False  # put in trash by the test, in place of what the product trashed


@dataclass
class Hold:
    hid: str
    scope: str
    volume: str | None
    target: str  # customer key, or folded path relative to the volume
    until: date | None

    def active(self, today: date) -> bool:
        return self.until is None or self.until >= today


class ArchiveMachine(RuleBasedStateMachine):
    def __init__(self, relaxed: frozenset | None = None):
        super().__init__()
        # not a default argument: Hypothesis seeds a derandomized run from this signature's
        # repr, and a set's repr changes with the hash seed
        self.relaxed = RELAXED if relaxed is None else relaxed
        self.tmp = Path(tempfile.mkdtemp(prefix="ak-model-"))
        self.files: dict[int, File] = {}
        self.shoots: dict[tuple[str, str], Shoot] = {}
        self.holds: dict[str, Hold] = {}
        self.config_holds: dict[str, Hold] = {}  # its entry in the config's `holds:` -> hold
        self.uses: dict[tuple[str, date, str | None], date] = {}
        self.erasures: dict[str, list[date]] = {}  # customer key -> the dates of its erasures
        self.pending: dict[str, set[tuple[str, date]]] = {}  # volume -> (key, date) waiting
        self.pending_trash: set[int] = set()  # trashed files a pending erasure took over
        self.erasing: str | None = None  # the customer key `erase` is run for
        self.symlinks: dict[Path, str] = {}
        self.twin = False
        self.setting_up = True
        self.sessions = 0  # daemon sessions run
        self.counter = 0
        self.mark_low: datetime | None = None  # instants certainly recorded (None: fresh index)
        self.mark_high: datetime | None = None  # every instant that may have been recorded
        self.mark_first: datetime | None = None  # the first instant that may have been recorded
        self.scanned_newest: datetime | None = None  # the newest mtime any finished scan saw
        real = datetime.now().astimezone()
        self.now = real.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        self.settled = self.now  # the last instant a command ran on a clock not distrusted
        past = int(real.timestamp() - 3600) * 10**9
        self.stamps = (past + i * 1000 for i in range(10**9))  # folder mtimes, unique, past

    def fail(self, problems: list[str], header: str) -> None:
        """Fail with every problem found, each tagged with the invariant it breaks."""
        problems = [p for p in problems if p[1:p.index("]")] not in self.relaxed]
        assert not problems, "\n".join([header, *problems])

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- set-up -----------------------------------------------------------------------------------
    @initialize(notice=st.sampled_from(sorted(NOTICES)), retention=st.sampled_from(
        sorted(RETENTIONS)), max_files=st.sampled_from((1000, 1000, 1000, 4)),
        fraction=st.sampled_from((1.0, 1.0, 1.0, 0.6)),
        shoots=st.lists(shoot_specs, min_size=1, max_size=4),
        spare=st.lists(shoot_specs, max_size=2), announce=st.booleans())
    def set_up(self, notice, retention, max_files, fraction, shoots, spare, announce):
        STATS["histories"] += 1
        self.notice, self.retention = NOTICES[notice], RETENTIONS[retention]
        self.max_files = max_files
        self.archive = a = Archive(self.tmp, notice=notice, retention=retention,
                                   max_files=max_files, fraction=fraction)
        self.drives = {
            "studio": Drive("studio", "studio", a.vols / "studio", a.park / "studio"),
            "backup": Drive("backup", "backup", a.vols / "backup", a.park / "backup"),
            # a foreign drive whose marker names it "backup" too, with another id
            "spare": Drive("spare", None, a.park / "spare", a.park / "spare"),
            # another drive carrying a copy of backup's marker: SPEC cannot tell it from backup
            "clone": Drive("clone", "backup", a.park / "clone", a.park / "clone"),
        }
        self.drives["spare"].where.mkdir()
        for name in ("studio", "backup", "spare"):
            d = self.drives[name]
            ran = self.cmd("volume", "init", str(d.where), "--name", d.volume or "backup")
            assert ran.code == 0, ran
        (a.park / "clone" / META).mkdir(parents=True)
        shutil.copy2(a.vols / "backup" / META / "volume.json", a.park / "clone" / META)
        self.drives["clone"].parked_digest = tree_digest(a.park / "clone")
        for spec in shoots:
            self._create_shoot(*spec)
        for spec in spare:
            self._create_shoot("spare", *spec[1:])
        self.drives["spare"].parked_digest = tree_digest(self.drives["spare"].where)
        self.setting_up = False
        # the sentinel: a tree outside the volumes, reached from inside by symlinks
        write_file(a.outside / "secret.jpg", b"outside", 10**18)
        write_file(a.outside / "2020-01-01 Outside Person" / "IMG_1.jpg", b"out", 10**18)
        self._plant(a.vols / "studio" / "2020-01-02 Linked Person",
                    str(a.outside / "2020-01-01 Outside Person"))
        self.outside_digest = tree_digest(a.outside)
        self.scan(False, 0)
        if announce:
            self.plan(0)

    # -- the clock guard, as SPEC says -------------------------------------------------------------
    def distrusted(self, at: datetime) -> bool:
        """Certainly distrusted: before the lowest mark the product may hold, or more than the
        jump after the highest one. Between those the product may go either way."""
        if "guard" in self.relaxed:
            return False
        low, tolerance = self.mark_low, CLOCK_TOLERANCE
        if low is None:  # fresh index: the newest mtime scans saw stands in, ahead of the clock
            # past a day only (FAT drives keep local time; docs/concepts.md "Fresh index"); with
            # nothing scanned there is nothing to judge by (the long run of 2026-12-01 found the
            # model expecting SPEC's 5 minutes on mtimes no scan had seen: test_model_found.py)
            low, tolerance = self.scanned_newest, STAND_IN_TOLERANCE + CLOCK_TOLERANCE
        if low is not None and at < low - tolerance:
            # on a fresh index the product may already hold a mark (a command on a trusted
            # clock may have recorded its instant); judged by the lowest it may hold, the clock
            # may be trusted (the long run of 2026-12-01 found the model letting mtimes of a
            # clock 30 years ahead stand in for a held mark: test_model_found.py)
            if self.mark_low is None and self.mark_first is not None \
                    and at >= self.mark_first - CLOCK_TOLERANCE:
                return False
            return True
        return self.mark_high is not None and at > self.mark_high + MAX_CLOCK_JUMP

    def cmd(self, *args: str, records: bool = False) -> Ran:
        """Run a command at self.now; a command on a trusted clock may move the mark, one that
        certainly records an instant (a change, a hold, a use) does."""
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.archive.run(at, *args)
        self._ran(at, distrusted, ran, records)
        return ran

    def _ran(self, at: datetime, distrusted: bool, ran: Ran, records: bool) -> None:
        if distrusted:
            STATS["commands on a distrusted clock"] += 1
            return
        self.settled = at
        self.mark_high = max(self.mark_high or at, at)
        self.mark_first = min(self.mark_first or at, at)
        if records and ran.code == 0:
            self.mark_low = max(self.mark_low or at, at)

    def advance(self, days: int) -> None:
        self.now += days * DAY

    # -- facts --------------------------------------------------------------------------------------
    def online(self, drive: Drive) -> bool:
        """SPEC: online only with the recorded marker id, and no other path carrying it (the
        twin is a copy of studio's marker at the backup path: both are offline then)."""
        return (drive.volume is not None and not self.twin
                and drive.where == self.archive.volume_path(drive.volume))

    def shoot_of(self, f: File) -> Shoot:
        return self.shoots[(f.drive, f.shoot)]

    def dates(self, shoot: Shoot) -> dict[int, date]:
        """The date each file of the shoot becomes deletable by the rules (holds aside), from
        what the index can know: files it saw at the last scan that are still as they were.
        Fewer files mean an earlier or equal date, so this never makes the model stricter
        than the product."""
        known = (shoot.indexed or set()) | shoot.maybe
        view = [f for f in self.files.values()
                if f.drive == shoot.drive and f.shoot == shoot.rel and f.state == "place"
                and (f.fid, f.mtime_ns) in known]
        erased_on = self.erased_on(shoot)
        modified = max((mtime_date(f.mtime_ns) for f in view), default=shoot.date)
        used = [self.uses.get((shoot.key, shoot.date, shoot.type))]
        last_used = max([shoot.date, modified, *(u for u in used if u)])
        out = {}
        for f in view:
            due = last_used + 30 * DAY
            if f.rel.casefold().endswith(".cr2"):
                due = min(due, modified + 20 * DAY)
            if shoot.type == "passport":
                due = min(due, shoot.date + 10 * DAY)
            if shoot.type == "wedding":
                due = max(due, shoot.date + 60 * DAY)
            if erased_on is not None:  # an erasure record overrides every rule, keep too
                due = erased_on
            out[f.fid] = due
        return out

    def erased_on(self, shoot: Shoot) -> date | None:
        """SPEC: a shoot of an erased customer dated on or before an erasure is due at once
        (the earliest such erasure's date), without notice."""
        return min((on for on in self.erasures.get(shoot.key, ()) if on >= shoot.date),
                   default=None)

    def holding(self, f: File, today: date) -> list[Hold]:
        shoot, volume = self.shoot_of(f), self.drives[f.drive].volume
        out = []
        for h in self.all_holds():
            if not h.active(today):
                continue
            if h.scope == "customer":
                hit = h.target == shoot.key
            elif h.volume != volume:
                hit = False
            elif h.scope == "shoot":
                hit = h.target == fold(shoot.rel)
            else:
                rel = fold(f.rel)
                hit = h.target in ("", rel) or rel.startswith(h.target + "/")
            if hit:
                out.append(h)
        return out

    def all_holds(self) -> list[Hold]:
        return [*self.holds.values(), *self.config_holds.values()]

    def live(self) -> list[File]:
        return [f for f in self.files.values() if f.state in ("place", "trash")]

    def heard_now(self, at: datetime) -> None:
        """A plan or apply announced at `at` on a clock not distrusted: every indexed file whose
        item is within the notice window may have been announced then."""
        for shoot in self.shoots.values():
            for fid, when in self.dates(shoot).items():
                if when - self.notice * DAY <= at.date():
                    self.files[fid].heard.append(at)

    # -- checking a step ----------------------------------------------------------------------------
    def check(self, step: str, at: datetime, distrusted: bool, *, restoring=None) -> None:
        """Compare the tree with the model after a command that ran at `at`."""
        place, trash = {}, {}
        for d in self.drives.values():
            place[d.name] = regular_files(d.where, skip_meta=True) if d.where.is_dir() else {}
            trash[d.name] = trash_files(d.where) if d.where.is_dir() else {}
        found: dict[int, list[str | None]] = {}
        for f in self.live():
            top = self.drives[f.drive].where
            here = [None] if matches(top / f.rel, f.data, f.mtime_ns) else []
            here += [b for (b, rel), p in trash[f.drive].items()
                     if rel == f.rel and matches(p, f.data, f.mtime_ns)]
            found[f.fid] = here
        problems = []
        dates = {}
        for shoot in self.shoots.values():
            dates.update(self.dates(shoot))
        records = self.archive.audit_records()
        purge_batches = {r.get("batch") for r in records if r.get("event") == "purge"}
        erasing_at = {datetime.fromisoformat(r["time"]) for r in records
                      if r.get("event", "").startswith("erase")}
        moves = 0
        changes = []
        for f in self.live():
            here, what = found[f.fid], f"{f.drive}:{f.rel} (file {f.fid})"
            if len(here) > 1:
                problems.append(f"[two-places] {what} is in {here} (None = in place)")
                continue
            now_at = here[0] if here else "gone"
            if f.state == "place" and now_at is None:
                continue
            if f.state == "trash" and now_at == f.batch:
                continue
            if f.state == "place" and now_at == "gone":
                why = self.why_not_erase(f, at, distrusted, step, erasing_at)
                if why:
                    problems.append(f"[{'erase' if step == 'erase' else 'vanished'}] {what} "
                                    f"left its place without going to trash ({step}: {why})")
                changes.append((f, "erased", None))
            elif f.state == "place":
                moves += 1
                why = self.why_not_move(f, at, distrusted, dates.get(f.fid), step)
                if why:
                    problems.append(f"[move] {what} moved to trash {now_at} by {step}: {why}")
                changes.append((f, "trash", now_at))
            elif f.planted:
                problems.append(f"[trash-compare] {what}, put "
                                f"in trash {f.batch} by hand in place of what the product "
                                f"trashed, was {'purged' if now_at == 'gone' else 'moved'} "
                                f"by {step} without being compared")
                changes.append((f, "purged" if now_at == "gone" else "place", now_at))
            elif now_at == "gone":
                why, state = self.why_not_purge(f, at, distrusted, purge_batches), "purged"
                if why and (step == "erase" or step.startswith("apply")):
                    also = self.why_not_erase(f, at, distrusted, step, erasing_at)
                    why, state = ("", "erased") if not also else (f"{why}; erased: {also}",
                                                                  state)
                if why:
                    problems.append(f"[purge] {what} purged from trash {f.batch} by {step}: "
                                    f"{why}")
                changes.append((f, state, None))
            elif now_at is None:
                if restoring is None or (self.drives[f.drive].volume, f.shoot) != restoring:
                    problems.append(f"[restore] {what} came back from trash by {step}, which "
                                    f"does not restore it (restoring {restoring})")
                changes.append((f, "place", None))
            else:
                problems.append(f"[trash-moved] {what} moved from trash {f.batch} to {now_at}")
        if step.startswith("apply") and moves > self.max_files:
            problems.append(f"[limit] {step} moved {moves} files, max_files_per_run is "
                            f"{self.max_files}")
        for f, state, batch in changes:
            what = {"trash": "files moved to trash", "purged": "files purged",
                    "place": "files restored", "erased": "files erased"}[state]
            STATS[what] += 1
            if "daemon" in step:
                STATS[f"{what} by the daemon"] += 1
            if state == "erased" and step != "erase":
                STATS["files erased by a pending erasure"] += 1
            f.state, f.batch = state, batch
            if state == "trash":
                f.trashed_on = at.date()
                # the index forgets a trashed file; a restored one is indexed by the next scan
                (self.shoot_of(f).indexed or set()).discard((f.fid, f.mtime_ns))
            if state == "place":
                f.heard = []  # SPEC: a restored item's announcement starts again
        problems += self.unknown_files(place, trash)
        problems += self.state_modes()
        problems += self.outside_changes()
        problems += self.report_problems()
        verify = self.archive.run(at, "audit", "verify")
        self._ran(at, self.distrusted(at), verify, False)
        if verify.code != 0:
            problems.append(f"[audit] {verify}")
        self.fail(problems, f"after {step} at {at.isoformat()}:")

    def why_not_move(self, f: File, at: datetime, distrusted: bool, due: date | None,
                     step: str) -> str:
        why = []
        if not step.startswith("apply"):
            why.append("only apply moves files to trash")
        if distrusted:
            why.append("the clock guard distrusts the clock")
        if not self.online(self.drives[f.drive]):
            why.append("its volume is offline")
        held = self.holding(f, at.date())
        if held:
            why.append(f"held by {[h.hid for h in held]}")
        if due is None or due > at.date():
            why.append(f"not due until {due}")
        if self.notice and self.erased_on(self.shoot_of(f)) is None and not any(
                noticed(a, at, self.notice) for a in f.heard):
            why.append(f"not announced {self.notice} days before (announced at "
                       f"{[a.isoformat() for a in f.heard]})")
        return "; ".join(why)

    def why_not_purge(self, f: File, at: datetime, distrusted: bool, batches: set) -> str:
        why = []
        if distrusted:
            why.append("the clock guard distrusts the clock")
        if not self.online(self.drives[f.drive]):
            why.append("its volume is offline")
        held = self.holding(f, at.date())
        if held:
            why.append(f"held by {[h.hid for h in held]}")
        if at.date() < f.trashed_on + self.retention * DAY:
            why.append(f"trashed on {f.trashed_on}, retention {self.retention} days")
        if f.batch not in batches:
            why.append("no purge record for its batch in the audit log")
        return "; ".join(why)

    def why_not_erase(self, f: File, at: datetime, distrusted: bool, step: str,
                      erasing_at: set) -> str:
        """Why the file may not be deleted for good by this step (SPEC "Erasure"): only `erase`
        of its customer, or an apply carrying out a pending erasure of its customer on its
        volume (of shoots dated on or before it, and their trash), erases; never on a distrusted
        clock or an offline volume, never what a hold keeps (in trash: what a hold reaches).
        Both scan first, so a file added or changed since the last scan goes too."""
        shoot, drive = self.shoot_of(f), self.drives[f.drive]
        why = []
        if step == "erase":
            # `erase --yes` scans the online volumes first: what is there now is erased
            if shoot.key != self.erasing:
                why.append(f"`erase` of {self.erasing!r}, not of its customer")
        elif step.startswith("apply"):  # the apply scans the volume first: no preview
            if not any(key == shoot.key and (f.state == "trash" or shoot.date <= on)
                       for key, on in self.pending.get(drive.volume or "", ())):
                why.append("no pending erasure of its customer on its volume")
        else:
            why.append("only `erase`, or an apply carrying out a pending erasure, erases")
        if distrusted:
            why.append("the clock guard distrusts the clock")
        if not self.online(drive):
            why.append("its volume is offline")
        if (self.holding(f, at.date()) if f.state == "place" else self.reaching(f, at.date())):
            why.append("a hold keeps it")
        if at not in erasing_at:
            why.append("no erasure record in the audit log")
        return "; ".join(why)

    def unknown_files(self, place, trash) -> list[str]:
        problems = []
        for d in self.drives.values():
            known = {f.rel for f in self.live() if f.drive == d.name and f.state == "place"}
            for rel in place[d.name]:
                if rel not in known:
                    problems.append(f"[unknown] {d.name}:{rel} appeared")
            trashed = {(f.batch, f.rel) for f in self.live()
                       if f.drive == d.name and f.state == "trash"}
            for key in trash[d.name]:
                if key not in trashed:
                    problems.append(f"[unknown] {d.name}: trash {key} holds a file the test "
                                    "did not put there")
        return problems

    def report_problems(self) -> list[str]:
        """The stored reports (the daemon's report job) parse: each JSON beside its HTML and
        text. After an erasure no file in report.dir names the customer (promise 7), unless
        something of theirs is still there to be named: a hold on them or on a shoot of
        theirs, a file of theirs in place or in trash (on a drive offline at the erasure, or
        dated after it), a symlink named for them."""
        folder = self.archive.state / "reports"
        if not folder.is_dir():
            return []
        problems, texts = [], {}
        for path in sorted(folder.iterdir()):
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            texts[path.name] = html.unescape(text)
            if path.suffix == ".json" and not path.name.startswith("."):
                try:
                    texts[path.name] = json.dumps(json.loads(text), ensure_ascii=False)
                except ValueError as exc:
                    problems.append(f"[report] {path.name} does not parse: {exc}")
                if {path.with_suffix(".html").exists(), path.with_suffix(".txt").exists()} \
                        != {True}:
                    problems.append(f"[report] {path.name} has no HTML or text beside it")
        for key in self.erasures:
            if self.still_named(key):
                continue
            word = re.compile(rf"(?<!\w){re.escape(key)}(?!\w)")
            problems += [f"[report] {name} names {key!r}, erased on {self.erasures[key]}"
                         for name, text in texts.items()
                         if word.search(normalize_customer(text))]
        return problems

    def still_named(self, key: str) -> bool:
        shoots = [fold(s.rel) for s in self.shoots.values() if s.key == key]
        return (any(self.shoot_of(f).key == key for f in self.live())
                or any(key in normalize_customer(str(link)) for link in self.symlinks)
                or any(h.target == key if h.scope == "customer" else any(
                    t.startswith(h.target) or h.target.startswith(t) for t in shoots)
                    for h in self.all_holds()))

    def state_modes(self) -> list[str]:
        """SPEC: state_dir 0700, every file in it 0600, whichever command came first."""
        state = self.archive.state
        if not state.exists():
            return []
        paths = [state, *(p for p in state.iterdir() if p.is_file())]
        return [f"[modes] {p} is {oct(p.stat().st_mode & 0o777)}" for p in paths
                if p.stat().st_mode & 0o077]

    def outside_changes(self) -> list[str]:
        problems = []
        if tree_digest(self.archive.outside) != self.outside_digest:
            problems.append("[outside] the sentinel tree outside the volumes changed")
        for d in self.drives.values():
            if d.parked_digest is not None and d.where == d.park:
                if tree_digest(d.where) != d.parked_digest:
                    problems.append(f"[outside] unplugged drive {d.name} changed while parked")
        foreign = [self.drives["spare"].where] + ([self.archive.volume_path("backup")]
                                                  if self.twin else [])
        for top in foreign:  # never online: nothing may be written there, trash included
            if sorted(os.listdir(top / META)) != ["volume.json"]:
                problems.append(f"[outside] {top}/{META} of a foreign drive now holds "
                                f"{sorted(os.listdir(top / META))}")
        expected = {"studio"} | ({"backup"} if self.slot() != "empty" else set())
        if set(os.listdir(self.archive.vols)) != expected:
            problems.append(f"[outside] {self.archive.vols} holds {os.listdir(self.archive.vols)}")
        for link, target in self.symlinks.items():  # all on studio, which is never parked
            if not link.is_symlink() or os.readlink(link) != target:
                problems.append(f"[outside] symlink {link} was removed or changed")
        return problems

    # -- files --------------------------------------------------------------------------------------
    def _mtime_ns(self, age_days: int) -> int:
        self.counter += 1  # unique per version: a file's identity is its content and mtime
        return int((self.now - age_days * DAY).timestamp()) * 10**9 + self.counter * 1000

    def _content(self) -> bytes:
        self.counter += 1
        return f"{self.counter}|".encode() * (1 + self.counter % 7)

    def _put(self, drive: str, shoot: Shoot, name: str, age: int) -> None:
        rel = f"{shoot.rel}/{name}"
        if any(f.drive == drive and f.rel == rel and f.state == "place"
               for f in self.files.values()):
            return
        f = File(len(self.files), drive, shoot.rel, rel, self._content(), self._mtime_ns(age))
        path = self.drives[drive].where / rel
        tmp = path.parent / f".{path.name}.new"
        write_file(tmp, f.data, f.mtime_ns)
        os.rename(tmp, path)  # a new entry, so the quick scan sees its folder changed
        self.files[f.fid] = f
        if self.mark_low is None:  # on a fresh index the newest mtime stands in for the mark
            at = datetime.fromtimestamp(f.mtime_ns / 1e9).astimezone()
            self.mark_high = max(self.mark_high or at, at)

    def _create_shoot(self, drive, pattern, customer, type_, age, files) -> None:
        day = self.now.date() - age * DAY
        if pattern == 0:
            rel, type_ = f"{day:%Y-%m-%d} {customer}", None
        elif pattern == 1:
            rel = f"{day:%Y%m%d}_{customer.replace(' ', '_')}_{type_}"
        else:
            rel = f"{customer}/{day:%d.%m.%Y} {type_}"
        if not self.reachable(drive) or (self.drives[drive].where / rel).is_symlink():
            return
        shoot = self.shoots.get((drive, rel))
        if shoot is None:
            shoot = self.shoots[(drive, rel)] = Shoot(drive, rel, customer, day, type_)
        n = len(self.files)
        for name, file_age in files:
            self._put(drive, shoot, FILE_NAMES[name].format(n=n), file_age)

    def through_symlink(self, drive: str, rel: str) -> bool:
        """Would writing at rel go through a symlink (a shoot swapped for one)?"""
        parts = Path(rel).parts
        return any((self.drives[drive].where / Path(*parts[:n])).is_symlink()
                   for n in range(1, len(parts)))

    def reachable(self, drive: str) -> bool:
        """The test changes files only on a drive in a volume slot (a parked drive is
        elsewhere, and must stay as it was)."""
        d = self.drives[drive]
        return d.where != d.park or self.setting_up

    def _plant(self, link: Path, target: str) -> None:
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
        self.symlinks[link] = target

    def in_place(self) -> list[File]:
        return [f for f in self.files.values() if f.state == "place" and self.reachable(f.drive)]

    @rule(spec=shoot_specs)
    def create_shoot(self, spec):
        drive = spec[0] if spec[0] == "studio" or self.slot() not in ("spare", "clone") \
            else self.slot()
        self._create_shoot(drive, *spec[1:])

    @rule(pick=PICK, name=st.integers(0, len(FILE_NAMES) - 1), age=st.sampled_from(FILE_AGES))
    def add_file(self, pick, name, age):
        shoots = [s for s in self.shoots.values() if self.folder(s)]
        if shoots:
            shoot = shoots[pick % len(shoots)]
            self._put(shoot.drive, shoot, FILE_NAMES[name].format(n=len(self.files)), age)

    @rule(pick=PICK, age=st.sampled_from(FILE_AGES))
    def modify_file(self, pick, age):
        files = self.in_place()
        if not files:
            return
        f = files[pick % len(files)]
        f.data, f.mtime_ns, f.heard = self._content(), self._mtime_ns(age), []
        path = self.drives[f.drive].where / f.rel
        write_file(path.parent / f".{path.name}.new", f.data, f.mtime_ns)
        os.rename(path.parent / f".{path.name}.new", path)

    @rule(pick=PICK)
    def delete_file(self, pick):
        files = self.in_place()
        if files:
            f = files[pick % len(files)]
            os.unlink(self.drives[f.drive].where / f.rel)
            f.state = "deleted"

    @rule(pick=PICK)
    def delete_shoot(self, pick):
        shoots = [s for s in self.shoots.values() if self.folder(s)]
        if not shoots:
            return
        s = shoots[pick % len(shoots)]
        s.indexed = None
        shutil.rmtree(self.drives[s.drive].where / s.rel)
        for f in self.files.values():
            if f.drive == s.drive and f.shoot == s.rel and f.state == "place":
                f.state = "deleted"
        gone = self.drives[s.drive].where / s.rel
        for link in [p for p in self.symlinks if p.is_relative_to(gone)]:
            del self.symlinks[link]

    def trashed(self) -> list[File]:
        return [f for f in self.files.values() if f.state == "trash" and not f.planted
                and self.reachable(f.drive)]

    @rule(pick=PICK, age=st.sampled_from(FILE_AGES))
    def recreate_file(self, pick, age):
        """A new file where a trashed one was (a re-export): a restore must not overwrite it."""
        files = [f for f in self.trashed() if not (self.drives[f.drive].where / f.rel).exists()
                 and not self.through_symlink(f.drive, f.rel)]
        if files:
            f = files[pick % len(files)]
            shoot = self.shoot_of(f)
            self._put(f.drive, shoot, f.rel[len(shoot.rel) + 1:], age)

    @rule(pick=PICK, age=st.sampled_from(FILE_AGES))
    def tamper_with_trash(self, pick, age):
        """Another file in place of a trashed one: purge and restore must compare what they
        find with what was trashed (size, mtime, inode), as apply does."""
        files = self.trashed()
        if not files:
            return
        f = files[pick % len(files)]
        path = self.drives[f.drive].where / META / "trash" / f.batch / f.rel
        g = File(len(self.files), f.drive, f.shoot, f.rel, self._content(), self._mtime_ns(age),
                 "trash", f.batch, f.trashed_on, planted=True)
        write_file(path.parent / ".tampered", g.data, g.mtime_ns)
        os.rename(path.parent / ".tampered", path)
        f.state = "deleted"
        self.files[g.fid] = g

    @rule(pick=PICK)
    def plant_symlink(self, pick):
        """A file in a shoot that is a symlink to the sentinel tree: never followed."""
        shoots = [s for s in self.shoots.values() if s.drive == "studio" and self.folder(s)]
        if shoots:
            s = shoots[pick % len(shoots)]
            link = self.drives["studio"].where / s.rel / f"JPEG/link_{self.counter}.jpg"
            self.counter += 1
            self._plant(link, str(self.archive.outside / "secret.jpg"))

    @rule(pick=PICK)
    def swap_shoot_for_symlink(self, pick):
        """Move a shoot folder out of the volume and leave a symlink to it in its place (done
        by hand, or by an attacker racing a run): what is behind the link is outside now."""
        shoots = [s for s in self.shoots.values() if s.drive == "studio" and self.folder(s)]
        if not shoots:
            return
        s = shoots[pick % len(shoots)]
        path = self.drives["studio"].where / s.rel
        self.counter += 1
        moved = self.archive.outside / f"moved-{self.counter}"
        os.rename(path, moved)
        for link in [p for p in self.symlinks if p.is_relative_to(path)]:
            del self.symlinks[link]
        self._plant(path, str(moved))
        for f in self.files.values():
            if f.drive == "studio" and f.shoot == s.rel and f.state == "place":
                f.state = "deleted"  # gone from the volume, part of the sentinel tree now
        self.outside_digest = tree_digest(self.archive.outside)
        s.indexed = None

    def folder(self, s: Shoot) -> Path | None:
        """The shoot's folder if it is a real directory the test may change now."""
        path = self.drives[s.drive].where / s.rel
        real = path.is_dir() and not any(p.is_symlink() for p in (path, path.parent))
        return path if real and self.reachable(s.drive) else None

    # -- holds and uses ---------------------------------------------------------------------------
    def _add_hold(self, spec, among: list[Shoot] | None = None) -> None:
        scope, pick, until, force = spec
        shoots = among or list(self.shoots.values())
        if not shoots:
            return
        s = shoots[pick % len(shoots)]
        volume = self.drives[s.drive].volume or "backup"
        args = ["hold", "add", "--kind", "invoice", "--reason", "model"]
        target = fold(s.rel)
        if scope == "customer":
            spellings = (s.customer, s.customer.upper(), s.customer.replace(" ", "_"),
                         unicodedata.normalize("NFD", s.customer))
            args += ["--customer", spellings[pick % len(spellings)]]
            target, volume = s.key, None
        elif scope == "shoot":
            args += ["--shoot", f"{volume}:{s.rel}"]
        elif scope == "path":
            args += ["--path", f"{volume}:{s.rel}"]
        elif scope == "path-sub":  # the shoot's RAW folder, or the customer folder holding it
            sub = s.rel.split("/")[0] if "/" in s.rel else f"{s.rel}/RAW"
            args += ["--path", f"{volume}:{sub}"]
            target = fold(sub)
        else:  # the whole volume
            args += ["--path", f"{volume}:"]
            target = ""
        until_day = None if until is None else self.now.date() + until * DAY
        if until_day is not None:
            args += ["--until", until_day.isoformat()]
        if force:
            args.append("--force")
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd(*args, records=True)
        if ran.code == 0:
            hid = ran.out.split()[1]
            self.holds[hid] = Hold(hid, "customer" if scope == "customer" else
                                   "shoot" if scope == "shoot" else "path",
                                   volume, target, until_day)
            STATS["holds added"] += 1
            note(f"hold {scope} until {until}")
        self.check("hold add", at, distrusted)

    @rule(spec=hold_specs)
    def add_hold(self, spec):
        self._add_hold(spec)

    @rule(pick=PICK)
    def release_hold(self, pick):
        if not self.holds:
            return
        hid = sorted(self.holds)[pick % len(self.holds)]
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd("hold", "release", hid, records=True)
        # an erasure deletes the closed holds naming its customer: an ended one may be gone
        # (found by the long run: a customer hold ended 6 days before that customer's erasure)
        gone = (ran.code == 1 and "no active hold" in ran.err
                and not self.holds[hid].active(self.now.date()))
        assert ran.code == 0 or gone, f"[hold] an active hold could not be released: {ran}"
        del self.holds[hid]
        self.check("hold release", at, distrusted)

    @rule(by_customer=st.booleans(), pick=PICK, advance=ADVANCE)
    def touch(self, by_customer, pick, advance):
        shoots = list(self.shoots.values())
        if not shoots:
            return
        self.advance(advance)
        s = shoots[pick % len(shoots)]
        at, distrusted = self.now, self.distrusted(self.now)
        target = (["--customer", s.customer] if by_customer else
                  ["--shoot", f"{self.drives[s.drive].volume or 'backup'}:{s.rel}"])
        ran = self.cmd("touch", *target, "--reason", "re-order", records=True)
        if ran.code == 0 and not distrusted:
            # only the copies the index certainly knows: a use the model misses makes it
            # permissive, one it invents would make it stricter than the product
            # (a shoot all of whose files went to trash left the index until a restore or a
            # scan finds it again)
            touched = ([x for x in shoots if x.key == s.key and x.indexed] if by_customer
                       else [s])
            for x in touched:
                key = (x.key, x.date, x.type)
                self.uses[key] = max(self.uses.get(key, at.date()), at.date())
        self.check("touch", at, distrusted)

    # -- the clock ------------------------------------------------------------------------------
    @rule(move=st.sampled_from(CLOCK_RULE_MOVES))
    def move_clock(self, move):
        """A wrong clock (a dead CMOS battery, a bad NTP answer), or real time passing; `fix`
        sets it right again (just after the last command a trusted clock ran)."""
        self.set_clock(self.settled + timedelta(hours=1) if move == "fix" else
                       self.now + CLOCK_MOVES[move])
        note(f"clock {move}")

    def set_clock(self, at: datetime) -> None:
        """With the guard's checks left out, the clock only goes forward: going back is what
        the guard is for (a purge finished on a clock set back is issue 8's defect 2)."""
        self.now = max(at, self.now) if "guard" in self.relaxed else at

    @precondition(lambda self: HAS_CLOCK_ACCEPT)
    @rule()
    def accept_clock(self):
        at = self.now
        ran = self.archive.run(at, "clock", "accept")
        if ran.code == 0:  # SPEC: the present time is right; the mark may not be lower
            self.mark_low, self.settled = at, at
            self.mark_high = max(self.mark_high or at, at)
            STATS["clock accepted"] += 1
        self.check("clock accept", at, False)

    # -- drives -----------------------------------------------------------------------------------
    @rule(occupant=st.sampled_from(("empty", "backup", "spare", "twin", "clone")))
    def set_backup_slot(self, occupant):
        """Unplug the backup drive, plug it back, plug a foreign drive whose marker also says
        "backup", a folder holding a copy of studio's marker (two paths, one id), or a drive
        with a copy of backup's marker (a clone: online as backup, by SPEC)."""
        slot = self.archive.volume_path("backup")
        current = self.slot()
        if current == occupant:
            return
        if current == "twin":
            shutil.rmtree(slot)
            self.twin = False
        elif current != "empty":
            d = self.drives[current]
            os.rename(slot, d.park)
            d.where, d.parked_digest = d.park, tree_digest(d.park)
        if occupant == "twin":
            (slot / META).mkdir(parents=True)
            shutil.copy2(self.drives["studio"].where / META / "volume.json",
                         slot / META / "volume.json")
            self.twin = True
        elif occupant != "empty":
            d = self.drives[occupant]
            os.rename(d.park, slot)
            d.where, d.parked_digest = slot, None
        note(f"backup slot: {occupant}")

    def slot(self) -> str:
        if self.twin:
            return "twin"
        slot = self.archive.volume_path("backup")
        return next((d.name for d in self.drives.values() if d.where == slot), "empty")

    # -- commands ---------------------------------------------------------------------------------
    def let_folders_age(self) -> None:
        for d in self.drives.values():
            if d.where != d.park and d.where.is_dir():
                age_folders(d.where, self.stamps)

    @rule(full=st.booleans(), advance=ADVANCE)
    def scan(self, full, advance):
        self.advance(advance)
        self.let_folders_age()
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd("scan", *(["--full"] if full else []))
        assert ran.code in (0, 1), ran  # 1: the fixed volume is offline
        self.check("scan", at, distrusted)
        self.scanned(at)
        problems = self.index_problems()
        self.fail(problems, f"after scan at {at.isoformat()}:")

    def scanned(self, at: datetime, volume: str | None = None) -> None:
        """What the index knows after a scan at `at` of every online volume (or of one)."""
        seen = [newest_mtime(d.where) for d in self.drives.values() if self.online(d)]
        self.scanned_newest = max([m for m in [*seen, self.scanned_newest] if m], default=None)
        for s in self.shoots.values():
            if volume is not None and self.drives[s.drive].volume != volume:
                continue
            if not self.online(self.drives[s.drive]):
                if any(self.online(d) and d.volume == self.drives[s.drive].volume
                       for d in self.drives.values()):
                    s.indexed = None  # missing on the drive plugged in as its volume now
                continue
            self._scanned_shoot(s, at)

    def _scanned_shoot(self, s: Shoot, at: datetime) -> None:
        """What the index knows of an online shoot after a scan of its folder at `at`."""
        s.maybe = set()
        if self.folder(s) and s.date <= at.date() + DAY:
            s.indexed = {(f.fid, f.mtime_ns) for f in self.files.values()
                         if f.drive == s.drive and f.shoot == s.rel and f.state == "place"}
        elif self.folder(s) and self.mark_high is not None and at < self.mark_high \
                and s.date <= self.mark_high.date() + DAY:
            # a clock behind the mark: the product judges a folder date plausible up to the
            # mark (ops.scan_instants), and keeps a shoot it had (found by the long run: a
            # shoot dated after the clock, indexed before it went back, was announced)
            pass
        else:
            s.indexed = None

    def index_problems(self) -> list[str]:
        """After a scan, quick or full, the index knows every shoot on an online volume as it
        is on disk (the test changes folders only by adding, renaming and removing entries,
        which a quick scan must see)."""
        rows = {(r["volume"], r["path"]): r for r in self.cmd("shoots", "--json").json()["shoots"]}
        problems = []
        for s in self.shoots.values():
            folder = self.folder(s)
            if s.indexed is None or not self.online(self.drives[s.drive]) or folder is None \
                    or any(p.is_relative_to(folder) for p in self.symlinks):
                continue
            files = [f for f in self.files.values()
                     if f.drive == s.drive and f.shoot == s.rel and f.state == "place"]
            row = rows.get((self.drives[s.drive].volume, s.rel))
            found = row and (row["state"], row["files"], row["bytes"], row["date"], row["type"])
            on_disk = ("online", len(files), sum(len(f.data) for f in files), s.date.isoformat(),
                       s.type)
            if found != on_disk:
                problems.append(f"[index] {self.drives[s.drive].volume}:{s.rel} is indexed as "
                                f"{found}, on disk {on_disk}")
        foreign = {s.rel for s in self.shoots.values() if s.drive == "spare"} - {
            s.rel for s in self.shoots.values() if s.drive in ("backup", "clone")}
        problems += [f"[index] the foreign drive's {rel} was indexed as backup:{rel}"
                     for rel in foreign if ("backup", rel) in rows]
        return problems

    @rule(advance=ADVANCE)
    def plan(self, advance):
        self.advance(advance)
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.archive.run(at, "plan", "--json")
        assert ran.code == 0, ran
        doc = ran.json()
        stored = any(i["announced_at"] and datetime.fromisoformat(i["announced_at"]) == at
                     for i in doc["items"])
        self._ran(at, distrusted, ran, records=stored)
        if not distrusted:
            self.heard_now(at)
        problems = []
        if distrusted and not any("clock" in w for w in doc["warnings"]):
            problems.append("[guard] plan on a distrusted clock does not say why in warnings: "
                            f"{doc['warnings']}")
        for item in doc["items"]:
            problems += self.announcement_problems(item)
        self.fail(problems, f"plan at {at.isoformat()}:")
        self.check("plan", at, distrusted)

    def announcement_problems(self, item: dict) -> list[str]:
        """An item's announced_at must be an instant at which a plan or apply on a clock not
        distrusted saw its files, as they are now, within the notice window."""
        if not item["announced_at"]:
            return []
        announced = datetime.fromisoformat(item["announced_at"])
        shoots = [self.shoots[(d.name, item["path"])] for d in self.drives.values()
                  if d.volume == item["volume"] and (d.name, item["path"]) in self.shoots]
        files = [self.files[fid] for shoot in shoots for fid, when in self.dates(shoot).items()
                 if when.isoformat() == item["date"]]
        if not files or any(announced in f.heard for f in files):
            return []
        return [f"[announce] {item['volume']}:{item['path']} ({item['status']}, date "
                f"{item['date']}) shows announced_at {announced.isoformat()}: no plan or apply "
                "on a trusted clock saw it then (its files were seen at "
                f"{sorted({a.isoformat() for f in files for a in f.heard})})"]

    @rule(advance=ADVANCE)
    def apply(self, advance):
        self.advance(advance)
        at, distrusted = self.now, self.distrusted(self.now)
        self.pending_scan()
        ran = self.cmd("apply", records=True)
        self.after_apply(ran, at, distrusted, "apply")

    def after_apply(self, ran: Ran, at: datetime, distrusted: bool, step: str) -> None:
        if distrusted and ran.code not in ((3, -9) if "killed" in step else (3,)):
            self.fail([f"[guard] apply on a distrusted clock did not refuse: {ran}"], at.isoformat())
        if not distrusted:
            self.heard_now(at)
        if distrusted and ran.code == 3:
            self.assert_refusal_audited(at, step)
        if ran.code == 3:
            STATS["apply refused"] += 1
        self.check(step, at, distrusted)

    @rule(advance=ADVANCE)
    def purge(self, advance):
        self.advance(advance)
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd("trash", "purge", records=True)
        if distrusted and ran.code != 3:
            self.fail([f"[guard] purge on a distrusted clock did not refuse: {ran}"], at.isoformat())
        if distrusted and ran.code == 3:
            self.assert_refusal_audited(at, "trash purge")
        self.check("trash purge", at, distrusted)
        if ran.code == 0:
            self.fail(self.kept_past_retention(at), f"after trash purge at {at.isoformat()}:")

    def kept_past_retention(self, at: datetime) -> list[str]:
        """SPEC: trash is purged for good after trash_retention (keeping personal data past
        its lifetime is the second worst failure): what a purge that ran leaves behind must
        be unexpired, held (anything reaching its shoot), or on a volume offline now."""
        problems = []
        for f in self.files.values():
            if (f.state != "trash" or f.planted or not self.online(self.drives[f.drive])
                    or f.fid in self.pending_trash):  # out of the index, for the erasure
                continue
            if at.date() < f.trashed_on + self.retention * DAY or self.reaching(f, at.date()):
                continue
            problems.append(f"[retention] {f.drive}:{f.rel} (file {f.fid}) trashed on "
                            f"{f.trashed_on} is still in trash {f.batch}")
        return problems

    def reaching(self, f: File, today: date) -> bool:
        """Does an active hold reach the file's shoot or anything in it (a hold on a folder
        inside a shoot keeps its whole trash item: over-keeping is allowed)?"""
        shoot = fold(self.shoot_of(f).rel)
        return bool(self.holding(f, today)) or any(
            h.active(today) and h.scope == "path" and h.volume == self.drives[f.drive].volume
            and h.target.startswith(shoot + "/") for h in self.all_holds())

    def assert_refusal_audited(self, at: datetime, step: str) -> None:
        """SPEC: a refusal is in the audit log."""
        if not any(r.get("event") == "refusal" and datetime.fromisoformat(r["time"]) == at
                   for r in self.archive.audit_records()):
            self.fail([f"[audit] {step} refused with no refusal record"], at.isoformat())

    def trash_items(self) -> list[dict]:
        return self.cmd("trash", "list", "--json").json()["items"]

    @rule(pick=PICK, advance=ADVANCE)
    def restore(self, pick, advance):
        self.advance(advance)
        items = self.trash_items()
        if not items:
            return
        item = items[pick % len(items)]
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd("trash", "restore", str(item["id"]), records=True)
        self.check("trash restore", at, distrusted, restoring=(item["volume"], item["path"]))
        self.restore_indexed(ran, at, (item["volume"], item["path"]))

    def restore_indexed(self, ran: Ran, at: datetime, restoring: tuple[str, str]) -> None:
        """`trash restore` indexes the shoot it brought files back to at once (so that a use
        recorded next reaches it; found by the long run); a restore killed midway does not."""
        if ran.code in (0, 1) and re.search(r"^restored [1-9]", ran.out, re.M):
            for s in self.shoots.values():
                if (self.drives[s.drive].volume, s.rel) == restoring \
                        and self.online(self.drives[s.drive]):
                    self._scanned_shoot(s, at)

    @rule(advance=ADVANCE, full=st.booleans())
    def daemon_cycle(self, advance, full):
        """What the service does on its schedule: scan, plan, apply."""
        self.scan(full, advance)
        self.plan(0)
        self.apply(0)

    @rule(advance=ADVANCE)
    def daemon_fortnight(self, advance):
        """Two of the service's cycles a week apart, then its trash purge."""
        self.daemon_cycle(advance, False)
        self.daemon_cycle(8, False)
        self.purge(0)

    # -- the daemon ---------------------------------------------------------------------------------
    # Sessions only on a clock ahead of the real one: APScheduler keeps its fire times on the
    # real clock, and the daemon brings them back to the (pinned) clock when that is earlier, as
    # after a clock set back; here that would fire every job at each turn of its loop. One
    # session an example: each costs 0.5-3 s (a drive is seen at the daemon's next 2 s probe).
    @precondition(lambda self: not self.sessions and self.now > datetime.now().astimezone())
    @rule(advance=ADVANCE, actions=st.lists(st.tuples(st.sampled_from(SESSION_ACTIONS), PICK,
                                                      hold_specs), max_size=3),
          abrupt=st.booleans())
    def daemon_session(self, advance, actions, abrupt):
        """`archivekeeper daemon` at the model's clock: its start scan, then the catch-up jobs
        whose schedule fired since their last success (the clock moved), while 0-3 things
        happen; then SIGTERM, with `abrupt` right after the last thing's job (or a start job)
        began. The daemon may move, purge and carry out pending erasures whenever its apply
        runs: each settled phase is checked as an apply."""
        self.advance(advance)
        self.let_folders_age()
        at, distrusted = self.now, self.distrusted(self.now)
        known = {k: (s.indexed, s.maybe) for k, s in self.shoots.items()}
        newest = self.scanned_newest
        self.scanned(at)  # what its start scan finds (its apply removes emptied folders)
        self.archive.lock_wait = "30"
        daemon = Daemon(SimpleNamespace(config=self.archive.config,
                                        clock_env={"ARCHIVEKEEPER_FAKE_NOW": iso(at)}),
                        Notifications())
        STATS["daemon sessions"] += 1
        self.sessions += 1
        try:
            daemon.wait("daemon_started")  # the catch_up lines come before it
            stopping = abrupt and not actions
            if stopping:
                job = "apply" if any(e["job"] == "apply" for e in daemon.found("catch_up")) \
                    else "scan"
                with daemon.cond:  # an apply that already ran today is skipped instead
                    daemon.cond.wait_for(lambda: daemon.found("job_started", job=job)
                                         or daemon.found("job_skipped", job=job), 20)
                if job == "scan":  # stopped in its start scan: the index as it was, or not
                    self.scanned_newest = newest
                    for k, (indexed, maybe) in known.items():
                        self.shoots[k].indexed, self.shoots[k].maybe = indexed, maybe
            else:
                daemon.notes.wait_idle()
                self.daemon_did(at, distrusted, "apply (daemon start)")
            for n, (action, pick, spec) in enumerate(actions):
                stopping = abrupt and n == len(actions) - 1
                if getattr(self, f"_while_{action}")(daemon, at, distrusted, pick, spec,
                                                     stopping):
                    break  # a job this action queued has started: SIGTERM now
                stopping = False
            self.stop_daemon(daemon, at)
        finally:
            self.archive.lock_wait = "0"
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
            daemon.notes.sock.close()
            self.archive.write_config(list(self.config_holds))
        if stopping:  # stopped midway, maybe in a scan: what it indexed, the model allows
            for s in self.shoots.values():
                if self.online(self.drives[s.drive]) and self.folder(s):
                    s.maybe |= {(f.fid, f.mtime_ns) for f in self.files.values()
                                if f.drive == s.drive and f.shoot == s.rel
                                and f.state == "place"}
        self.daemon_did(at, distrusted, "apply (daemon stopped)")

    def daemon_did(self, at: datetime, distrusted: bool, step: str) -> None:
        """A settled phase of a daemon session: its jobs ran at `at` (whether the catch-up
        apply announced, or recorded an instant, the model cannot tell: it allows both)."""
        self._ran(at, distrusted, Ran(("daemon",), 0, "", ""), records=False)
        if not distrusted:
            self.heard_now(at)
        self.check(step, at, distrusted)

    def stop_daemon(self, daemon: Daemon, at: datetime) -> None:
        """SIGTERM: exit 0 within 10 s, no traceback, no job failed by an internal error."""
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            code = daemon.proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        err = daemon.proc.stderr.read()
        problems = []
        if code != 0:
            problems.append(f"[daemon] exit {code} after SIGTERM (0 within 10 s expected)")
        if "Traceback" in err or "internal error" in err:
            problems.append(f"[daemon] stderr: {err}")
        problems += [f"[daemon] {e}" for e in daemon.events if e["event"] == "daemon_error"
                     or "internal error" in str(e.get("error", ""))]
        self.fail(problems, f"daemon session at {at.isoformat()}:")
        STATS["daemon jobs stopped by SIGTERM"] += len(daemon.found("job_stopped"))
        STATS["daemon reports written"] += len(daemon.found("job_finished", job="report"))

    def settle(self, daemon: Daemon, ended: int, job: str, **fields) -> None:
        """Wait until a job (`ended` such jobs had ended before) has ended, then for idle."""
        ends = ("job_finished", "job_failed", "job_stopped", "job_skipped")

        def count() -> int:
            return sum(len(daemon.found(e, job=job, **fields)) for e in ends)

        with daemon.cond:
            ok = daemon.cond.wait_for(lambda: count() > ended or daemon.proc.poll() is not None,
                                      30)
        assert ok and count() > ended, ("[daemon] no end of", job, fields, daemon.events[-5:])
        daemon.notes.wait_idle()

    def ended(self, daemon: Daemon, job: str, **fields) -> int:
        return sum(len(daemon.found(e, job=job, **fields))
                   for e in ("job_finished", "job_failed", "job_stopped", "job_skipped"))

    def config_hold(self, spec) -> tuple[str, Hold] | None:
        """A `holds:` entry of the config (a customer, a shoot, a folder in it or above it),
        and the hold it is."""
        scope, pick, until, _ = spec
        shoots = list(self.shoots.values())
        if not shoots:
            return None
        s = shoots[pick % len(shoots)]
        volume = self.drives[s.drive].volume or "backup"
        until_day = None if until is None else self.now.date() + until * DAY
        if scope == "customer":
            entry, hold = {"customer": s.customer}, Hold("", "customer", None, s.key, until_day)
        elif scope == "shoot":
            entry = {"shoot": f"{volume}:{s.rel}"}
            hold = Hold("", "shoot", volume, fold(s.rel), until_day)
        else:
            # a config hold names a folder, never the whole volume (check-config refuses it)
            sub = (f"{s.rel}/RAW" if "/" not in s.rel else s.rel.split("/")[0]) \
                if scope == "path-sub" else s.rel
            entry, hold = {"path": f"{volume}:{sub}"}, Hold("", "path", volume, fold(sub),
                                                            until_day)
        entry |= {"kind": "other", "reason": "model"}
        if until_day is not None:
            entry["until"] = until_day.isoformat()
        return json.dumps(entry, ensure_ascii=False), hold

    def _while_config_hold(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        made = self.config_hold(spec)
        if made is None:
            return False
        self.config_holds[made[0]] = made[1]
        return self.reload(daemon, at, distrusted, stopping)

    def _while_config_release(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        if not self.config_holds:
            return False
        del self.config_holds[sorted(self.config_holds)[pick % len(self.config_holds)]]
        return self.reload(daemon, at, distrusted, stopping)

    def reload(self, daemon, at, distrusted, stopping) -> bool:
        """SIGHUP with the config's holds changed: in force at once (a quick scan follows)."""
        self.archive.write_config(list(self.config_holds))
        reloaded = len(daemon.found("config_reloaded"))
        ended = self.ended(daemon, "scan", why="config_reloaded")
        started = len(daemon.found("job_started", job="scan", why="config_reloaded"))
        daemon.proc.send_signal(signal.SIGHUP)
        STATS["daemon SIGHUPs"] += 1
        daemon.wait("config_reloaded", times=reloaded + 1)
        if stopping:
            daemon.wait("job_started", job="scan", why="config_reloaded", times=started + 1)
            return True
        self.settle(daemon, ended, "scan", why="config_reloaded")
        self.daemon_did(at, distrusted, "daemon: config reloaded")
        return False

    def _while_broken_config(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        """SIGHUP with an invalid config that drops every hold: the old one stays in force
        (promise 10), so what the config held stays held by the daemon's later applies."""
        self.archive.write_config([], broken=True)
        invalid, ready = len(daemon.found("config_invalid")), daemon.notes.count("READY=1")
        daemon.proc.send_signal(signal.SIGHUP)
        STATS["daemon SIGHUPs"] += 1
        daemon.wait("config_invalid", times=invalid + 1)
        daemon.notes.wait("READY=1", ready + 1)
        self.archive.write_config(list(self.config_holds))
        STATS["daemon configs refused"] += 1
        return False

    def _while_hot_plug(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        """Unplug the backup drive, or plug it in: a quick scan of it, then an apply."""
        slot = self.slot()
        if slot not in ("backup", "empty"):
            return False
        STATS["drives hot-plugged while the daemon runs"] += 1
        if slot == "backup":
            gone = len(daemon.found("volume_offline", volume="backup"))
            self.set_backup_slot("empty")
            daemon.wait("volume_offline", volume="backup", times=gone + 1, timeout=15)
            self.daemon_did(at, distrusted, "daemon: drive unplugged")
            return False
        drive = self.drives["backup"]
        age_folders(drive.park, self.stamps)  # as the folders would be, plugged in later
        drive.parked_digest = tree_digest(drive.park)
        back = len(daemon.found("volume_online", volume="backup"))
        ended = self.ended(daemon, "apply", volume="backup")
        started = len(daemon.found("job_started", job="apply", volume="backup"))
        self.set_backup_slot("backup")
        self.scanned(at, "backup")  # before its apply can remove an emptied folder
        daemon.wait("volume_online", volume="backup", times=back + 1, timeout=15)
        if stopping:
            daemon.wait("job_started", job="apply", volume="backup", times=started + 1)
            return True
        self.settle(daemon, ended, "apply", volume="backup")
        self.daemon_did(at, distrusted, "apply (daemon: drive plugged in)")
        return False

    def _while_add_file(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        """A file added to a shoot: a file event, a rescan of its folder after the debounce."""
        shoots = [s for s in self.shoots.values()
                  if self.folder(s) and self.online(self.drives[s.drive])]
        if not shoots:
            return False
        s = shoots[pick % len(shoots)]
        count = len(self.files)
        ended = self.ended(daemon, "scan", why="file_events")
        self._put(s.drive, s, FILE_NAMES[spec[1] % len(FILE_NAMES)].format(n=count),
                  FILE_AGES[pick % len(FILE_AGES)])
        if len(self.files) == count:
            return False
        f = self.files[count]
        self.settle(daemon, ended, "scan", why="file_events")
        s.maybe.add((f.fid, f.mtime_ns))
        STATS["files added while the daemon runs"] += 1
        return False

    def _while_hold_add(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        self._add_hold(spec)
        return False

    def _while_restore(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        """`trash restore` from a terminal (what the daemon's catch-up apply just trashed)."""
        self.restore(pick, 0)
        return False

    def _while_erase(self, daemon, at, distrusted, pick, spec, stopping) -> bool:
        """`erase --yes` from a terminal: it waits for the daemon's run lock."""
        self.erase(pick, spec[1] % 4, 0, "no")
        return False

    # -- erasure (art. 17) ----------------------------------------------------------------------
    @rule(pick=PICK, how=st.integers(0, 3), advance=ADVANCE,
          away=st.sampled_from(("no", "no", "unplugged", "unplugged, then back")))
    def erase(self, pick, how, advance, away):
        """`erase --yes` of a customer (spelled as the owner may), maybe with the backup drive
        unplugged first (a pending erasure), maybe plugged back and applied after."""
        self.advance(advance)
        if away != "no":
            self.set_backup_slot("empty")
        customer = CUSTOMERS[pick % len(CUSTOMERS)]
        spelled = (customer, customer.upper(), customer.replace(" ", "_"),
                   unicodedata.normalize("NFD", customer))[how]
        key = self.erasing = normalize_customer(customer)
        at, distrusted = self.now, self.distrusted(self.now)
        ran = self.cmd("erase", "--customer", spelled, "--yes", "--force", "--reason", "asked by e-mail",
                       records=True)
        self.scanned(at)  # it quick-scans the online volumes first, whatever the clock says
        problems = []
        if ran.code not in (0, 1, 3):  # 1: some files changed since the scan were skipped
            problems.append(f"[erase] {ran}")
        if distrusted and ran.code != 3:
            problems.append(f"[guard] erase on a distrusted clock did not refuse: {ran}")
        self.fail(problems, f"erase at {at.isoformat()}:")
        if distrusted and ran.code == 3:
            self.assert_refusal_audited(at, "erase")
        self.check("erase", at, distrusted)
        STATS["erase runs"] += 1
        if ran.code in (0, 1):
            self.erased(key, at)
        if ran.code == 0:
            self.fail(self.not_erased(key, at), f"after erase at {at.isoformat()}:")
        self.erasing = None
        if away == "unplugged, then back":
            self.set_backup_slot("backup")
            self.apply(0)

    def erased(self, key: str, at: datetime) -> None:
        """What an erasure leaves: its record (shoots dated on or before it are due at once),
        a pending erasure on each offline volume, which takes over the customer's trash there
        and drops their index rows (so the model knows nothing of what is indexed there)."""
        self.erasures.setdefault(key, []).append(at.date())
        online = {d.volume for d in self.drives.values() if self.online(d)}
        for volume in {"studio", "backup"} - online:
            self.pending.setdefault(volume, set()).add((key, at.date()))
            STATS["pending erasures"] += 1
        for f in self.files.values():
            if (f.state == "trash" and self.shoot_of(f).key == key
                    and self.drives[f.drive].volume not in online):
                self.pending_trash.add(f.fid)
        for s in self.shoots.values():
            if s.key == key and self.drives[s.drive].volume not in online:
                s.indexed, s.maybe = None, set()
        # the uses of what the index forgot go with it: fewer uses, earlier dates (permissive)
        self.uses = {k: v for k, v in self.uses.items() if k[0] != key}

    def not_erased(self, key: str, at: datetime) -> list[str]:
        """SPEC: after `erase` (exit 0: nothing skipped), no file of the customer the preview
        listed is left on an online volume, in place or in trash, unless a hold keeps it."""
        problems = []
        today = at.date()
        for f in self.live():
            s = self.shoot_of(f)
            if s.key != key or f.planted or not self.online(self.drives[f.drive]):
                continue
            if f.state == "place":
                listed = (not s.maybe and s.indexed is not None
                          and (f.fid, f.mtime_ns) in s.indexed)
                if not listed or self.holding(f, today) or self.through_symlink(f.drive, f.rel):
                    continue
            elif f.fid in self.pending_trash or self.reaching(f, today):
                continue
            problems.append(f"[not-erased] {f.drive}:{f.rel} (file {f.fid}, {f.state}) of the "
                            "erased customer, kept by no hold, is still there")
        return problems

    def pending_scan(self) -> None:
        """An apply scans each online volume with a pending erasure before carrying it out:
        what that scan indexes, the model may not know (racy folders), so it allows it."""
        for d in self.drives.values():
            if self.online(d) and self.pending.get(d.volume or ""):
                for s in self.shoots.values():
                    if s.drive == d.name and self.folder(s):
                        s.maybe |= {(f.fid, f.mtime_ns) for f in self.files.values()
                                    if f.drive == d.name and f.shoot == s.rel
                                    and f.state == "place"}

    # -- kills --------------------------------------------------------------------------------------
    def _killed(self, command: str, crash: str, n: int) -> None:
        """Run apply, purge or restore as the installed CLI, killed by fsops at its Nth file
        operation (or finishing, when it has fewer)."""
        restoring = None
        if command == "apply":
            args = ("apply",)
        elif command == "purge":
            args = ("trash", "purge")
        else:
            items = self.trash_items()
            if not items:
                return
            item = items[n % len(items)]
            args, restoring = ("trash", "restore", str(item["id"])), (item["volume"],
                                                                        item["path"])
        at, distrusted = self.now, self.distrusted(self.now)
        point = self.kill_point(command, n)
        if command == "apply":
            self.pending_scan()
        ran = self.archive.spawn(at, *args, crash=(crash, point))
        self._ran(at, distrusted, ran, records=True)
        if ran.code == -9:
            STATS[f"{command} runs killed"] += 1
        step = f"{command} killed at {crash}={point}"
        if command == "apply":
            self.after_apply(ran, at, distrusted, step)
            return
        if distrusted and command == "purge" and ran.code not in (3, -9):
            self.fail([f"[guard] purge on a distrusted clock did not refuse: {ran}"], at.isoformat())
        self.check(step, at, distrusted, restoring=restoring)
        if restoring is not None:
            self.restore_indexed(ran, at, restoring)

    def kill_point(self, command: str, n: int) -> int:
        """The Nth file operation, within what the model expects the run to do (a few mkdirs,
        one rename or unlink a file, a few rmdirs), so that most kills land mid-run."""
        today = self.now.date()
        files = sum(1 for f in self.files.values() if f.state == "trash" and not f.planted
                    and today >= f.trashed_on + self.retention * DAY)  # apply purges too
        if command == "apply":
            dates = {fid: d for s in self.shoots.values() for fid, d in self.dates(s).items()}
            files += sum(1 for f in self.files.values() if f.fid in dates and f.state == "place"
                         and not self.why_not_move(f, self.now, False, dates[f.fid], "apply"))
        elif command == "restore":
            files = 3
        return 1 + (n - 1) % (3 * files + 2)

    @rule(command=st.sampled_from(("apply", "purge", "restore")),
          crash=st.sampled_from(("ARCHIVEKEEPER_CRASH_AT", "ARCHIVEKEEPER_CRASH_AFTER")),
          n=st.integers(1, 14), advance=ADVANCE, prepare=st.booleans())
    def killed_run(self, command, crash, n, advance, prepare):
        """With `prepare`, what the service does first: before an apply its scan and plan, and
        the notice period; before a purge the wait for the trash to expire."""
        if prepare and command == "apply":
            self.scan(False, advance)
            self.plan(0)
            self.advance(self.notice)
        else:
            self.advance(advance + (self.retention if prepare and command == "purge" else 0))
        self._killed(command, crash, n)

    @rule(command=st.sampled_from(("apply", "purge")),
          crash=st.sampled_from(("ARCHIVEKEEPER_CRASH_AT", "ARCHIVEKEEPER_CRASH_AFTER")),
          n=st.integers(1, 10), hold=hold_specs,
          move=st.sampled_from(("none", "none", "+1d", "+8d", "-3d", "+1y", "+30y")),
          resume=st.sampled_from(("apply", "purge", "scan", "plan", "touch")), advance=ADVANCE)
    def hold_between_halves(self, command, crash, n, hold, move, resume, advance):
        """A run killed midway; a hold added (from another terminal) on what it was moving or
        purging; maybe the clock moves; then the next command resumes the half-done steps."""
        self.advance(advance)
        self._killed(command, crash, n)
        trashed = {(f.drive, f.shoot) for f in self.files.values() if f.state == "trash"}
        self._add_hold(hold, [self.shoots[k] for k in sorted(trashed)] or None)
        self.set_clock(self.now + HALF_MOVES[move])
        STATS["holds added between two halves of a run"] += 1
        if resume == "touch":
            self.touch(True, hold[1], 0)
        elif resume == "scan":
            self.scan(False, 0)
        else:
            getattr(self, resume)(0)


def run_machine(profile: str) -> None:
    STATS.clear()
    run_state_machine_as_test(ArchiveMachine, settings=settings.get_profile(profile))
    # a purge killed midway is not among them: the ci profile's 200 derandomized examples
    # never reach one (it needs expired trash at the kill point); test_crash.py kills purges
    # at every file operation, deterministically, and the long profile reaches them
    # not "files restored", "files moved to trash by the daemon" nor "daemon SIGHUPs": with
    # the daemon's timing in the histories, a derandomized run reached them 0 to 26, 1 to 38
    # and 4 to 27 times; the explicit tests below reach them every time
    wanted = ("files moved to trash", "files purged", "apply runs killed",
              "holds added", "holds added between two halves of a run", "files erased",
              "pending erasures", "daemon sessions",
              "drives hot-plugged while the daemon runs", "daemon reports written")
    missing = [what for what in wanted if not STATS[what]]
    assert not missing, f"the machine never got to: {missing} ({dict(STATS)})"
    fuzzing.FIGURES.append(  # printed at the end of the run (tests/safety/conftest.py)
        f"model ({profile}, {settings.get_profile(profile).max_examples} examples): "
        f"{dict(sorted(STATS.items()))}")


# Before issue 8's fixes the machine failed at once on its defects: #11 (index.sqlite 0644,
# state_dir 0755), #3 and #4 (the clock guard; announcements on a distrusted clock), #2
# (recovery finishing a purge on a clock set back), and purge deleting a trash file without
# comparing it.
@pytest.mark.timeout(900)
def test_model_ci():
    run_machine(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_model_long():
    run_machine("long")


OLD_SHOOT = ("studio", 0, "Virtanen Matti", "portrait", 400, [(0, 400), (1, 400)])
NEW_SHOOT = ("studio", 1, "Mäkinen Anna", "wedding", 0, [(2, 0)])


@pytest.fixture
def machine():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})  # issue 8 #11 is open; the machine checks it
    m.set_up(notice="14 days", retention="7 days", max_files=1000, fraction=1.0,
             shoots=[OLD_SHOOT, NEW_SHOOT], spare=[], announce=True)
    yield m
    m.teardown()


def test_the_machine_sees_a_due_shoot_trashed_restored_trashed_and_purged(machine):
    """Deletions happen within a few clock moves, and the model follows them (a model test
    where nothing is ever deleted proves nothing)."""
    STATS.clear()
    old = [f for f in machine.files.values() if "Virtanen" in f.rel]
    machine.apply(15)  # announced 15 days ago at set-up, due for a year
    assert {f.state for f in old} == {"trash"}, old
    machine.restore(0, 0)  # its JPEG and its RAW are two items: two trash groups
    machine.restore(0, 0)
    assert {f.state for f in old} == {"place"}
    machine.daemon_cycle(1, False)  # restored: announced again, not moved
    assert {f.state for f in old} == {"place"}
    machine.daemon_cycle(14, False)
    machine.purge(7)
    assert {f.state for f in old} == {"purged"}
    assert {f.state for f in machine.files.values() if "Mäkinen" in f.rel} == {"place"}
    assert STATS["files moved to trash"] == 4 and STATS["files restored"] == 2
    assert STATS["files purged"] == 2


def test_a_run_killed_midway_and_resumed_after_a_hold_is_followed(machine):
    STATS.clear()
    machine._killed("apply", "ARCHIVEKEEPER_CRASH_AFTER", 5)  # day 0: nothing noticed yet
    assert STATS["files moved to trash"] == 0
    machine.advance(15)
    machine._killed("apply", "ARCHIVEKEEPER_CRASH_AFTER", 5)  # four mkdirs, then a move
    old = [f for f in machine.files.values() if "Virtanen" in f.rel]
    assert sorted(f.state for f in old) == ["place", "trash"]
    machine._add_hold(("customer", 0, None, False), [machine.shoot_of(old[0])])
    machine.apply(0)
    machine.purge(8)
    assert sorted(f.state for f in machine.files.values() if "Virtanen" in f.rel) == \
        ["place", "trash"]  # the hold keeps the trashed file and the one left in place


def test_the_machine_follows_an_erasure_online_and_then_pending(machine):
    """`erase` deletes the customer's unheld files on the online volume at once, leaves the
    held one, and the copy on the unplugged drive for the apply that finds it back."""
    STATS.clear()
    machine._create_shoot("backup", *OLD_SHOOT[1:])
    machine.scan(False, 0)
    virtanen = {(f.drive, f.rel): f for f in machine.files.values() if "Virtanen" in f.rel}
    studio = machine.shoot_of(next(f for f in virtanen.values() if f.drive == "studio"))
    machine._add_hold(("path-sub", 0, None, False), [studio])  # holds its RAW folder
    machine.erase(pick=0, how=3, advance=0, away="unplugged")  # Virtanen Matti, in NFD
    states = {(d, rel.split("/")[-1]): f.state for (d, rel), f in virtanen.items()}
    assert states == {("studio", "IMG_0.jpg"): "erased", ("studio", "IMG_0.CR2"): "place",
                      ("backup", "IMG_3.jpg"): "place", ("backup", "IMG_3.CR2"): "place"}
    machine.set_backup_slot("backup")
    machine.apply(0)
    assert {f.state for (d, _), f in virtanen.items() if d == "backup"} == {"erased"}
    assert {f.state for f in machine.files.values() if "Mäkinen" in f.rel} == {"place"}
    assert STATS["files erased"] == 3 and STATS["files erased by a pending erasure"] == 2


def test_the_machine_follows_a_daemon_session_with_a_hot_plug_a_sighup_and_sigterm(machine):
    """The real daemon: its catch-up apply trashes the due shoot, a hold put in the config and
    reloaded keeps the copy on the drive plugged in later, a broken config leaves that hold in
    force; the next session is stopped right after the drive's apply began."""
    STATS.clear()
    machine._create_shoot("backup", *OLD_SHOOT[1:])
    machine.scan(False, 0)
    machine.set_backup_slot("empty")
    virtanen = [f for f in machine.files.values() if "Virtanen" in f.rel]
    hold = ("customer", 0, None, False)  # shoots[0] is Virtanen Matti's on studio
    machine.daemon_session(15, [("config_hold", 0, hold), ("broken_config", 0, hold),
                                ("hot_plug", 0, hold)], False)
    assert {(f.drive, f.state) for f in virtanen} == {("studio", "trash"), ("backup", "place")}
    assert STATS["daemon sessions"] == 1 and STATS["daemon SIGHUPs"] == 2
    assert STATS["drives hot-plugged while the daemon runs"] == 1
    assert STATS["daemon reports written"] == 1  # the first start catches up on each job
    assert STATS["files moved to trash by the daemon"] == 2
    machine.daemon_session(1, [("config_release", 0, hold), ("hot_plug", 0, hold),
                               ("hot_plug", 0, hold)], True)
    assert STATS["daemon sessions"] == 2 and STATS["drives hot-plugged while the daemon runs"] == 3
    assert {f.state for f in virtanen if f.drive == "backup"} <= {"place", "trash"}
    assert STATS["daemon reports written"] == 2  # the clock moved a day: the daily report
    machine.erase(0, 0, 0, "no")  # Virtanen Matti: the stored reports named them
    machine.daemon_session(8, [], False)
    stored = list((machine.archive.state / "reports").glob("report-*"))
    assert len(stored) == 6 and STATS["daemon reports written"] == 3
    assert not any("virtanen" in p.read_text().casefold() for p in stored)


@pytest.mark.parametrize("violation", ["held file trashed", "trash purged early", "outside changed",
                                       "file vanished", "foreign drive written",
                                       "held file erased", "another customer's file erased",
                                       "unheld file left by erase",
                                       "erased customer named in a stored report",
                                       "stored report that does not parse"])
def test_the_oracle_catches_a_violation_planted_by_hand(machine, violation):
    """Each invariant can fail: do by hand what the product must never do, and check."""
    f = next(f for f in machine.files.values() if "Virtanen" in f.rel)
    top = machine.drives["studio"].where
    batch = top / META / "trash" / "20990101T000000-abcdef"
    expected = {"held file trashed": "[move]", "trash purged early": "[purge]",
                "outside changed": "[outside]", "file vanished": "[vanished]",
                "foreign drive written": "[outside]", "held file erased": "a hold keeps it",
                "another customer's file erased": "not of its customer",
                "unheld file left by erase": "[not-erased]",
                "erased customer named in a stored report": "names 'virtanen matti'",
                "stored report that does not parse": "does not parse"}[violation]
    step = "erase" if "erase" in violation else "apply"
    machine.erasing = normalize_customer("Virtanen Matti")
    if violation == "held file trashed":
        machine._add_hold(("customer", 0, None, False), [machine.shoot_of(f)])
        machine.advance(15)
        (batch / f.rel).parent.mkdir(parents=True)
        os.rename(top / f.rel, batch / f.rel)
    elif violation == "trash purged early":
        machine.apply(15)
        trashed = next(top / META / "trash" / f.batch / f.rel for f in [f])
        trashed.unlink()
    elif violation == "outside changed":
        (machine.archive.outside / "secret.jpg").write_bytes(b"changed")
    elif violation == "file vanished":
        (top / f.rel).unlink()
    elif violation == "held file erased":
        machine._add_hold(("shoot", 0, 10, False), [machine.shoot_of(f)])
        (top / f.rel).unlink()
    elif violation == "another customer's file erased":
        other = next(f for f in machine.files.values() if "Mäkinen" in f.rel)
        (top / other.rel).unlink()
    elif violation == "unheld file left by erase":
        with pytest.raises(AssertionError, match=re.escape(expected)):
            machine.fail(machine.not_erased(machine.erasing, machine.now), "erase")
        return
    elif "report" in violation:  # Virtanen Matti erased, every file of theirs gone
        for g in machine.files.values():
            if "Virtanen" in g.rel:
                (top / g.rel).unlink()
                g.state = "deleted"
        machine.erasures[machine.erasing] = [machine.now.date()]
        reports = machine.archive.state / "reports"
        reports.mkdir()
        for suffix in ("html", "txt"):
            (reports / f"report-2099-W01.{suffix}").write_text("-")
        (reports / "report-2099-W01.json").write_text(
            "{" if "parse" in violation else '{"path": "2024-05-12 VIRTANEN_Matti"}')
    else:
        (machine.drives["spare"].where / META / "trash").mkdir()
    with pytest.raises(AssertionError, match=re.escape(expected)):
        machine.check(step, machine.now, False)
