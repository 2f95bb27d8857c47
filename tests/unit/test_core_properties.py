"""Hypothesis properties of the decision core (policy + planner) against a naive oracle."""

from __future__ import annotations

import fnmatch
import unicodedata
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from archivekeeper.core.durations import Period
from archivekeeper.core.model import (
    Announcement,
    Erasure,
    FileFact,
    Hold,
    Limits,
    Match,
    Rule,
    ShootFact,
)
from archivekeeper.core.naming import normalize_customer
from archivekeeper.core.planner import build_plan, check_clock
from archivekeeper.core.policy import evaluate_all, explain_shoot

CUSTOMERS = ["Virtanen Matti", "virtanen_matti", "Mäkinen Anna", "Ma\u0308kinen  Anna", "Korhonen"]
TYPES = [None, "wedding", "passport"]
VOLUMES = ["studio", "backup-1"]
NAMES = ["JPEG/a.jpg", "RAW/a.CR2", "RAW/b.cr2", "c.NEF", "x.tif"]
# Each glob with the fnmatch patterns that mean the same on the texts generated here.
CUSTOMER_GLOBS = {
    "virtanen*": ["virtanen*"],
    "Mäkinen Anna": ["mäkinen anna"],
    "nobody": ["nobody"],
}
TYPE_GLOBS = {"wedding": ["wedding"], "PASS*": ["pass*"], "*": ["*"]}
PATH_GLOBS = {
    "20*": ["20*"],
    "Virtanen Matti/*": ["virtanen matti/*"],
    "korhonen/**": ["korhonen/*"],
}
FILE_GLOBS = {"*.cr2": ["*.cr2"], "*.jpg": ["*.jpg"], "*.{cr2,nef}": ["*.cr2", "*.nef"]}
TZ = timezone(timedelta(hours=2))


def fold(text):
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


dates = st.dates(min_value=date(2022, 1, 1), max_value=date(2025, 12, 31))
periods = st.one_of(
    st.builds(Period, st.integers(0, 400), st.just("days")),
    st.builds(Period, st.integers(0, 60), st.just("weeks")),
    st.builds(Period, st.integers(0, 30), st.just("months")),
    st.builds(Period, st.integers(0, 4), st.just("years")),
)


@st.composite
def shoots(draw, shoot_id):
    customer = draw(st.sampled_from(CUSTOMERS))
    shot = draw(dates)
    modified = shot + timedelta(days=draw(st.integers(0, 100)))
    last_used = modified + timedelta(days=draw(st.integers(0, 100)))
    nested = draw(st.booleans())
    path = f"{customer}/{shot.isoformat()} x" if nested else f"{shot.isoformat()} {customer}"
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    files = tuple(
        FileFact(f"{path}/{n}", draw(st.integers(0, 5000)), draw(st.integers(0, 10**18)))
        for n in names
    )
    return ShootFact(
        id=shoot_id,
        volume=draw(st.sampled_from(VOLUMES)),
        path=path,
        customer=customer,
        customer_key=normalize_customer(customer),
        date=shot,
        date_source="folder",
        type=draw(st.sampled_from(TYPES)),
        modified=modified,
        last_used=last_used,
        state=draw(st.sampled_from(["online", "online", "online", "offline"])),
        incomplete=draw(st.sampled_from([False, False, False, True])),
        files=files,
    )


def optional(values):
    """Mostly None, so that rules with few keys (that often match) are common."""
    return st.one_of(st.none(), st.none(), st.none(), st.sampled_from(list(values)))


matches = st.builds(
    Match,
    customer=optional(CUSTOMER_GLOBS),
    type=optional(TYPE_GLOBS),
    volume=optional(VOLUMES + ["other"]),
    path=optional(PATH_GLOBS),
    files=optional(FILE_GLOBS),
)
rules = st.builds(
    Rule,
    name=st.sampled_from(["r1", "r2", "r3", "r4"]),
    kind=st.sampled_from(["keep", "delete"]),
    period=periods,
    since=st.sampled_from(["shoot_date", "last_used", "modified"]),
    match=st.one_of(st.none(), matches),
    exclude=st.one_of(st.none(), matches),
)


@st.composite
def holds(draw, paths, today):
    scope = draw(st.sampled_from(["customer", "shoot", "path"]))
    near_today = st.integers(-20, 20).map(lambda days: today + timedelta(days=days))
    until = draw(st.one_of(st.none(), dates, near_today))
    if scope == "customer":
        return Hold(
            "h",
            "invoice",
            "x",
            until,
            customer_key=normalize_customer(draw(st.sampled_from(CUSTOMERS))),
            scope=scope,
        )
    path = draw(st.sampled_from(paths))
    if scope == "path":
        path = draw(st.sampled_from([path, path.split("/")[0], f"{path}/RAW", f"{path}/c.NEF"]))
    return Hold(
        "h",
        "legal-claim",
        "y",
        until,
        volume=draw(st.sampled_from(VOLUMES)),
        path=path,
        scope=scope,
    )


