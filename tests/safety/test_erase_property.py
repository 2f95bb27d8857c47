"""Property: `erase --yes` of one customer, over random small archives and random holds, never
removes a held file, removes every unheld file of that customer on online volumes (in place and
in trash), leaves no folder it emptied, and touches nothing of anyone else; a volume offline at
the erasure is untouched until it is back, when the next `apply` does the same there (SPEC
"Erasure", promises 2 and 3).

The archives: 2-4 customers (one whose name is a prefix of another's), shoots in every layout and
spelling (NFD, `_`, case) on one or two volumes, copies on both; passport shoots an earlier apply
moved to trash; customer, shoot and path holds (a shoot, a subfolder, a customer folder, one
file, a whole volume), some ended, some released, one maybe in the config. The real CLI runs
in-process (tests/conftest.py's Studio) on real temp folders. Profiles: tests/safety/conftest.py
(`ci` runs ERASE_EXAMPLES examples, derandomized; `long` explores).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import OLD, Studio
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from safety.harness import normalize_customer

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
ERASE_EXAMPLES = 40
RULES = """\
rules:
  - {name: passports, match: {type: passport}, delete_after: 1 day}
safety:
  notice_period: 0 days
  max_fraction_per_volume: 1.0
"""
CUSTOMERS = ("Mäkinen Anna", "Mäkinen Anna Liisa", "Virtanen Matti", "Korhonen Päivi")
TYPES = ("passport", "wedding", "portrait")  # passports go to trash first
FILE_NAMES = ("IMG_1.jpg", "RAW/IMG_1.CR2", "RAW/sub/IMG_2.CR2", "export/web/IMG_1.jpg")
TODAY = date.today()
UNTIL = (None, -1, 0, 30)  # a hold's end, days from today: ended yesterday, ends today, later


def spell(name: str, how: int) -> str:
    """One of the ways a folder or the owner may write the name."""
    return (name, unicodedata.normalize("NFD", name), name.lower().replace(" ", "_"),
            name.upper())[how]


shoots = st.lists(st.tuples(
    st.sampled_from(("backup", "studio")),
    st.integers(0, 3),  # customer, an index into the archive's customers
    st.integers(0, 3),  # layout: typed with `_`, in a customer folder, untyped, in Arkisto/
    st.integers(0, 3),  # spelling
    st.sampled_from(TYPES),
    st.sampled_from((date(2016, 5, 1), date(2019, 8, 2), date(2024, 3, 3))),
    st.lists(st.integers(0, len(FILE_NAMES) - 1), min_size=1, max_size=3, unique=True),
    st.booleans(),  # a copy on the other volume
), min_size=2, max_size=7)
holds = st.lists(st.tuples(
    st.sampled_from(("path-sub", "shoot", "path-file", "customer", "path-shoot", "path-parent",
                     "volume")),
    st.integers(0, 9),  # which shoot (or whose customer); the erased customer's come first
    st.sampled_from(UNTIL),
    st.integers(0, 3),  # spelling of a customer hold
    st.booleans(),  # released at once
    st.booleans(),  # added after the erasure (while the backup drive is away)
), min_size=1, max_size=4)


@dataclass
class File:
    volume: str
    rel: str  # relative to the volume
    shoot: str  # the shoot folder, relative to the volume
    key: str  # the customer, normalised
    data: bytes
    where: str = "place"  # place, or the trash batch it is in


@dataclass
class Held:
    scope: str  # customer | shoot | path
    volume: str | None
    target: str  # customer key, or a folded path relative to the volume ("" = the volume)
    until: date | None

    def active(self) -> bool:
        return self.until is None or self.until >= TODAY

    def keeps(self, f: File) -> bool:
        """Does the hold keep this file (SPEC: customer, shoot or path, until inclusive)?"""
        if not self.active():
            return False
        if self.scope == "customer":
            return self.target == f.key
        if self.volume != f.volume:
            return False
        if self.scope == "shoot":
            return self.target == fold(f.shoot)
        rel = fold(f.rel)
        return self.target in ("", rel) or rel.startswith(self.target + "/")

    def reaches(self, f: File) -> bool:
        """Does it reach the file's shoot or anything in it (a trashed shoot is kept whole)?"""
        return self.keeps(f) or (self.active() and self.scope == "path"
                                 and self.volume == f.volume
                                 and self.target.startswith(fold(f.shoot) + "/"))


def note(what: str) -> None:
    try:
        event(what)
    except InvalidArgument:  # run_example called outside Hypothesis
        pass


def fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


def folder_of(customer: str, layout: int, how: int, type_: str, day: date) -> str:
    """The shoot folder in one of tests/conftest.py's layouts."""
    name = spell(customer, how)
    if layout == 0:
        rel = f"{day:%Y%m%d}_{name.replace(' ', '_')}_{type_}"
    elif layout == 1:
        rel = f"{name}/{day:%d.%m.%Y} {type_}"
    elif layout == 2:
        rel = f"{day:%Y-%m-%d} {name}"
    else:
        rel = f"Arkisto/{name}"
    return rel


