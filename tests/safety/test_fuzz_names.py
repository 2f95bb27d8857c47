"""Promise 9 and "Names and paths in output" for folder names: newlines, ESC, bidi controls,
invalid UTF-8, NFD, names of 255 bytes, braces, globs and dots never raise in the pattern
matcher, never make it call a folder a shoot without a plausible date and a customer, and
reach `shoots --json` as text that round-trips to the folder's bytes.

10,000 generated names (tests/safety/fuzzing.py hostile_name) go through naming.classify in
several places of a layout; Hypothesis writes shoot names from drawn customers, dates and types
and checks they are read back; and a real volume of some 3,000 such folders is scanned by the
CLI, whose shoots must be exactly the folders classify calls shoots."""

from __future__ import annotations

import json
import os
import random
import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import OLD, Studio
from hypothesis import given
from hypothesis import strategies as st

from archivekeeper.core.naming import (
    EARLIEST_PLAUSIBLE,
    Container,
    ShootName,
    Unrecognised,
    classify,
    compile_pattern,
    normalize_customer,
)
from safety import fuzzing

TODAY = date.today()
# The test studio's layouts (tests/conftest.py BASE_CONFIG), then some with other literals.
STUDIO = ("{date} {customer}", "{date}_{customer}_{type}", "{customer}/{date} {type}",
          "Arkisto/{customer}")
OTHERS = ("{type}-{customer}", "{date}{customer}", "Kuvat {date}/{customer} ({type})",
          "{customer}/{date}", "* {customer} [{type}]")
LAYOUTS = {texts: tuple(compile_pattern(t) for t in texts) for texts in (STUDIO, OTHERS)}
# Raw in text output they would split a row or drive a terminal (SPEC): C0 and C1 controls but
# the tab and newline that separate cells and rows, DEL, line/paragraph separators, bidi ones.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def decoded(raw: bytes) -> str:
    """A name as the program holds it: its text, an undecodable byte as a lone surrogate."""
    return raw.decode("utf-8", "surrogateescape")


def check_verdict(patterns, parts: tuple[str, ...], verdict, today: date) -> str:
    """Check one answer of classify; return its kind."""
    assert isinstance(verdict, ShootName | Container | Unrecognised), verdict
    if any(re.search("[\udc80-\udcff]", part) for part in parts):
        assert isinstance(verdict, Unrecognised)  # SPEC: its customer could not be matched
    if isinstance(verdict, Unrecognised):
        assert verdict.reason
        return "unrecognised"
    if isinstance(verdict, Container):
        return "container"
    (pattern,) = [p for p in patterns if p.text == verdict.pattern]
    assert pattern.depth == len(parts)
    if pattern.has_date:
        assert EARLIEST_PLAUSIBLE <= verdict.date <= today + timedelta(days=1), verdict
    else:
        assert verdict.date is None
    assert verdict.customer and verdict.customer == verdict.customer.strip(), verdict
    assert verdict.customer_key and verdict.customer_key == normalize_customer(verdict.customer)
    whole = unicodedata.normalize("NFC", "/".join(parts))
    assert all(word in whole for word in verdict.customer.split(" ")), verdict
    if "{type}" in pattern.text:
        assert verdict.type and not re.search(r"[\s_/]", verdict.type), verdict
        assert verdict.type in whole
    else:
        assert verdict.type is None
    return "shoot"


def places(name: str) -> list[tuple[str, ...]]:
    """Where a folder name can stand in a layout: at the top, under Arkisto, as a customer
    folder over a dated one, as a dated folder under a customer folder."""
    return [(name,), ("Arkisto", name), (name, "12.05.2019 passikuva"), ("Virtanen Matti", name)]


def run_classify(how_many: int, seed: int) -> None:
    rng = random.Random(seed)
    kinds = Counter()
    for _ in range(how_many):
        name = decoded(fuzzing.hostile_name(rng, TODAY))
        for patterns in LAYOUTS.values():
            for parts in places(name):
                verdict = classify(patterns, parts, TODAY)
                kinds[check_verdict(patterns, parts, verdict, TODAY)] += 1
                # SPEC: matched after Unicode NFC, so a Mac's NFD spelling is the same folder
                nfd = tuple(unicodedata.normalize("NFD", part) for part in parts)
                assert classify(patterns, nfd, TODAY) == verdict, parts
    fuzzing.note(f"classify fuzz (seed {seed}): {how_many} names, {sum(kinds.values())} verdicts "
          f"{dict(kinds)}")
    assert kinds["shoot"] and kinds["container"] and kinds["unrecognised"]


