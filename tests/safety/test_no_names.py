"""Property (promise 7): the audit log never holds a customer's name or a path in clear; after
`erase --yes` of a customer none of whose shoots a hold kept, no file archivekeeper keeps (under
state_dir: the index, its WAL or journal, the audit log, anything else there; under report.dir:
the stored reports) holds their name in any form; a pending erasure carried out later by an
`apply` that finds the drive back leaves none either; and nothing of anyone else goes with it
(SPEC "Erasure", promise 7).

The histories: 2-4 customers with generated names (random letters with ä/ö/å, so they occur
nowhere by chance) whose shoots are spelled as owners write them (NFC, NFD, `_`, upper case) in
every layout, on a studio disk and a removable backup; a random run of scan, plan, apply (notice
0: passports go to trash), holds added and released (reasons naming the customer, another one,
or no one), touch, trash restore and purge, days passing, report (stored in report.dir), export
to a file outside state_dir and erase previews; then `erase --yes` of one customer, sometimes
with the backup away (pending, carried out by the apply after it is back), sometimes with a shoot
of theirs held; then more commands and a second report. The real CLI runs in-process
(tests/conftest.py's Studio) on real temp folders. Profiles: tests/safety/conftest.py (`ci` runs
NAMES_EXAMPLES examples, derandomized; `long` explores).

The oracle reads every byte of every file as UTF-8, UTF-16 (both byte orders and alignments),
with JSON `\\uXXXX` escapes and HTML character references undone, NFC, case-folded, with `_` and
white space as one space, and looks for the customer's name and for each word of it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import OLD, Studio, at
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
NAMES_EXAMPLES = 25
RULES = """\
rules:
  - {name: passports, match: {type: passport}, delete_after: 1 day}
  - {name: old-portraits, match: {type: portrait}, delete_after: 8 years}
safety:
  notice_period: 0 days
  max_fraction_per_volume: 1.0