erasures = st.builds(
    Erasure, customer_key=st.sampled_from(CUSTOMERS).map(normalize_customer), on=dates
)


@st.composite
def worlds(draw):
    n = draw(st.integers(1, 4))
    facts = [draw(shoots(i)) for i in range(n)]
    paths = [s.path for s in facts]
    today = draw(dates)
    return {
        "shoots": facts,
        "rules": draw(st.lists(rules, max_size=5)),
        "holds": draw(st.lists(holds(paths, today), max_size=3)),
        "erasures": draw(st.lists(erasures, max_size=2)),
        "today": today,
    }


# --- the naive oracle ---------------------------------------------------------------------------


def key_matches(key, pattern, shoot, f):
    if key == "customer":
        return any(
            fnmatch.fnmatchcase(normalize_customer(shoot.customer), p)
            for p in CUSTOMER_GLOBS[pattern]
        )
    if key == "type":
        return shoot.type is not None and any(
            fnmatch.fnmatchcase(shoot.type, p) for p in TYPE_GLOBS[pattern]
        )
    if key == "volume":
        return shoot.volume == pattern
    if key == "path":
        return any(fnmatch.fnmatchcase(fold(shoot.path), p) for p in PATH_GLOBS[pattern])
    return any(fnmatch.fnmatchcase(fold(f.name), p) for p in FILE_GLOBS[pattern])


def rule_applies(rule, shoot, f):
    keys = ("customer", "type", "volume", "path", "files")
    for key in keys:
        pattern = getattr(rule.match, key) if rule.match else None
        if pattern is not None and not key_matches(key, pattern, shoot, f):
            return False
    for key in keys:
        pattern = getattr(rule.exclude, key) if rule.exclude else None
        if pattern is not None and key_matches(key, pattern, shoot, f):
            return False
    return True


def base_of(rule, shoot):
    return {"shoot_date": shoot.date, "last_used": shoot.last_used, "modified": shoot.modified}[
        rule.since
    ]


def hold_applies(hold, shoot, f):
    if hold.scope == "customer":
        return hold.customer_key == shoot.customer_key
    if hold.volume != shoot.volume:
        return False
    if hold.scope == "shoot":
        return fold(hold.path) == fold(shoot.path)
    return fold(f.relpath) == fold(hold.path) or fold(f.relpath).startswith(fold(hold.path) + "/")


def erased(shoot, erasure_list):
    return any(e.customer_key == shoot.customer_key and shoot.date <= e.on for e in erasure_list)


def file_dates(decisions):
    return {(d.shoot.id, f.relpath): g.date for d in decisions for g in d.groups for f in g.files}


def later_or_same(new, old):
    return new is None or (old is not None and new >= old)


def make_plan(world, decisions, **kw):
    today = world["today"]
    args = dict(
        today=today,
        now=datetime.combine(today, datetime.min.time(), TZ).replace(hour=12),
        notice=Period(14, "days"),
        require_approval=False,
        announcements={},
        limits=Limits(),
        volume_totals={v: (10**6, 10**12) for v in VOLUMES},
    )
    args.update(kw)
    return build_plan(world["shoots"], decisions, **args)


def announced_long_ago(world, decisions):
    first = make_plan(world, decisions)
    at = datetime.combine(world["today"], datetime.min.time(), TZ) - timedelta(days=30)
    return {i.key: Announcement(i.key, at, at) for i in first.items}


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_nothing_held_is_ever_due(world):
    decisions = evaluate_all(world["shoots"], world["rules"], world["holds"], world["erasures"])
    dated = file_dates(decisions)
    for shoot in world["shoots"]:
        for f in shoot.files:
            for hold in world["holds"]:
                if hold_applies(hold, shoot, f):
                    d = dated[(shoot.id, f.relpath)]
                    assert d is None or hold.until is not None and d > hold.until
    plan = make_plan(world, decisions, announcements=announced_long_ago(world, decisions))
    today = world["today"]
    for item in plan.due_items():
        shoot = next(s for s in world["shoots"] if s.id == item.shoot_id)
        for f in item.facts:
            for hold in world["holds"]:
                active = hold.until is None or hold.until >= today
                assert not (active and hold_applies(hold, shoot, f))


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_nothing_inside_a_matching_keep_period_is_due(world):
    decisions = evaluate_all(world["shoots"], world["rules"], world["holds"], world["erasures"])
    dated = file_dates(decisions)
    for shoot in world["shoots"]:
        if erased(shoot, world["erasures"]):
            continue
        for f in shoot.files:
            d = dated[(shoot.id, f.relpath)]
            for rule in world["rules"]:
                if rule.kind == "keep" and rule_applies(rule, shoot, f):
                    assert d is None or d >= rule.period.add_to(base_of(rule, shoot))


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_file_date_is_the_oracles(world):
    decisions = evaluate_all(world["shoots"], world["rules"], [], [])
    dated = file_dates(decisions)
    for shoot in world["shoots"]:
        for f in shoot.files:
            applying = [r for r in world["rules"] if rule_applies(r, shoot, f)]
            dues = [r.period.add_to(base_of(r, shoot)) for r in applying if r.kind == "delete"]
            keeps = [r.period.add_to(base_of(r, shoot)) for r in applying if r.kind == "keep"]
            expected = max([min(dues)] + keeps) if dues else None
            assert dated[(shoot.id, f.relpath)] == expected