@pytest.mark.timeout(300)
def test_10000_hostile_names_are_classified_consistently():
    run_classify(fuzzing.count(10_000), fuzzing.seed())


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_100000_hostile_names_slow():
    run_classify(fuzzing.count(10_000, slow=True), fuzzing.seed(slow=True))


# --- Hypothesis: written shoot names are read back ------------------------------------------

# Any character a name may hold but '/' and NUL (and the surrogates, which are no UTF-8)
NAME_CHARS = st.characters(exclude_characters="/\0", exclude_categories=["Cs"])
CUSTOMERS = st.one_of(
    st.text(NAME_CHARS, min_size=1, max_size=30),
    st.lists(st.sampled_from(fuzzing.WORDS + fuzzing.SEPARATORS), min_size=1,
             max_size=5).map(lambda words: "".join(words).replace("/", "\\")),
).filter(lambda c: re.search(r"[^\s_/]", c) and c not in (".", ".."))
TYPES = st.text(st.characters(exclude_characters="/\0_", exclude_categories=["Cs", "Zs", "Zl",
                                                                             "Zp", "Cc"]),
                min_size=1, max_size=12).filter(lambda t: not re.search(r"\s", t))
DATE_FORMS = ("%Y-%m-%d", "%Y%m%d", "%d.%m.%Y")


@pytest.mark.timeout(300)
@fuzzing.hypothesis_settings(300)
@given(customer=CUSTOMERS, kind=TYPES,
       day=st.dates(min_value=EARLIEST_PLAUSIBLE, max_value=TODAY + timedelta(days=1)),
       form=st.sampled_from(DATE_FORMS), nfd=st.booleans())
def test_a_written_shoot_name_is_read_back(customer, kind, day, form, nfd):
    """Each layout alone, so that the first-match rule does not hide what it reads."""
    written = day.strftime(form)
    if nfd:
        customer, kind = (unicodedata.normalize("NFD", t) for t in (customer, kind))
    expected_customer = re.sub(r"[\s_]+", " ", unicodedata.normalize("NFC", customer)).strip()
    cases = {
        "{date} {customer}": ((f"{written} {customer}",), None),
        "{date}_{customer}_{type}": ((f"{written}_{customer}_{kind}",), kind),
        "{customer}/{date} {type}": ((customer, f"{written} {kind}"), kind),
        "Arkisto/{customer}": (("Arkisto", customer), None),
    }
    for text, (parts, shoot_type) in cases.items():
        patterns = (compile_pattern(text),)
        verdict = classify(patterns, parts, TODAY)
        check_verdict(patterns, parts, verdict, TODAY)
        assert isinstance(verdict, ShootName), (text, parts, verdict)
        assert verdict.customer == expected_customer, (text, parts)
        assert verdict.date == (None if text.startswith("Arkisto") else day)
        assert verdict.type == (unicodedata.normalize("NFC", shoot_type) if shoot_type else None)


PATTERN_PIECES = ["{date}", "{customer}", "{type}", "{name}", "{}", "/", " ", "_", "-", "(",
                  ".", "..", "{", "}", "*", "\\", "\n", "\u202e", "ä", "a\u0308", "x"]


@pytest.mark.timeout(300)
@fuzzing.hypothesis_settings(300)
@given(pieces=st.lists(st.sampled_from(PATTERN_PIECES), max_size=9),
       names=st.lists(st.randoms(use_true_random=False).map(
           lambda r: decoded(fuzzing.hostile_name(r, TODAY))), min_size=1, max_size=4))
def test_any_pattern_compiles_or_says_why_and_then_never_raises(pieces, names):
    text = "".join(pieces)
    try:
        patterns = (compile_pattern(text),)
    except ValueError as err:
        assert str(err).startswith("pattern ") and "\n" not in str(err).replace(text, "")
        return
    for depth in range(1, len(names) + 1):
        check_verdict(patterns, tuple(names[:depth]), classify(patterns, tuple(names[:depth]),
                                                               TODAY), TODAY)