"""
TYPES = ("passport", "wedding", "portrait")
DAYS = (date(2016, 5, 1), date(2019, 8, 2), date(2024, 3, 3))
RETENTION = 30  # days, the default trash_retention
ASCII = "bdfghjklmnprstvz"  # no vowel: a word of these and ä/ö/å is no English or hex text
MARKS = "äöå"


# -- names ----------------------------------------------------------------------------------------

@st.composite
def words(draw) -> str:
    letters = draw(st.lists(st.sampled_from(ASCII), min_size=3, max_size=6))
    for mark in draw(st.lists(st.sampled_from(MARKS), min_size=1, max_size=2)):
        letters.insert(draw(st.integers(0, len(letters))), mark)
    return "".join(letters).capitalize()


def apart(words_: list[str]) -> bool:
    """No word holds another: one customer's name would carry the other's."""
    folded = [fold(w) for w in words_]
    return not any(a != b and a in b for a in folded for b in folded)


def spell(name: str, how: int) -> str:
    """One of the ways a folder or the owner may write the name."""
    return (name, unicodedata.normalize("NFD", name), name.lower().replace(" ", "_"),
            name.upper())[how % 4]


def fold(text: str) -> str:
    """The text as the oracle compares it: NFC, case-folded, `_` and white space as one space."""
    return re.sub(r"[\s_]+", " ", unicodedata.normalize("NFC", unicodedata.normalize(
        "NFC", text).casefold()))


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def readings(data: bytes) -> list[str]:
    """Every way the bytes could carry text: UTF-8 and UTF-16 (SQLite may store text so), each
    also with JSON \\u escapes and HTML character references undone; all folded."""
    texts = [data.decode("utf-8", "replace")]
    for codec in ("utf-16-le", "utf-16-be"):
        texts += [data[start:len(data) - (len(data) - start) % 2].decode(codec, "replace")
                  for start in (0, 1)]
    out = []
    for text in texts:
        out.append(fold(text))
        unescaped = html.unescape(_JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))
        # a JSON-escaped NFD name: the combining mark came out of its own escape
        out.append(fold(unescaped))
    return out


def needles(name: str) -> list[str]:
    """What must not be found of a customer: the whole name, and each word of it."""
    return [fold(name), *(fold(w) for w in name.split())]


def leaks(path: Path, texts: list[str], what: str) -> list[str]:
    """Where each text (folded) occurs in the file (its bytes and its name)."""
    found = readings(path.read_bytes()) + [fold(path.name)]
    return [f"{path}: {what} {t!r}" for t in texts if any(t in r for r in found)]


def files_in(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink())


# -- the archive ----------------------------------------------------------------------------------

@dataclass
class File:
    volume: str
    rel: str  # relative to the volume
    shoot: str  # the shoot folder, relative to the volume
    customer: int
    data: bytes


@dataclass
class Hold:
    id: str
    customer: int | None  # the customer it is on, or None for a shoot hold
    shoot: tuple[str, str] | None  # (volume, folder)
    until: date | None
    released: bool = False

    def active(self, today: date) -> bool:
        return not self.released and (self.until is None or self.until >= today)


@dataclass
class History:
    root: Path
    names: list[str]
    studio: Studio = field(init=False)
    files: list[File] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    days: int = 0  # how far the clock has moved on from today
    exports: int = 0
    erased: bool = False
    steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reports = self.root / "reports"
        self.studio = Studio(self.root, volumes=("studio", "backup"), removable=("backup",),
                             extra=RULES + f"report:\n  dir: {self.reports}\n")
        # the day the history starts, read once: a run across midnight keeps one calendar
        self.start = date.today()
        self.studio.clock_env = at(self.start)
        self.studio.init_volumes()

    @property
    def today(self) -> date:
        return self.start + timedelta(days=self.days)

    def run(self, *args: str, codes=(0,)):
        self.steps.append(" ".join(args))
        result = self.studio.run(*args)
        assert result.exit_code in codes, (args, result.exit_code, result.output, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        self.check_audit(" ".join(args))
        return result

    def add_shoot(self, volume: str, rel: str, who: int, frames: list[str]) -> None:
        if any(f.volume == volume and (f.shoot == rel or rel.startswith(f.shoot + "/")
                                       or f.shoot.startswith(rel + "/")) for f in self.files):
            return  # the same folder twice, or one shoot inside another
        files = {}
        for frame in frames:
            data = f"frame {len(self.files)}\n".encode() * (1 + len(self.files) % 3)
            files[frame] = data
            self.files.append(File(volume, f"{rel}/{frame}", rel, who, data))
        self.studio.shoot(volume, rel, files, mtime=OLD)

    def shoots(self, who: int | None = None) -> list[tuple[str, str]]:
        return sorted({(f.volume, f.shoot) for f in self.files
                       if who is None or f.customer == who})

    def locate(self, f: File) -> list[str]:
        """Where the file is now, by its bytes: 'place' and/or the trash batches holding it."""
        top = self.studio.volumes[f.volume]
        found = ["place"] if _holds(top / f.rel, f.data) else []
        trash = top / ".archivekeeper" / "trash"
        if trash.is_dir():
            found += [b.name for b in sorted(trash.iterdir()) if _holds(b / f.rel, f.data)]
        return found

    # -- the oracle -------------------------------------------------------------------------------
    def check_audit(self, step: str) -> None:
        """No customer's name, no shoot folder and no file name of a shoot in the audit log."""
        audit = self.studio.state / "audit.jsonl"
        if not audit.exists():
            return
        texts = [t for name in self.names for t in needles(name)]
        texts += sorted({fold(f.shoot) for f in self.files} | {fold(f.rel) for f in self.files}
                        | {fold(os.path.basename(f.rel)) for f in self.files})
        found = leaks(audit, texts, "in clear:")
        assert not found, "\n".join([f"after {step}:", *found, *self.trail()])

    def check_erased(self, who: int, step: str) -> None:
        """No file under state_dir or report.dir holds the customer's name in any form."""
        texts = needles(self.names[who])
        found = [leak for path in files_in(self.studio.state, self.reports)
                 for leak in leaks(path, texts, "the erased customer's name")]
        assert not found, "\n".join([f"after {step}:", *found, *self.trail()])

    def trail(self) -> list[str]:
        return ["the history:", *(f"  {s}" for s in self.steps)]

    def others_snapshot(self, erased: int) -> tuple[dict[int, list[str]], set]:
        """Where every file of the other customers is, and the shoots the index lists."""
        where = {i: self.locate(f) for i, f in enumerate(self.files) if f.customer != erased}
        listed = {(s["volume"], fold(s["path"]))
                  for s in self.studio.json("shoots")["shoots"]
                  if fold(s["customer"]) != fold(self.names[erased])}
        return where, listed

    def check_others(self, erased: int, before, step: str, applying: bool) -> None:
        """Nothing of anyone else went: each file is still on its volume (an apply may move it
        to trash, and purge trash expired), and but for an apply's trashing, the index lists
        their shoots still."""
        where, listed = self.others_snapshot(erased)
        problems = []
        for i, was in before[0].items():
            f = self.files[i]
            now = where[i]
            trash_only = was and "place" not in was
            if was and not now and not (applying and self.days > 0 and trash_only):
                problems.append(f"{f.volume}:{f.rel} (customer {f.customer}) was in {was}, "
                                f"is gone")
        if not applying:
            problems += [f"the index no longer lists {s}" for s in sorted(before[1] - listed)]
        assert not problems, "\n".join([f"after {step}:", *problems, *self.trail()])