@settings(max_examples=200, deadline=None)
@given(world=worlds(), extra_keep=rules, extra=st.data())
def test_adding_a_keep_rule_or_a_hold_never_makes_anything_due_earlier(world, extra_keep, extra):
    keep = Rule(
        extra_keep.name,
        "keep",
        extra_keep.period,
        extra_keep.since,
        extra_keep.match,
        extra_keep.exclude,
    )
    new_hold = extra.draw(holds([s.path for s in world["shoots"]], world["today"]))
    args = (world["shoots"], world["rules"], world["holds"], world["erasures"])
    before = file_dates(evaluate_all(*args))
    with_keep = file_dates(
        evaluate_all(world["shoots"], [*world["rules"], keep], world["holds"], world["erasures"])
    )
    with_hold = file_dates(
        evaluate_all(
            world["shoots"], world["rules"], [*world["holds"], new_hold], world["erasures"]
        )
    )
    for key, old in before.items():
        assert later_or_same(with_keep[key], old)
        assert later_or_same(with_hold[key], old)


@settings(max_examples=200, deadline=None)
@given(
    world=worlds(),
    max_files=st.integers(0, 12),
    max_bytes=st.integers(0, 30000),
    fraction=st.sampled_from([0.0, 0.5, 1.0]),
    clock_shift=st.sampled_from([None, -1, 0, 10, 60, 61, 500]),
)
def test_a_refused_plan_deletes_nothing(world, max_files, max_bytes, fraction, clock_shift):
    decisions = evaluate_all(world["shoots"], world["rules"], world["holds"], world["erasures"])
    announcements = announced_long_ago(world, decisions)
    totals = {v: (10, 10000) for v in VOLUMES}
    now = datetime.combine(world["today"], datetime.min.time(), TZ).replace(hour=12)
    last = None if clock_shift is None else now - timedelta(days=clock_shift)
    plan = make_plan(
        world,
        decisions,
        announcements=announcements,
        volume_totals=totals,
        limits=Limits(max_files, max_bytes, fraction),
        clock=check_clock(now, last, None, Period(60, "days")),
    )
    due = plan.due_items()
    files = sum(len(i.files) for i in due)
    size = sum(i.bytes for i in due)
    over = (
        files > max_files
        or size > max_bytes
        or any(
            sum(len(i.files) for i in due if i.volume == v) > fraction * 10
            or sum(i.bytes for i in due if i.volume == v) > fraction * 10000
            for v in VOLUMES
        )
    )
    clock_bad = clock_shift in (-1, 61, 500)
    assert plan.refused is (over or clock_bad)
    if plan.refused:
        assert plan.actionable() == []
    else:
        assert plan.actionable() == due


@settings(max_examples=200, deadline=None)
@given(
    world=worlds(),
    approval=st.booleans(),
    announce=st.booleans(),
    notice_days=st.sampled_from([0, 14, 200]),
)
def test_plan_and_explain_agree_on_every_file(world, approval, announce, notice_days):
    today = world["today"]
    decisions = evaluate_all(world["shoots"], world["rules"], world["holds"], world["erasures"])
    announcements = announced_long_ago(world, decisions) if announce else {}
    notice = Period(notice_days, "days")
    plan = make_plan(
        world, decisions, require_approval=approval, announcements=announcements, notice=notice
    )
    in_items = {}
    for item in plan.items:
        for relpath in item.files:
            assert (item.shoot_id, relpath) not in in_items, "a file is in two items"
            in_items[(item.shoot_id, relpath)] = item
    for shoot in world["shoots"]:
        exp = explain_shoot(shoot, world["rules"], world["holds"], world["erasures"], today)
        for f in exp.files:
            item = in_items.get((shoot.id, f.relpath))
            if item is None:
                continue
            if item.status != "blocked":
                assert item.date == f.date
            if item.status == "due":
                assert f.decision == "delete"
                assert not exp.blocked_by
        unblocked = shoot.state == "online" and not shoot.incomplete
        for f in exp.files:
            held = any(h["active"] for h in f.holds)
            in_window = f.date is not None and f.date - timedelta(days=notice_days) <= today
            if unblocked and in_window and not held:
                assert in_items[(shoot.id, f.relpath)].date == f.date
            long_enough = notice_days == 0 or (announce and notice_days <= 30)
            if f.decision == "delete" and unblocked and not held and long_enough and not approval:
                assert in_items[(shoot.id, f.relpath)].status == "due"