# --- a real volume of hostile folders, scanned by the CLI -------------------------------------


def expected_shoots(tree: dict[bytes, list[bytes]], today: date):
    """Given {top folder: [its children made as folders]}, return what the scanner must make of
    them: ({relative path: ShootName}, number of unrecognised folders), by the same walk (a
    container is entered, a shoot is not, a name that is not UTF-8 is unrecognised)."""
    patterns = LAYOUTS[STUDIO]
    shoots, unrecognised = {}, 0
    for top, children in tree.items():
        try:
            verdict = classify(patterns, (top.decode("utf-8"),), today)
        except UnicodeDecodeError:
            verdict = Unrecognised("folder name is not valid UTF-8")
        if isinstance(verdict, ShootName):
            shoots[top] = verdict
        if not isinstance(verdict, Container):
            unrecognised += isinstance(verdict, Unrecognised)
            continue
        for child in children:
            try:
                inner = classify(patterns, (top.decode(), child.decode("utf-8")), today)
            except UnicodeDecodeError:
                inner = Unrecognised("folder name is not valid UTF-8")
            if isinstance(inner, ShootName):
                shoots[top + b"/" + child] = inner
            unrecognised += isinstance(inner, Unrecognised)  # no pattern is three deep
    return shoots, unrecognised


def build_tree(rng: random.Random, how_many: int, today: date) -> dict[bytes, list[bytes]]:
    """how_many folders or a few more: most at the top, a quarter under Arkisto, some under
    customer folders of hostile names."""
    tree: dict[bytes, set[bytes]] = {b"Arkisto": set()}
    while sum(1 + len(children) for children in tree.values()) < how_many:
        name = fuzzing.hostile_name(rng, today)
        roll = rng.random()
        if roll < 0.25:
            tree[b"Arkisto"].add(name)
        elif roll < 0.3:
            customer = tree.setdefault(name, set())
            for _ in range(rng.randint(1, 25)):
                customer.add(fuzzing.hostile_name(rng, today) if rng.random() < 0.7 else
                             f"12.05.2019 {rng.choice(fuzzing.TYPES)}".encode())
        else:
            tree.setdefault(name, set())
    return {top: sorted(children) for top, children in tree.items()}