class Archive:
    def __init__(self, root: Path, two_volumes: bool, config_hold: str):
        self.root = root
        self.studio = Studio(root, volumes=("studio", "backup") if two_volumes else ("studio",),
                             removable=("backup",), extra=RULES + config_hold)
        self.studio.init_volumes()
        self.files: list[File] = []
        self.counter = 0

    def add_shoot(self, volume: str, rel: str, key: str, names: list[int]) -> None:
        if any(f.volume == volume and f.shoot == rel for f in self.files) or any(
                f.volume == volume and (rel.startswith(f.shoot + "/")
                                        or f.shoot.startswith(rel + "/")) for f in self.files):
            return  # the same folder twice, or an Arkisto shoot over a dated one
        files = {}
        for i in names:
            self.counter += 1
            data = f"{self.counter}:{rel}".encode() * (1 + self.counter % 5)
            files[FILE_NAMES[i]] = data
            self.files.append(File(volume, f"{rel}/{FILE_NAMES[i]}", rel, key, data))
        self.studio.shoot(volume, rel, files, mtime=OLD)

    def top(self, volume: str) -> Path:
        return self.studio.volumes[volume]

    def locate(self, f: File) -> list[str]:
        """Where the file is now: 'place' and/or the trash batches holding it, by content."""
        top = self.top(f.volume)
        found = ["place"] if _holds(top / f.rel, f.data) else []
        trash = top / ".archivekeeper" / "trash"
        if trash.is_dir():
            found += [b.name for b in sorted(trash.iterdir()) if _holds(b / f.rel, f.data)]
        return found

    def empty_dirs(self, volume: str) -> list[str]:
        top = self.top(volume)
        out = []
        for dirpath, dirnames, filenames in os.walk(top):
            if dirpath == str(top):
                dirnames[:] = [d for d in dirnames if d != ".archivekeeper"]
            elif not dirnames and not filenames:
                out.append(os.path.relpath(dirpath, top))
        trash = top / ".archivekeeper" / "trash"
        for dirpath, dirnames, filenames in os.walk(trash):
            if dirpath != str(trash) and not dirnames and not filenames:
                out.append(os.path.relpath(dirpath, top))
        return out


def _holds(path: Path, data: bytes) -> bool:
    return path.is_file() and not path.is_symlink() and path.read_bytes() == data


def check(archive: Archive, erased: str, holds_: list[Held], online: set[str],
          before: dict[int, str | None], empty: set[str], step: str) -> None:
    problems = []
    for i, f in enumerate(archive.files):
        where, was = archive.locate(f), before[i]
        what = f"{f.volume}:{f.rel} ({'erased customer' if f.key == erased else f.key})"
        if was is None:  # erased by an earlier step: nothing brings it back
            if where:
                problems.append(f"{what}, erased, is back in {where}")
            continue
        must_stay = (f.key != erased or f.volume not in online
                     or any(h.keeps(f) for h in holds_))
        may_stay = must_stay or (was != "place" and any(h.reaches(f) for h in holds_))
        if must_stay and where != [was]:
            problems.append(f"{what} was in {was}, is in {where}")
        elif not may_stay and where:
            problems.append(f"{what}, held by nothing, is still in {where}")
        elif where not in ([], [was]):
            problems.append(f"{what} moved from {was} to {where}")
    for volume in online:  # an apply may leave a customer folder empty; an erasure may not
        problems += [f"{volume}:{d} emptied and left" for d in archive.empty_dirs(volume)
                     if f"{volume}:{d}" not in empty]
    assert not problems, "\n".join([f"after {step}:", *problems])


# A passport of the erased customer's in the trash of a drive away at the erasure, held by a shoot
# hold: when the drive is back, the held trash was erased (found by hand, 2026-12-01).
@example(customers=["Mäkinen Anna", "Virtanen Matti"],
         specs=[("backup", 0, 0, 0, "passport", date(2019, 8, 2), [0, 2], False),
                ("studio", 1, 2, 0, "wedding", date(2019, 8, 2), [0], True)],
         hold_specs=[("shoot", 0, None, 0, False, False)], two_volumes=True, unplug=True, how=3,
         config_until="none")
# The same with the hold added after the erasure, while the drive is away.
@example(customers=["Mäkinen Anna", "Virtanen Matti"],
         specs=[("backup", 0, 0, 0, "passport", date(2019, 8, 2), [0, 2], False)],
         hold_specs=[("path-sub", 0, 30, 0, False, True)], two_volumes=True, unplug=True, how=2,
         config_until="none")
@pytest.mark.timeout(300 if PROFILE.startswith("ci") else 0)  # `long` runs as long as it takes
@settings(settings.get_profile(PROFILE),
          max_examples=ERASE_EXAMPLES if PROFILE.startswith("ci") else
          settings.get_profile(PROFILE).max_examples)
@given(customers=st.lists(st.sampled_from(CUSTOMERS), min_size=2, max_size=4, unique=True),
       specs=shoots, hold_specs=holds, two_volumes=st.booleans(), unplug=st.booleans(),
       how=st.integers(0, 3), config_until=st.sampled_from(("none",) + UNTIL))
