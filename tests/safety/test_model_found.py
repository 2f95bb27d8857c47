"""Failures the long model run found, replayed step by step (issue 8).

2026-12-01, `pytest -m slow tests/safety` (about 5,000 examples): on a fresh index (nothing
scanned yet) files are changed with the clock a day ahead, the clock is then set back a day, and
`plan` says nothing about the clock. SPEC ("The clock guard"): on a fresh index the newest mtime
on the online volumes stands in for the mark, and a clock more than 5 minutes before it is
distrusted; `plan` must then say why in `warnings`. The product judges a fresh index only by
mtimes a scan has indexed (none here), and with a day's tolerance (STAND_IN_TOLERANCE).
"""

from __future__ import annotations

from safety.test_model import RELAXED, ArchiveMachine


# Decided: the product stands (docs/concepts.md "Fresh index"; a deviation from SPEC named in the
# issue note): with nothing indexed there is nothing to announce, so nothing to protect, and FAT
# drives keep local time, hence the day. The model now says the same; this history must pass.
def test_plan_on_a_fresh_index_before_any_scan_judges_by_nothing_indexed():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(notice="0 days", retention="1 day", max_files=1000, fraction=1.0,
                 shoots=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (2, 0)])],
                 spare=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 announce=False)
        m.move_clock(move="+1d")
        m.modify_file(age=0, pick=219)
        m.modify_file(age=0, pick=254)
        m.modify_file(age=0, pick=0)
        m.modify_file(age=0, pick=0)
        m.add_file(age=0, name=0, pick=0)
        m.plant_symlink(pick=0)
        m.move_clock(move="-20d")
        m.move_clock(move="+1d")
        m.move_clock(move="+3d")
        m.move_clock(move="+15d")
        m.plan(advance=0)
    finally:
        m.teardown()


# 2026-12-02, the long run (with erase): a customer hold ended; 6 days later that customer was
# erased, and the erasure deleted the ended hold (docs/privacy.md: the index's closed holds naming
# the customer go too); `hold release` of it then said "no active hold". The product stands: the
# model now lets an ended hold be gone.
def test_releasing_an_ended_hold_an_erasure_deleted():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(notice="0 days", retention="1 day", max_files=1000, fraction=1.0,
                 shoots=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)])],
                 spare=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 announce=False)
        m.apply(advance=0)
        m.accept_clock()
        m.hold_between_halves(advance=0, command="apply", crash="ARCHIVEKEEPER_CRASH_AT",
                              hold=("customer", 96504, 40, False), move="none", n=10,
                              resume="apply")
        m.tamper_with_trash(age=0, pick=98011)
        m.purge(advance=31)
        m.tamper_with_trash(age=0, pick=98011)
        m.erase(advance=15, away="no", how=0, pick=0)
        m.add_file(age=90, name=2, pick=22)
        m.release_hold(pick=61440)
        assert not m.holds
    finally:
        m.teardown()


# 2026-12-02, the long run with the daemon rules: `erase --yes` quick-scans the online volumes
# before it erases (so it acts on what is on the drives now); a shoot created on the backup drive
# since the last scan was indexed by it, and the next `plan` announced it. The product stands:
# the model now counts erase's scan as a scan.
def test_a_shoot_indexed_by_erases_own_scan_is_announced_by_the_next_plan():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(notice="0 days", retention="1 day", max_files=1000, fraction=1.0,
                 shoots=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 spare=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 announce=False)
        for _ in range(4):
            m.accept_clock()
        m.daemon_cycle(advance=0, full=True)
        m.accept_clock()
        m.create_shoot(spec=("backup", 0, "Mäkinen Anna", "passport", 400, [(3, 45), (1, 45)]))
        m.erase(advance=0, away="no", how=3, pick=410301)
        m.hold_between_halves(advance=31, command="purge", crash="ARCHIVEKEEPER_CRASH_AT",
                              hold=("path-sub", 1592, 400, False), move="+1d", n=7,
                              resume="plan")
        m.erase(advance=0, away="no", how=3, pick=527)
        m.daemon_cycle(advance=15, full=True)
    finally:
        m.teardown()