def _holds(path: Path, data: bytes) -> bool:
    return path.is_file() and not path.is_symlink() and path.read_bytes() == data


def note(what: str) -> None:
    try:
        event(what)
    except InvalidArgument:  # run outside Hypothesis
        pass


def folder_of(name: str, layout: int, how: int, type_: str, day: date) -> str:
    """The shoot folder in one of tests/conftest.py's layouts."""
    name = spell(name, how)
    return (f"{day:%Y%m%d}_{name.replace(' ', '_')}_{type_}", f"{name}/{day:%d.%m.%Y} {type_}",
            f"{day:%Y-%m-%d} {name}", f"Arkisto/{name}")[layout]


# -- the history ----------------------------------------------------------------------------------

shoot_specs = st.lists(st.tuples(
    st.sampled_from(("studio", "backup")),
    st.integers(0, 3),  # customer
    st.integers(0, 3),  # layout
    st.integers(0, 3),  # spelling
    st.sampled_from(TYPES),
    st.sampled_from(DAYS),
    st.integers(1, 3),  # frames
    st.booleans(),  # a copy on the other volume
), min_size=2, max_size=7)

REASONS = ("plain", "own", "other")
steps = st.one_of(
    st.tuples(st.sampled_from(("scan", "plan", "apply", "purge", "report", "days"))),
    st.tuples(st.just("hold"), st.integers(0, 3), st.booleans(), st.sampled_from(REASONS),
              st.integers(0, 3), st.sampled_from((None, 30)), st.booleans()),
    st.tuples(st.just("release"), st.integers(0, 9)),
    st.tuples(st.just("touch"), st.integers(0, 3), st.sampled_from(REASONS), st.integers(0, 3)),
    st.tuples(st.just("restore"), st.integers(0, 9)),
    st.tuples(st.just("export"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("preview"), st.integers(0, 3), st.integers(0, 3)),
)


def reason(h: History, kind: str, who: int, other: int, how: int) -> str:
    """A reason naming no one, the customer it is about, or another customer (before the
    erasure, the one to be erased where it can)."""
    if kind == "own":
        return f"{spell(h.names[who], how)} asked us to wait"
    if kind == "other":
        if other == 0 and not h.erased:
            note("another customer's reason names the one to be erased")
        return f"same order as {spell(h.names[other], how)}"
    return "open invoice"


def take(h: History, spec: tuple, erased: int | None) -> None:
    """One step of the history; after the erasure (erased set) none names the erased customer
    as its subject: a hold or a use of theirs would be a new order."""
    kind = spec[0]
    n = len(h.names)

    def pick(i: int) -> int:
        return i % n if erased is None else 1 + i % (n - 1)  # the erased one is customer 0

    def other(who: int) -> int:
        return (1 if who == 0 else 0) if erased is None else pick(who + 1)

    if kind in ("scan", "plan", "apply"):
        h.run(kind)
    elif kind == "purge":
        h.run("trash", "purge")
    elif kind == "report":
        h.run("report")
    elif kind == "days":
        if h.days > RETENTION:  # twice at most: hold ends and purges are seen, that is enough
            return
        h.days += RETENTION + 1
        h.studio.clock_env = at(h.today)
    elif kind == "hold":
        _, who, on_shoot, why, how, until_days, release = spec
        who = pick(who)
        until = None if until_days is None else h.today + timedelta(days=until_days)
        args = ["--kind", "invoice", "--reason", reason(h, why, who, other(who), how)]
        if on_shoot and h.shoots(who):
            volume, folder = h.shoots(who)[how % len(h.shoots(who))]
            args += ["--shoot", f"{volume}:{folder}", "--force"]  # it may be in trash
            hold = Hold("", None, (volume, folder), until)
        else:
            args += ["--customer", spell(h.names[who], how), "--force"]
            hold = Hold("", who, None, until)
        if until is not None:
            args += ["--until", until.isoformat()]
        hold.id = h.run("hold", "add", *args).stdout.split()[1]
        h.holds.append(hold)
        if release:
            h.run("hold", "release", hold.id)
            hold.released = True
    elif kind == "release":
        open_ = [x for x in h.holds if not x.released]
        if open_:
            hold = open_[spec[1] % len(open_)]
            h.run("hold", "release", hold.id)
            hold.released = True
    elif kind == "touch":
        _, who, why, how = spec
        who = pick(who)
        h.run("touch", "--customer", spell(h.names[who], how), "--reason",
              reason(h, why, who, other(who), how), codes=(0, 1))
    elif kind == "restore":
        items = h.studio.json("trash", "list")["items"]
        if items:
            # exit 1: something is at the original path now (never overwritten)
            h.run("trash", "restore", str(items[spec[1] % len(items)]["id"]), codes=(0, 1))
    elif kind == "export":
        _, who, how = spec
        who = who % n  # the erased customer's too: it reads only
        h.exports += 1
        out = h.root / "exports" / f"{h.exports}.json"
        out.parent.mkdir(exist_ok=True)
        h.run("export", "--customer", spell(h.names[who], how), "--out", str(out), codes=(0, 1))
    elif kind == "preview":
        _, who, how = spec
        h.run("erase", "--customer", spell(h.names[pick(who)], how), codes=(0, 1))


def held(h: History, who: int) -> bool:
    """Does a hold in force keep some shoot of the customer (so their name may stay)?"""
    theirs = set(h.shoots(who))
    return any(x.active(h.today) and (x.customer == who or x.shoot in theirs) for x in h.holds)


@pytest.mark.timeout(300 if PROFILE.startswith("ci") else 0)  # `long` runs as long as it takes
@settings(settings.get_profile(PROFILE),
          max_examples=NAMES_EXAMPLES if PROFILE.startswith("ci") else
          settings.get_profile(PROFILE).max_examples)
@given(names=st.lists(words(), min_size=4, max_size=8, unique_by=str.casefold).filter(apart),
       specs=shoot_specs,
       before=st.lists(steps, min_size=2, max_size=12),
       hold_erased=st.sampled_from((None, None, None, "customer", "shoot")),
       unplug=st.booleans(), how=st.integers(0, 3),
       after=st.lists(steps, max_size=6))
def test_no_file_archivekeeper_keeps_names_an_erased_customer(
        names, specs, before, hold_erased, unplug, how, after):
    root = Path(tempfile.mkdtemp(prefix="ak-names-"))
    try:
        run_history(root, [f"{a} {b}" for a, b in zip(names[::2], names[1::2], strict=False)],
                    specs, before, hold_erased, unplug, how, after)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_history(root, names, specs, before, hold_erased, unplug, how, after) -> History:
    h = History(root, names)
    for volume, who, layout, spelling, type_, day, frames, copy in specs:
        who %= len(names)
        rel = folder_of(names[who], layout, spelling, type_, day)
        # file names carry a word too: the audit log must not hold them either
        first, last = names[who].split()
        shots = [f"{first}_0.jpg", f"RAW/{last}_1.jpg", f"export/web/{first}_2.jpg"][:frames]
        h.add_shoot(volume, rel, who, shots)
        if copy:
            h.add_shoot("backup" if volume == "studio" else "studio", rel, who, shots)
    if not h.shoots(0):  # the customer to erase has a shoot
        h.add_shoot("studio", folder_of(names[0], 2, how, "wedding", DAYS[0]), 0, ["a.jpg"])
    h.run("scan")
    for spec in before:
        take(h, spec, None)
    if hold_erased is not None:  # a hold in force on the customer: some of theirs stay
        take(h, ("hold", 0, hold_erased == "shoot", "own", how, None, False), None)
    keeps = held(h, 0)
    unplug = unplug and any(v == "backup" for v, _ in h.shoots())
    note(f"erasure {'held' if keeps else 'unheld'}{', pending' if unplug else ''}")
    others = h.others_snapshot(0)
    parked = root / "parked"
    if unplug:
        os.rename(h.studio.volumes["backup"], parked)
    h.run("erase", "--customer", spell(names[0], how), "--yes", "--force", "--reason",
          "request received by e-mail")
    h.erased = True
    if not keeps:
        h.check_erased(0, "erase")
    if unplug:
        os.rename(parked, h.studio.volumes["backup"])
    h.check_others(0, others, "erase", applying=False)
    if unplug:
        h.run("apply")  # the backup is back: the pending erasure is carried out there
        if not keeps:
            h.check_erased(0, "the apply that found the backup back")
        h.check_others(0, others, "the apply that found the backup back", applying=True)
    for spec in after:
        take(h, spec, 0)
        if not keeps:
            h.check_erased(0, h.steps[-1] if h.steps else "")
    h.run("report")
    if not keeps:
        h.check_erased(0, "the report after")
    return h


# -- the oracle can fail --------------------------------------------------------------------------

PLANTED = ("report", "index", "index-utf16", "wal", "audit-json-escaped", "audit-path")


@pytest.mark.parametrize("violation", PLANTED)
def test_the_oracle_catches_a_violation_planted_by_hand(tmp_path, violation):
    """Do by hand what the product must never do, in each place and form, and check."""
    names = ["Kärppä Mörkö", "Sjöblåm Tövö"]
    h = run_history(tmp_path, names,
                    [("studio", 0, 0, 2, "wedding", DAYS[1], 2, True),
                     ("studio", 1, 2, 1, "passport", DAYS[0], 1, False)],
                    [("report",), ("apply",)], None, False, 0, [])
    name = names[0]
    state = h.studio.state
    if violation == "report":
        report = next(h.reports.glob("*.txt"))
        report.write_bytes(report.read_bytes() + spell(name, 2).encode())
    elif violation in ("index", "index-utf16", "wal"):
        db = sqlite3.connect(state / "index.sqlite")
        if violation == "index-utf16":  # the name as SQLite would store it in a UTF-16 index
            db.execute("INSERT INTO meta VALUES ('planted', ?)",
                       (spell(name, 3).encode("utf-16-le"),))
        else:
            db.execute("INSERT INTO meta VALUES ('planted', ?)", (spell(name, 1),))
        db.commit()
        if violation == "wal":  # left in the journal only: the row is gone from the table
            db.execute("DELETE FROM meta WHERE key = 'planted'")
            db.commit()
            assert db.execute("SELECT count(*) FROM meta WHERE key = 'planted'").fetchone() == (0,)
            # checked while open: closing the last connection checkpoints the journal away
            with pytest.raises(AssertionError, match=r"index\.sqlite-wal: the erased"):
                h.check_erased(0, "planted")
        db.close()
        if violation == "wal":
            return
    elif violation == "audit-json-escaped":
        with open(state / "audit.jsonl", "a") as out:
            out.write(json.dumps({"event": "x", "who": spell(name, 1)}) + "\n")
    else:
        with open(state / "audit.jsonl", "a") as out:
            out.write(json.dumps({"event": "x", "path": h.files[0].rel.upper()}) + "\n")
    if violation.startswith("audit"):
        with pytest.raises(AssertionError, match="in clear"):
            h.check_audit("planted")
    else:
        with pytest.raises(AssertionError, match="the erased customer's name"):
            h.check_erased(0, "planted")