def run_scan_over_names(tmp_path: Path, how_many: int, seed: int) -> None:
    studio = Studio(tmp_path, extra="rules:\n  - {name: five-years, delete_after: 5 years}\n")
    studio.init_volumes()
    today = datetime.fromisoformat(studio.clock_env["ARCHIVEKEEPER_FAKE_NOW"]).date()
    tree = build_tree(random.Random(seed), how_many, today)
    root = os.fsencode(studio.volumes["studio"])
    for top, children in tree.items():
        for rel in [top] + [top + b"/" + child for child in children]:
            os.makedirs(root + b"/" + rel, exist_ok=True)
            with open(root + b"/" + rel + b"/IMG_0001.jpg", "wb") as file:
                file.write(b"not a photo")
    for folder, _, files in os.walk(root):  # old, so the dates are not the clock's
        for name in [b"", *files]:
            os.utime(os.path.join(folder, name) if name else folder, (OLD, OLD))
    made = sum(1 + len(children) for children in tree.values())
    expected, unrecognised = expected_shoots(tree, today)

    scanned = studio.cli("scan", timeout=600)
    assert scanned.returncode == 0, scanned.stderr[-3000:]
    assert fuzzing.no_traceback(scanned.stderr), scanned.stderr[-3000:]
    counted = re.search(r"(\d+) unrecognised folders", scanned.stdout)
    assert (int(counted.group(1)) if counted else 0) == unrecognised, scanned.stdout

    listed = studio.cli("shoots", "--json")
    assert listed.returncode == 0 and fuzzing.no_traceback(listed.stderr), listed.stderr[-3000:]
    shoots = json.loads(listed.stdout)["shoots"]
    by_bytes = {fuzzing.json_path_bytes(s["path"]): s for s in shoots}
    assert len(by_bytes) == len(shoots)  # no two paths read back as one
    assert sorted(by_bytes) == sorted(expected)
    for rel, shoot in by_bytes.items():
        assert os.path.isdir(root + b"/" + rel)
        name = expected[rel]
        assert (shoot["customer"], shoot["type"]) == (name.customer, name.type), shoot
        assert normalize_customer(shoot["customer"])
        shown = date.fromisoformat(shoot["date"])
        assert EARLIEST_PLAUSIBLE <= shown <= today + timedelta(days=1), shoot
        if name.date is not None:
            assert (shoot["date"], shoot["date_source"]) == (name.date.isoformat(), "folder")

    table = studio.cli("shoots")
    assert table.returncode == 0 and fuzzing.no_traceback(table.stderr)
    rows = table.stdout.split("\n")[:-1]
    assert len(rows) == 1 + len(shoots)  # no name split a row
    assert all(row.count("\t") == 10 for row in rows)  # nor a cell
    assert not RAW_CONTROL.search(table.stdout), RAW_CONTROL.search(table.stdout)
    planned = studio.cli("plan")  # every shoot dated 2019 or later is due in five years
    assert planned.returncode == 0 and fuzzing.no_traceback(planned.stderr), planned.stderr
    items = json.loads(studio.cli("plan", "--json").stdout)["items"]
    rows = [line for line in planned.stdout.split("\n") if "\t" in line]
    assert len(rows) == 1 + len(items) and all(row.count("\t") == 10 for row in rows)
    assert not RAW_CONTROL.search(planned.stdout), RAW_CONTROL.search(planned.stdout)
    # the other text outputs that show names: held shoots, the audit log, explanations
    for shoot in shoots[:3]:
        target = "studio:" + decoded(fuzzing.json_path_bytes(shoot["path"]))
        studio.ok("hold", "add", "--shoot", target, "--kind", "other", "--reason", "r")
        explained = studio.ok("explain", target).stdout
        assert not RAW_CONTROL.search(explained), explained
    for args in (("hold", "list"), ("audit", "show")):
        out = studio.ok(*args).stdout
        assert not RAW_CONTROL.search(out), (args, out)
    fuzzing.note(f"scan over hostile names (seed {seed}): {made} folders, {len(shoots)} shoots, "
          f"{unrecognised} unrecognised, {len(items)} plan items")
    assert len(shoots) > made // 10 and unrecognised > made // 10


@pytest.mark.timeout(600)
def test_scan_of_3000_hostile_folders_lists_exactly_the_shoots_and_round_trips_paths(tmp_path):
    run_scan_over_names(tmp_path, fuzzing.count(3000), fuzzing.seed())


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_scan_of_30000_hostile_folders_slow(tmp_path):
    run_scan_over_names(tmp_path, fuzzing.count(3000, slow=True), fuzzing.seed(slow=True))


def test_a_shoot_type_with_control_and_bidi_characters_is_shown_escaped(studio):
    """Found by the scan above: {type} is one word of anything but white space, '_' and '/', so
    it can hold ESC, BEL or U+202E, and `shoots` and `explain` printed it raw."""
    folder = "2019-05-12_Virtanen_\x1b]0;pwned\x07\u202egpj"
    studio.shoot("studio", folder, mtime=OLD)
    studio.ok("scan")
    for args in (["shoots"], ["explain", f"studio:{folder}"]):
        out = studio.ok(*args).stdout
        assert not RAW_CONTROL.search(out), (args, out)
        assert "\\x1b]0;pwned\\x07\\u202egpj" in out, (args, out)


def test_audit_show_shows_the_names_it_resolves_escaped(studio):
    """Found by running the text commands over the hostile tree: `audit show` resolves a
    record's tokens to the customer or volume:path the index knows, and printed them raw."""
    folder = "2019-05-12 Evil\x1b]0;pwned\x07\u202eName\nX"
    studio.shoot("studio", folder, mtime=OLD)
    studio.ok("scan")
    studio.ok("hold", "add", "--shoot", f"studio:{folder}", "--kind", "other", "--reason", "r")
    studio.ok("hold", "add", "--customer", "Evil\x1b]0;pwned\x07\u202eName X", "--kind", "other",
              "--reason", "r")
    out = studio.ok("audit", "show").stdout
    assert not RAW_CONTROL.search(out), out
    assert "target=studio:2019-05-12 Evil\\x1b]0;pwned\\x07\\u202eName\\nX" in out, out
