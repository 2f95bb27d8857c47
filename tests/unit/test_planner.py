from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from archivekeeper.core.durations import parse_period
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
from archivekeeper.core.planner import build_plan, check_clock, earliest_deletion, item_key
from archivekeeper.core.policy import evaluate_all

HELSINKI_WINTER = timezone(timedelta(hours=2))
HELSINKI_SUMMER = timezone(timedelta(hours=3))
TODAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 1, 4, 30, tzinfo=HELSINKI_SUMMER)
ONE_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]
BIG = {"studio": (1000, 10**9), "backup-1": (1000, 10**9)}


def make_shoot(
    id=1,
    *,
    volume="studio",
    shot=date(2024, 5, 12),
    customer="Virtanen Matti",
    names=("a.jpg", "b.cr2"),
    state="online",
    incomplete=False,
):
    path = f"{shot.isoformat()} {customer}"
    files = tuple(
        FileFact(f"{path}/{name}", 100 * (i + 1), 1_700_000_000_000_000_000 + i)
        for i, name in enumerate(names)
    )
    return ShootFact(
        id,
        volume,
        path,
        customer,
        normalize_customer(customer),
        shot,
        "folder",
        None,
        shot,
        shot,
        state=state,
        incomplete=incomplete,
        files=files,
    )


def plan_for(shoots, rules=ONE_YEAR, holds=(), erasures=(), **kw):
    args = dict(
        today=TODAY,
        now=NOW,
        notice=parse_period("14 days"),
        require_approval=False,
        announcements={},
        limits=Limits(),
        volume_totals=BIG,
    )
    args.update(kw)
    decisions = evaluate_all(shoots, rules, holds, erasures)
    return build_plan(shoots, decisions, **args)


def announced(plan, at, approved_at=None):
    return {i.key: Announcement(i.key, at, approved_at) for i in plan.items}


def only(plan):
    assert len(plan.items) == 1
    return plan.items[0]


# --- items --------------------------------------------------------------------------------------


def test_one_item_per_shoot_and_date_with_json_shape():
    item = only(plan_for([make_shoot()]))
    assert item.to_json() == {
        "shoot_id": 1,
        "volume": "studio",
        "path": "2024-05-12 Virtanen Matti",
        "customer": "Virtanen Matti",
        "scope": "shoot",
        "files": 2,
        "bytes": 300,
        "rule": "one-year",
        "date": "2025-05-12",
        "status": "upcoming",
        "blocked_by": [],
        "announced_at": None,
        "key": item.key,
        "erasure": False,
        "earliest_deletion": "2025-06-15",
    }


def test_files_rule_splits_a_shoot_into_items_with_files_scope():
    rules = [
        Rule("raw", "delete", parse_period("1 month"), match=Match(files="*.cr2")),
        Rule("all", "delete", parse_period("1 year")),
    ]
    plan = plan_for([make_shoot()], rules)
    assert sorted((i.date, i.scope, i.rule, i.files) for i in plan.items) == [
        (date(2024, 6, 12), "files", "raw", ("2024-05-12 Virtanen Matti/b.cr2",)),
        (date(2025, 5, 12), "files", "all", ("2024-05-12 Virtanen Matti/a.jpg",)),
    ]


def test_items_beyond_the_notice_period_are_not_listed():
    shoot = make_shoot(shot=date(2024, 6, 16))  # due 2025-06-16, 15 days away
    assert plan_for([shoot]).items == ()
    within = make_shoot(shot=date(2024, 6, 15))  # due 2025-06-15, 14 days away
    assert only(plan_for([within])).status == "upcoming"


def test_never_deleted_files_give_no_item():
    assert plan_for([make_shoot()], rules=[]).items == ()


def test_key_changes_when_the_files_change():
    shoot = make_shoot()
    facts = list(shoot.files)
    key = item_key("studio", shoot.path, date(2025, 5, 12), facts)
    assert key == item_key("studio", shoot.path, date(2025, 5, 12), list(reversed(facts)))
    bigger = [facts[0], FileFact(facts[1].relpath, facts[1].size + 1, facts[1].mtime_ns)]
    assert key != item_key("studio", shoot.path, date(2025, 5, 12), bigger)
    assert key != item_key("studio", shoot.path, date(2025, 5, 13), facts)
    assert key != item_key("studio", shoot.path, date(2025, 5, 12), facts[:1])


# --- notice period ------------------------------------------------------------------------------