# 2026-12-02, the long run with the daemon rules: the clock went back 20 days, and a scan on it
# (here erase's own) kept a shoot dated after that clock, which the product judges plausible up
# to its mark; the next plan announced it. The product stands: the model keeps such a shoot.
def test_a_shoot_dated_after_a_clock_gone_back_stays_indexed():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(shoots=[("studio", 1, "Virtanen Matti", "passport", 0, [(0, 0), (0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 notice="0 days", announce=False, fraction=1.0, retention="1 day",
                 max_files=1000,
                 spare=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)]),
                        ("studio", 0, "Virtanen Matti", "wedding", 20,
                         [(3, 25), (3, 400), (3, 90)])])
        m.hold_between_halves(advance=0, command="purge", crash="ARCHIVEKEEPER_CRASH_AT",
                              hold=("volume", 627, -1, False), move="-3d", n=8, resume="touch")
        m.add_hold(spec=("customer", 289, 1, False))
        m.purge(advance=1)
        m.move_clock(move="-20d")
        m.erase(advance=15, away="unplugged, then back", how=3, pick=59109)
        m.hold_between_halves(advance=15, command="purge", crash="ARCHIVEKEEPER_CRASH_AT",
                              hold=("shoot", 272, 1, False), move="+8d", n=10, resume="plan")
        m.daemon_cycle(advance=1, full=True)
    finally:
        m.teardown()


# 2026-12-02, the long run with the daemon rules: files changed on a clock 30 years ahead, then
# the clock was fixed and a customer erased. The model, on an index it thought held no mark yet,
# let those mtimes stand in for the mark and expected `erase` to refuse; the product held the mark
# of the first scan (before the clock went ahead), trusted the fixed clock and erased. The product
# stands: on a fresh index the model now judges by the lowest mark the product may hold too.
def test_mtimes_of_a_clock_ahead_do_not_stand_in_for_a_mark_already_held():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(notice="0 days", fraction=1.0, retention="1 day", max_files=1000,
                 spare=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)])],
                 announce=False,
                 shoots=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)])])
        m.modify_file(age=0, pick=41836)
        m.move_clock(move="+30y")
        m.restore(advance=0, pick=999999)
        m.add_hold(spec=("customer", 3, None, False))
        m.hold_between_halves(advance=8, command="purge", crash="ARCHIVEKEEPER_CRASH_AT",
                              hold=("volume", 999999, 1, False), move="+1d", n=9, resume="touch")
        m.apply(advance=31)
        m.release_hold(pick=38)
        m.modify_file(age=25, pick=9846)
        m.daemon_fortnight(advance=31)
        m.daemon_session(abrupt=True, actions=[], advance=0)
        m.move_clock(move="fix")
        m.restore(advance=0, pick=565)
        m.erase(advance=15, away="no", how=1, pick=65535)
        assert not m.distrusted(m.now)
    finally:
        m.teardown()


# 2026-12-02, the long run with the daemon rules: a shoot moved to trash was restored, and a use
# recorded next for its customer (`touch --customer`, the re-order the restore was for) did not
# reach it: the product indexed a restored shoot only at the next scan, and the next apply moved
# it again. A product defect: `trash restore` now indexes the shoot again at once
# (tests/integration/test_restore_verifies.py), and the model expects it to.
def test_a_use_recorded_after_a_restore_reaches_the_restored_shoot():
    m = ArchiveMachine(relaxed=RELAXED | {"modes"})
    try:
        m.set_up(notice="0 days", fraction=1.0, retention="1 day", max_files=1000, spare=[],
                 announce=False,
                 shoots=[("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0), (0, 0), (0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 70, [(0, 0)]),
                         ("studio", 0, "Virtanen Matti", "wedding", 0, [(0, 0)])])
        m.add_hold(spec=("path", 0, None, False))
        m.daemon_cycle(advance=31, full=False)
        m.accept_clock()
        m.restore(advance=0, pick=0)
        m.accept_clock()
        m.touch(advance=0, by_customer=True, pick=0)
        m.daemon_cycle(advance=0, full=False)
        assert [f.state for f in m.files.values() if f.shoot.startswith("20")].count("place") \
            == len([f for f in m.files.values() if f.shoot.startswith("20")])
    finally:
        m.teardown()