def test_erase_removes_every_unheld_file_of_the_customer_and_nothing_else(
        customers, specs, hold_specs, two_volumes, unplug, how, config_until):
    root = Path(tempfile.mkdtemp(prefix="ak-erase-"))
    try:
        run_example(root, customers, specs, hold_specs, two_volumes, unplug, how, config_until)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_example(root, customers, specs, hold_specs, two_volumes, unplug, how, config_until):
    erased = customers[0]
    key = normalize_customer(erased)
    holds_: list[Held] = []
    config_hold = ""
    if config_until != "none":  # a customer hold in the config, spelled another way
        until = None if config_until is None else TODAY + timedelta(days=config_until)
        config_hold = (f"holds:\n  - {{customer: \"{spell(customers[config_until is None], 2)}\","
                       f" kind: invoice, reason: open invoice"
                       f"{'' if until is None else f', until: {until}'}}}\n")
        holds_.append(Held("customer", None,
                           normalize_customer(customers[config_until is None]), until))
    archive = Archive(root, two_volumes, config_hold)
    s = archive.studio
    volumes = ("studio", "backup") if two_volumes else ("studio",)
    for volume, who, layout, spelling, type_, day, names, copy in specs:
        customer = customers[who % len(customers)]
        rel = folder_of(customer, layout, spelling, type_, day)
        volume = volume if volume in volumes else "studio"
        archive.add_shoot(volume, rel, normalize_customer(customer), names)
        if copy and two_volumes:
            other = "backup" if volume == "studio" else "studio"
            archive.add_shoot(other, rel, normalize_customer(customer), names)
    s.ok("scan")
    s.ok("apply")  # the passports are due: they go to trash
    for f in archive.files:
        where = archive.locate(f)
        assert len(where) == 1, (f, where)
        f.where = where[0]

    shoots_ = [s[1:] for s in sorted({(f.key != key, f.volume, f.shoot) for f in archive.files})]
    unplug = unplug and two_volumes
    holds_ += add_holds(archive, customers, shoots_, [h for h in hold_specs if not h[5]])
    empty = {f"{v}:{d}" for v in volumes for d in archive.empty_dirs(v)}
    online = {"studio"} if unplug else set(volumes)
    parked = root / "parked"
    if unplug:
        os.rename(s.volumes["backup"], parked)
    before = {i: f.where for i, f in enumerate(archive.files)}
    for f in archive.files:
        if f.key == key:
            note(f"erased customer's file {'in place' if f.where == 'place' else 'in trash'}"
                 f"{', offline' if f.volume not in online else ''}"
                 f"{', held' if any(h.keeps(f) for h in holds_) else ''}")
    s.ok("erase", "--customer", spell(erased, how), "--yes", "--force", "--reason", "by e-mail")
    # holds added after the erasure, while the backup drive is away: read when it is back
    late = add_holds(archive, customers, shoots_, [h for h in hold_specs if h[5]])
    if unplug:
        os.rename(parked, s.volumes["backup"])  # checked as it was: untouched while away
    check(archive, key, holds_, online, before, empty, "erase")
    if unplug:
        now = {i: (archive.locate(f) or [None])[0] for i, f in enumerate(archive.files)}
        s.ok("apply")  # backup is back: the pending erasure is carried out there
        check(archive, key, holds_ + late, set(volumes), now, empty,
              "the apply after the drive came back")


def add_holds(archive: Archive, customers, shoots_, specs) -> list[Held]:
    """Add the holds (released ones released again at once); return those in force."""
    out = []
    for scope, pick, until_days, spelling, release, _ in specs:
        until = None if until_days is None else TODAY + timedelta(days=until_days)
        volume, shoot = shoots_[pick % len(shoots_)]
        files = sorted(f.rel for f in archive.files if (f.volume, f.shoot) == (volume, shoot))
        args = ["--kind", "invoice", "--reason", "open invoice", "--force"]  # after an erasure
        if scope == "customer":  # the index may no longer know the customer or the shoot
            owner = next(f.key for f in archive.files if f.shoot == shoot)
            name = next(c for c in customers if normalize_customer(c) == owner)
            args += ["--customer", spell(name, spelling)]
            held = Held("customer", None, owner, until)
        elif scope == "shoot":
            args += ["--shoot", f"{volume}:{shoot}"]
            held = Held("shoot", volume, fold(shoot), until)
        else:
            target = {"path-shoot": shoot, "path-sub": f"{shoot}/RAW",
                      "path-file": files[pick % len(files)],
                      "path-parent": shoot.rsplit("/", 1)[0] if "/" in shoot else shoot,
                      "volume": ""}[scope]
            args += ["--path", f"{volume}:{target}"]
            held = Held("path", volume, fold(target), until)
        if until is not None:
            args += ["--until", until.isoformat()]
        hold_id = archive.studio.ok("hold", "add", *args).stdout.split()[1]
        if release:
            archive.studio.ok("hold", "release", hold_id)
        else:
            out.append(held)
    return out