def test_notice_sequence_not_announced_then_announced_today_then_fourteen_days_later():
    shoots = [make_shoot()]
    first = plan_for(shoots)
    assert only(first).status == "upcoming"
    assert first.to_announce == (only(first).key,)
    today_ann = announced(first, NOW - timedelta(hours=1))
    second = plan_for(shoots, announcements=today_ann)
    assert only(second).status == "upcoming"
    assert only(second).announced_at == NOW - timedelta(hours=1)
    assert second.to_announce == ()
    old = announced(first, NOW - timedelta(days=14))
    assert only(plan_for(shoots, announcements=old)).status == "due"
    almost = announced(first, NOW - timedelta(days=14) + timedelta(seconds=1))
    assert only(plan_for(shoots, announcements=almost)).status == "upcoming"


def test_notice_counts_local_days_across_the_spring_dst_change():
    shoots = [make_shoot(shot=date(2024, 3, 1))]
    key = only(plan_for(shoots)).key
    # 2025-03-30 is the EU spring change: 14 local days are 13 days 23 hours of real time.
    at = datetime(2025, 3, 20, 4, 30, tzinfo=HELSINKI_WINTER)
    now = datetime(2025, 4, 3, 4, 30, tzinfo=HELSINKI_SUMMER)
    anns = {key: Announcement(key, at)}
    assert only(plan_for(shoots, today=now.date(), now=now, announcements=anns)).status == "due"
    early = now - timedelta(minutes=1)
    assert (
        only(plan_for(shoots, today=early.date(), now=early, announcements=anns)).status
        == "upcoming"
    )


def test_notice_counts_local_days_across_the_autumn_dst_change():
    shoots = [make_shoot()]
    key = only(plan_for(shoots)).key
    at = datetime(2025, 10, 20, 4, 30, tzinfo=HELSINKI_SUMMER)
    now = datetime(2025, 11, 3, 4, 29, tzinfo=HELSINKI_WINTER)  # 14 d 0 h 59 min later
    anns = {key: Announcement(key, at)}
    assert (
        only(plan_for(shoots, today=now.date(), now=now, announcements=anns)).status == "upcoming"
    )


def test_zero_notice_makes_an_item_due_on_its_date_without_announcement():
    plan = plan_for([make_shoot()], notice=parse_period("0 days"))
    assert only(plan).status == "due"
    assert plan.to_announce == (only(plan).key,)


def test_future_item_is_upcoming_even_if_announced_long_ago():
    shoot = make_shoot(shot=date(2024, 6, 10))
    key = only(plan_for([shoot])).key
    anns = {key: Announcement(key, NOW - timedelta(days=30))}
    assert only(plan_for([shoot], announcements=anns)).status == "upcoming"


def test_announcement_of_a_changed_item_does_not_count():
    first = plan_for([make_shoot()])
    anns = announced(first, NOW - timedelta(days=30))
    changed = make_shoot(names=("a.jpg", "b.cr2", "c.jpg"))
    item = only(plan_for([changed], announcements=anns))
    assert (item.status, item.announced_at) == ("upcoming", None)


# --- approval -----------------------------------------------------------------------------------


def test_approval_required_then_given():
    shoots = [make_shoot()]
    first = plan_for(shoots)
    waiting = plan_for(
        shoots, require_approval=True, announcements=announced(first, NOW - timedelta(days=20))
    )
    assert only(waiting).status == "awaiting-approval"
    approved = announced(first, NOW - timedelta(days=20), approved_at=NOW - timedelta(days=1))
    assert only(plan_for(shoots, require_approval=True, announcements=approved)).status == "due"


def test_approval_does_not_skip_the_notice_period():
    shoots = [make_shoot()]
    first = plan_for(shoots)
    approved = announced(first, NOW - timedelta(days=2), approved_at=NOW)
    assert only(plan_for(shoots, require_approval=True, announcements=approved)).status == (
        "upcoming"
    )


# --- blocks -------------------------------------------------------------------------------------


def test_offline_shoot_is_blocked():
    item = only(plan_for([make_shoot(volume="backup-1", state="offline")]))
    assert (item.status, item.blocked_by) == ("blocked", ("volume backup-1 is offline",))


def test_incomplete_shoot_is_blocked():
    item = only(plan_for([make_shoot(incomplete=True)]))
    assert (item.status, item.blocked_by) == (
        "blocked",
        ("shoot is incomplete (unreadable folder)",),
    )


def test_blocked_items_are_not_announced_nor_actionable():
    first = plan_for([make_shoot(incomplete=True)])
    assert first.to_announce == ()
    anns = announced(first, NOW - timedelta(days=30))
    assert plan_for([make_shoot(incomplete=True)], announcements=anns).actionable() == []


def test_actively_held_shoot_is_listed_blocked_at_its_rule_date():
    held = Hold(
        "cfg-1",
        "invoice",
        "open invoice 2024-113",
        date(2027, 1, 31),
        customer_key="virtanen matti",
    )
    item = only(plan_for([make_shoot()], holds=[held]))
    assert (item.status, item.date) == ("blocked", date(2025, 5, 12))
    assert item.blocked_by == ("hold invoice: open invoice 2024-113 (until 2027-01-31)",)


def test_hold_ended_yesterday_no_longer_blocks_but_restarts_the_notice():
    held = Hold("cfg-1", "invoice", "x", date(2025, 5, 31), customer_key="virtanen matti")
    item = only(plan_for([make_shoot()], holds=[held]))
    assert (item.status, item.date, item.blocked_by) == ("upcoming", date(2025, 6, 1), ())


def test_hold_ending_today_still_blocks():
    held = Hold("cfg-1", "invoice", "x", TODAY, customer_key="virtanen matti")
    assert only(plan_for([make_shoot()], holds=[held])).status == "blocked"


# --- erasure ------------------------------------------------------------------------------------


def test_erasure_item_is_due_at_once_without_notice_or_approval():
    erased = Erasure("virtanen matti", date(2025, 5, 30), "art. 17")
    plan = plan_for([make_shoot()], rules=[], erasures=[erased], require_approval=True)
    item = only(plan)
    assert (item.status, item.rule, item.erasure, item.date) == (
        "due",
        "erasure",
        True,
        date(2025, 5, 30),
    )


def test_erasure_item_on_an_offline_volume_is_blocked():
    erased = Erasure("virtanen matti", date(2025, 5, 30))
    plan = plan_for([make_shoot(state="offline")], rules=[], erasures=[erased])
    assert only(plan).status == "blocked"


# --- limits and clock guard ---------------------------------------------------------------------


def due_plan(shoots, **kw):
    first = plan_for(shoots)
    return plan_for(shoots, announcements=announced(first, NOW - timedelta(days=20)), **kw)


def test_limits_refuse_the_whole_due_set():
    shoots = [make_shoot(i, customer=f"Customer {i}") for i in range(3)]
    plan = due_plan(shoots, limits=Limits(max_files_per_run=5))
    assert len(plan.due_items()) == 3
    assert plan.refusals == ("6 files are due, more than max_files_per_run 5",)
    assert plan.refused
    assert plan.actionable() == []
    assert plan.to_json()["refusals"] == ["6 files are due, more than max_files_per_run 5"]


def test_byte_limit():
    plan = due_plan([make_shoot()], limits=Limits(max_bytes_per_run=299))
    assert plan.refusals == ("300 bytes are due, more than max_bytes_per_run 299 bytes",)


def test_volume_fraction_limit_for_bytes_and_files():
    plan = due_plan([make_shoot()], volume_totals={"studio": (10, 1000)})
    assert plan.refusals == (
        "volume studio: 2 files due of 10 files is 20.0%, more than max_fraction_per_volume 0.1",
        "volume studio: 300 bytes due of 1.0 kB (1000 bytes) is 30.0%, more than "
        "max_fraction_per_volume 0.1",
    )


def test_unknown_volume_totals_refuse():
    plan = due_plan([make_shoot()], volume_totals={})
    assert plan.refused
    assert plan.actionable() == []


def test_within_limits_the_due_items_are_actionable():
    plan = due_plan([make_shoot()])
    assert not plan.refused
    assert [i.status for i in plan.actionable()] == ["due"]


def test_confirmed_erasure_is_exempt_from_limits_but_others_are_not():
    erased = Erasure("virtanen matti", date(2025, 5, 30))
    shoots = [make_shoot()]
    kw = dict(rules=[], erasures=[erased], volume_totals={"studio": (2, 300)})
    assert plan_for(shoots, **kw).refused
    exempt = plan_for(shoots, erased_customers=frozenset({"virtanen matti"}), **kw)
    assert not exempt.refused
    assert len(exempt.actionable()) == 1


SIXTY = parse_period("60 days")


@pytest.mark.parametrize(
    ("mark", "trusted"),
    [
        (None, True),
        (NOW - timedelta(days=1), True),
        (NOW + timedelta(minutes=4), True),  # a clock a little behind: NTP slew, tolerated
        (NOW + timedelta(minutes=6), False),  # the clock went back
        (NOW - timedelta(days=60), True),
        (NOW - timedelta(days=60, seconds=1), False),  # a jump past max_clock_jump
        (NOW - timedelta(days=400), False),
        (datetime(2025, 6, 1, 1, 30, tzinfo=UTC), True),  # same instant as NOW
    ],
)
def test_clock_guard_judges_now_against_the_high_water_mark(mark, trusted):
    check = check_clock(NOW, mark, None, SIXTY)
    assert check.trusted is trusted
    plan = due_plan([make_shoot()], clock=check)
    assert plan.refused is not trusted
    if not trusted:
        assert "archivekeeper clock accept" in plan.refusals[0]
        assert plan.actionable() == []


def test_max_clock_jump_is_the_configured_period():
    mark = NOW - timedelta(days=10)
    assert check_clock(NOW, mark, None, parse_period("10 days")).trusted
    assert not check_clock(NOW, mark, None, parse_period("9 days")).trusted
    assert check_clock(NOW, NOW - timedelta(days=31), None, parse_period("1 month")).trusted


def test_on_a_fresh_index_the_newest_mtime_stands_in_for_the_mark():
    decades_ahead = NOW.replace(year=2061)
    check = check_clock(decades_ahead, None, NOW - timedelta(days=3), SIXTY, "studio:x")
    assert not check.trusted
    assert "newest file or folder on the volumes" in check.refusals[0]
    # where it is, for the owner, is kept apart: refusals go into the audit log
    assert "studio:x" not in check.refusals[0] and check.hint() == " (the newest is studio:x)"
    assert check_clock(NOW, None, NOW - timedelta(days=3), SIXTY).trusted
    # mtimes a few hours ahead are common (FAT keeps local time): only a day ahead distrusts
    assert check_clock(NOW, None, NOW + timedelta(hours=14), SIXTY).trusted
    assert not check_clock(NOW, None, NOW + timedelta(days=2), SIXTY).trusted
    # once there is a mark, the mtimes no longer count
    assert check_clock(NOW, NOW - timedelta(days=1), NOW - timedelta(days=3000), SIXTY).trusted


def test_a_distrusted_clock_announces_nothing_and_says_why():
    bad = check_clock(NOW, NOW + timedelta(days=1), None, SIXTY)
    plan = plan_for([make_shoot()], announce_now=True, clock=bad)
    assert plan.items and plan.to_announce == ()
    assert all(i.announced_at is None for i in plan.items)
    assert any(w.startswith("nothing was announced: the clock") for w in plan.warnings)
    good = plan_for([make_shoot()], announce_now=True, clock=check_clock(NOW, NOW, None, SIXTY))
    assert good.to_announce == tuple(i.key for i in good.items)


def test_an_announcement_in_the_future_of_the_clock_is_made_again():
    first = plan_for([make_shoot()])
    ahead = announced(first, NOW.replace(year=2061))
    plan = plan_for([make_shoot()], announcements=ahead, announce_now=True)
    item = plan.items[0]
    assert item.announced_at == NOW  # re-announced now, not kept as 2061
    assert plan.to_announce == (item.key,)
    assert item.earliest == TODAY + timedelta(days=14)
    # within the clock tolerance it stands
    near = announced(first, NOW + timedelta(minutes=4))
    assert plan_for([make_shoot()], announcements=near, announce_now=True).to_announce == ()


def test_earliest_deletion_is_the_date_or_the_end_of_the_notice_period():
    shoot = make_shoot()  # shot 2024-05-12: one-year rule gives 2025-05-12, before TODAY
    fresh = plan_for([shoot], announce_now=True).items[0]
    assert fresh.date == date(2025, 5, 12) and fresh.status == "upcoming"
    assert fresh.earliest == date(2025, 6, 15)  # announced today + 14 days
    assert fresh.to_json()["earliest_deletion"] == "2025-06-15"
    long_ago = due_plan([shoot]).items[0]
    assert long_ago.status == "due" and long_ago.earliest == date(2025, 5, 26)  # 2025-05-12 + 14
    soon = make_shoot(2, shot=date(2024, 6, 10))  # date within the notice window
    item = plan_for([soon], announce_now=True).items[0]
    assert (item.date, item.earliest) == (date(2025, 6, 10), date(2025, 6, 15))
    zero = plan_for([soon], notice=parse_period("0 days")).items
    assert zero == ()  # not listed: not due and no notice window


def test_earliest_deletion_of_a_held_item_waits_for_its_hold():
    shoot = make_shoot()
    until = Hold("1", "invoice", "open invoice", until=date(2025, 7, 1),
                 customer_key=shoot.customer_key)
    item = plan_for([shoot], holds=[until]).items[0]
    assert item.status == "blocked"
    assert item.earliest == date(2025, 7, 16)  # announced the day after the hold, + 14 days
    forever = Hold("2", "legal-claim", "claim", customer_key=shoot.customer_key)
    assert plan_for([shoot], holds=[forever]).items[0].earliest is None
    offline = plan_for([make_shoot(state="offline")]).items[0]
    assert offline.earliest is None


def test_earliest_deletion_of_files_in_and_out_of_the_plan():
    shoot = make_shoot()
    items = plan_for([shoot], announce_now=True).items
    listed = items[0].files[0]
    notice = parse_period("14 days")

    def earliest(*files):
        return earliest_deletion(items, files, TODAY, notice)

    assert earliest((listed, date(2025, 5, 12), [])) == date(2025, 6, 15)
    assert earliest(("elsewhere", date(2030, 1, 1), [])) == date(2030, 1, 1)
    assert earliest((listed, date(2025, 5, 12), []), ("x", None, [])) is None
    assert earliest() is None
    # held past its date: announced the day after the hold ends, deletable a notice later
    assert earliest(("held", date(2025, 8, 1), [date(2025, 9, 1)])) == date(2025, 9, 16)
    assert earliest(("held", date(2025, 8, 1), [None])) is None  # a hold with no end
    # a hold ending long before its date changes nothing
    assert earliest(("held", date(2025, 8, 1), [date(2025, 6, 2)])) == date(2025, 8, 1)


def test_plan_json_shape_and_order():
    shoots = [
        make_shoot(1, volume="studio", shot=date(2024, 5, 20), customer="B"),
        make_shoot(2, volume="studio", shot=date(2024, 5, 12), customer="A", incomplete=True),
        make_shoot(3, volume="backup-1", shot=date(2024, 5, 12), customer="C"),
    ]
    plan = plan_for(shoots, warnings=["rule 'x' matches no indexed shoot"])
    doc = plan.to_json()
    assert set(doc) >= {"as_of", "items", "refusals", "warnings"}
    assert doc["as_of"] == "2025-06-01"
    assert doc["warnings"] == ["rule 'x' matches no indexed shoot"]
    assert [(i["shoot_id"], i["status"]) for i in doc["items"]] == [
        (3, "upcoming"),
        (1, "upcoming"),
        (2, "blocked"),
    ]
    assert plan.with_warnings(["w"]).warnings == ("rule 'x' matches no indexed shoot", "w")


def test_mismatched_decisions_are_a_value_error():
    shoots = [make_shoot(1), make_shoot(2)]
    decisions = evaluate_all(shoots, ONE_YEAR, [], [])
    with pytest.raises(ValueError):
        build_plan(
            shoots,
            list(reversed(decisions)),
            today=TODAY,
            now=NOW,
            notice=parse_period("14 days"),
            require_approval=False,
            announcements={},
            limits=Limits(),
            volume_totals=BIG,
            )


def test_a_clock_exactly_at_the_tolerance_is_trusted_and_the_check_says_what_it_judged_by():
    mark = NOW + timedelta(minutes=5)  # exactly 5 minutes behind the mark: still trusted
    check = check_clock(NOW, mark, NOW - timedelta(days=9), SIXTY, "studio:x")
    assert check.trusted and check.now == NOW and check.reference == mark
    assert check.hint() == ""  # trusted: nothing to point at
    behind = check_clock(NOW, NOW + timedelta(minutes=6), None, SIXTY, "studio:x")
    assert behind.reference == NOW + timedelta(minutes=6)
    assert behind.hint() == ""  # judged by the mark: the newest mtime is not the reason
    assert "than the last time archivekeeper recorded (2025-06-01T04:36:00+03:00)" in \
        behind.refusals[0]
    assert "the clock (2025-06-01T04:30:00+03:00) is earlier" in behind.refusals[0]
    assert "if the clock is right, run `archivekeeper clock accept`" in behind.refusals[0]
    stand_in = NOW - timedelta(days=90)
    jump = check_clock(NOW, None, stand_in, SIXTY, "studio:x")
    assert jump.reference == stand_in and jump.hint() == " (the newest is studio:x)"
    assert "after the newest file or folder on the volumes (2025-03-03T04:30:00+03:00)" in \
        jump.refusals[0]
    ahead = check_clock(NOW, None, NOW + timedelta(days=2), SIXTY, "studio:y")
    assert ahead.hint() == " (the newest is studio:y)"
    none = check_clock(NOW, None, None, SIXTY, "studio:z")
    assert none.trusted and none.reference is None and none.now == NOW
