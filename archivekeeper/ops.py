"""Operations shared by the CLI and the daemon: gather facts from the index and config, call
the pure core, store what it says to store (announcements, holds, uses, approvals)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from archivekeeper.clock import boot_of
from archivekeeper.core import naming, planner, policy
from archivekeeper.core.durations import Period
from archivekeeper.core.model import Announcement, Erasure, Hold
from archivekeeper.index.facts import PLAUSIBLE_NS, iter_shoot_facts
from archivekeeper.index.store import Store, private_dir
from archivekeeper.logs import exact_path


class OpError(Exception):
    """A refusal or failure a person can act on; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class OutsideVolumes(OpError):
    """An absolute path inside no configured volume."""


# -- facts ----------------------------------------------------------------------------------------
def stored_holds(store: Store) -> list[Hold]:
    return [
        Hold(id=str(r["id"]), kind=r["kind"], reason=r["reason"],
             until=date.fromisoformat(r["until"]) if r["until"] else None,
             customer_key=r["customer_key"], volume=r["volume"],
             path=exact_path(r["path"]) if r["path"] is not None else None,
             scope=r["scope"], source="cli")
        for r in store.open_holds()
    ]


def all_holds(config, store: Store) -> tuple[Hold, ...]:
    return tuple(config.model_holds()) + tuple(stored_holds(store))


def erasure_records(config, store: Store) -> tuple[Erasure, ...]:
    """The erasure records (art. 17) whose customer the index holds now: each record keeps
    only the customer's token, so every customer key of the index is turned into its token
    to find them (a shoot restored from a backup after the erasure is then due at once)."""
    rows = store.erasures()
    if not rows:
        return ()
    from archivekeeper.act.audit import AuditLog

    audit = AuditLog(Path(config.state_dir), _no_clock, store)
    keys = {audit.token("customer", key): key for key in store.customer_keys()}
    return tuple(Erasure(keys[r["token"]], date.fromisoformat(r["on_date"]), r["reason"])
                 for r in rows if r["token"] in keys)


def _no_clock() -> datetime:
    raise RuntimeError("erasure_records only reads tokens; it writes no audit record")


def announcements(store: Store) -> dict[str, Announcement]:
    return {
        r[0]: Announcement(r[0], datetime.fromisoformat(r[1]),
                           datetime.fromisoformat(r[2]) if r[2] else None)
        for r in store.announcements()
    }


# -- the clock guard ------------------------------------------------------------------------------
def check_clock(config, store: Store, now: datetime) -> planner.ClockCheck:
    """Judge now against the high-water mark, or on a fresh index against the newest plausible
    mtime scans saw on the volumes (see planner.check_clock)."""
    mark = store.clock_mark()
    newest, where = None, ""
    if mark is None:
        found = store.newest_mtime(PLAUSIBLE_NS)
        if found is not None:
            newest = datetime.fromtimestamp(min(found[0], MAX_NS) / 1e9, UTC)
            where = found[1]
    boot, kept = boot_of(now), store.clock_boot()
    ran = (timedelta(seconds=boot[1] - kept[1])
           if boot is not None and kept is not None and boot[0] == kept[0] else None)
    check = planner.check_clock(now, mark, newest, config.safety.max_clock_jump, where, ran)
    if store.index_lost() is not None:
        check = replace(check, refusals=(*check.refusals, INDEX_LOST))
    if ran is not None and mark is not None:
        # kept with the mark as the boot-time reading at which the wall clock would show it had
        # it not moved since the first mark of this boot: the tolerance is granted once per
        # boot, not again at each command (steps of 50 minutes must not add up unnoticed)
        boot = (boot[0], kept[1] + (now - mark).total_seconds())
    return replace(check, boot=boot)


INDEX_LOST = ("the index was made anew although the audit log already holds records (the old "
              "index was lost or deleted), and the holds added with `hold add` were kept only "
              "there: check `archivekeeper hold list`, add back any that are missing, then run "
              "`archivekeeper clock accept`")


MAX_NS = 253402214400 * 10**9  # 9999-12-31: later mtimes are read as that


def note_time(store: Store, check: planner.ClockCheck) -> None:
    """After a command recorded something on a trusted clock, move the high-water mark up to
    its time, and date the shoots first seen on a distrusted clock by it. Not on a fresh index
    with nothing indexed: the first clock seen there has nothing to be judged by, and must not
    become the mark."""
    if not check.trusted or check.reference is None:
        return
    with store.transaction():
        store.raise_clock_mark(check.now, check.boot)
        _settle_first_seen(store, check.now)


def _settle_first_seen(store: Store, now: datetime) -> None:
    """Shoots first seen on a distrusted clock got the guard's reference as a provisional date;
    on the first clock that can be believed, they were first seen no later than now: the later,
    safer date (never the stand-in of an old archive, nor a clock gone back or decades ahead)."""
    for instant in store.untrusted_first_seen():
        store.redate_first_seen(instant, now.isoformat(), PLAUSIBLE_NS)
    store.set_untrusted_first_seen([])


def scan_instants(check: planner.ClockCheck) -> tuple[datetime, date]:
    """Given the clock guard's verdict, return (first seen, today) for a scan. A shoot first
    seen on a distrusted clock is dated by the instant the guard judged by (the mark): not by
    a clock gone back, which would cut its retention, nor by one decades ahead, which would
    keep it for decades. Folder and EXIF dates stay plausible up to the later of the two, so
    a clock gone back never makes real shoots look dated in the future."""
    if check.trusted or check.reference is None:
        return check.now, check.now.date()
    reference = check.reference.astimezone(check.now.tzinfo)
    return reference, max(check.now, reference).date()


def before_scan(store: Store, seen_at: datetime, check: planner.ClockCheck) -> None:
    """A scan writes in short transactions and may be killed before after_scan. If its clock
    is distrusted, or on a fresh index has nothing to be judged by yet, the date it gives the
    shoots it first sees is provisional from the start: the first trusted command settles it,
    to a later and safer date, even if after_scan never runs."""
    if not check.trusted or check.reference is None:
        with store.transaction():
            store.set_untrusted_first_seen([*store.untrusted_first_seen(), seen_at.isoformat()])


def after_scan(store: Store, seen_at: datetime, before: planner.ClockCheck,
               after: planner.ClockCheck) -> None:
    """Given when a scan dated the shoots it first saw and the clock guard's verdicts before
    and after it: if either distrusted the clock, that date is provisional (settled by the
    first trusted command or `clock accept`). A fresh index's first scan had nothing to judge
    its clock by before; if what it indexed shows the clock was wrong, its shoots are dated as
    a distrusted clock's scan dates them. Then the mark moves, on a trusted clock."""
    with store.transaction():
        pending = [i for i in store.untrusted_first_seen() if i != seen_at.isoformat()]
        if not (before.trusted and after.trusted):
            provisional = seen_at
            if before.trusted:  # nothing to judge by before: judged now
                provisional, _ = scan_instants(after)
                store.redate_first_seen(seen_at.isoformat(), provisional.isoformat(),
                                        PLAUSIBLE_NS)
            pending.append(provisional.isoformat())
        store.set_untrusted_first_seen(pending)
    note_time(store, after)


def refuse_on_distrust(store: Store, audit, check: planner.ClockCheck, command: str) -> None:
    """Refuse (exit 3, audited) a command that records or acts on time, on a distrusted clock."""
    if not check.trusted:
        refuse(store, audit, check.now, command, check.refusals)
        raise OpError("refused on a distrusted clock, nothing was done: "
                      + "; ".join(check.refusals) + check.hint(), 3)


def accept_clock(store: Store, audit, now: datetime) -> datetime | None:
    """`clock accept`: trust the present clock after a real gap in time; the mark becomes now,
    even if that is earlier. Return the mark it replaced."""
    old = store.clock_mark()
    with store.transaction():
        audit.append("clock_accept", mark=old.isoformat() if old else None)
        store.set_clock_mark(now, boot_of(now))
        _settle_first_seen(store, now)
    return old


def plannable_shoots(store: Store, config=None, stream: bool = False):
    """Every indexed shoot but the missing ones (their files are gone from an online volume),
    as a list, or an iterator with `stream`. A shoot on a volume the config no longer names
    counts as offline: never acted on."""
    rows = [r for r in store.shoots() if r["state"] != "missing"]
    known = {v.name for v in config.volumes} if config is not None else None
    shoots = (s if known is None or s.volume in known else replace(s, state="offline")
              for s in iter_shoot_facts(store, rows))
    return shoots if stream else list(shoots)


def compute_plan(config, store: Store, now: datetime, *, as_of: date | None = None,
                 announce: bool = False, clock: planner.ClockCheck | None = None,
                 observe=None) -> planner.Plan:
    """Plan as of `as_of` (default today). With `announce`, store the first announcement of
    every upcoming or due item (only a real plan announces: never with as_of, never on a
    distrusted clock). Shoots stream through one at a time, so only the listed items' files
    stay in memory. clock: the clock guard's verdict on now, if the caller has it. observe:
    called with each (shoot, decision) as it streams by, so the report sees every shoot in the
    same pass (it must keep only what it needs, not the files)."""
    today = as_of or now.date()
    clock = clock or check_clock(config, store, now)
    rules = config.model_rules()
    holds = all_holds(config, store)
    erasures = erasure_records(config, store)
    announce = announce and as_of is None
    unused: set[str] | None = None

    def decided():
        nonlocal unused
        for shoot in plannable_shoots(store, config, stream=True):
            missed = set(policy.unused_rules_and_holds([shoot], rules, holds))
            unused = missed if unused is None else unused & missed
            decision = policy.evaluate_shoot(shoot, rules, holds, erasures)
            if observe is not None:
                observe(shoot, decision)
            yield shoot, decision

    shoots, decisions = itertools.tee(decided())
    plan = planner.build_plan(
        (s for s, _ in shoots), (d for _, d in decisions), today=today, now=now,
        notice=config.safety.notice_period, require_approval=config.safety.require_approval,
        announcements=announcements(store), limits=config.limits(),
        volume_totals=store.volume_totals(), clock=clock, announce_now=announce,
    )
    warnings = [w for w in policy.unused_rules_and_holds([], rules, holds)
                if unused is None or w in unused]
    plan = plan.with_warnings(warnings)
    if announce and plan.to_announce:
        by_key = {i.key: i for i in plan.items}
        # an announcement found in the future of a trusted clock is replaced, approval with it
        with store.transaction():
            store.announce(((k, by_key[k].shoot_id) for k in plan.to_announce), now)
    if announce:
        note_time(store, clock)
    return plan


def shoot_items(config, store: Store, shoot, clock: planner.ClockCheck
                ) -> tuple[planner.PlanItem, ...]:
    """The plan items of one shoot as `plan` would list them now (announcing nothing)."""
    decision = policy.evaluate_shoot(shoot, config.model_rules(), all_holds(config, store),
                                     erasure_records(config, store))
    return planner.build_plan(
        [shoot], [decision], today=clock.now.date(), now=clock.now,
        notice=config.safety.notice_period, require_approval=config.safety.require_approval,
        announcements=announcements(store), limits=config.limits(),
        volume_totals=store.volume_totals(), clock=clock,
    ).items


# -- paths ----------------------------------------------------------------------------------------
def resolve_target(config, text: str) -> tuple[str, bytes]:
    """Given `VOLUME:relative/path` or an absolute path inside a configured volume, return
    (volume name, path relative to it as bytes). Raise OpError (exit 2) otherwise."""
    if not text.startswith("/") and ":" in text:
        name, rel = text.split(":", 1)
        if config.volume(name) is None:
            raise OpError(f"{text}: no volume named {name!r} in {config.source}", 2)
        return name, os.fsencode(rel.strip("/"))
    if not text.startswith("/"):
        raise OpError(f"{text}: give an absolute path or VOLUME:relative/path", 2)
    raw = os.fsencode(os.path.normpath(text))
    for candidates in (lambda p: os.fsencode(os.path.normpath(str(p))),
                       lambda p: os.fsencode(os.path.realpath(p))):
        for vol in config.volumes:
            root = candidates(vol.path)
            if raw == root:
                return vol.name, b""
            if raw.startswith(root + b"/"):
                return vol.name, raw[len(root) + 1:]
    real = os.fsencode(os.path.realpath(text))
    for vol in config.volumes:
        root = os.fsencode(os.path.realpath(vol.path))
        if real.startswith(root + b"/"):
            return vol.name, real[len(root) + 1:]
    raise OutsideVolumes(f"{text}: not inside any configured volume", 2)


def find_shoot(store: Store, volume: str, relpath: bytes):
    """Return the indexed shoot row whose folder is relpath or holds it, or None."""
    parts = relpath.split(b"/") if relpath else []
    for n in range(len(parts), 0, -1):
        row = store.shoot_by_path(volume, b"/".join(parts[:n]))
        if row is not None:
            return row
    return None


# -- holds ----------------------------------------------------------------------------------------
def add_hold(config, store: Store, audit, now: datetime, *, customer: str | None,
             shoot: str | None, path: str | None, kind: str, reason: str,
             until: date | None, force: bool) -> int:
    """Store a hold; refuse (exit 1) a customer or path the index does not know unless force."""
    volume = rel = customer_key = None
    if customer is not None:
        customer_key = naming.normalize_customer(customer)
        if not store.knows_customer(customer_key) and not force:
            raise OpError(f"customer {customer!r} is not in the index (no shoot of theirs); "
                          "check the spelling, or use --force to hold it anyway")
        scope, token = "customer", audit.token("customer", customer_key)
    else:
        scope = "shoot" if shoot is not None else "path"
        volume, rel = resolve_target(config, shoot if shoot is not None else path)
        row = find_shoot(store, volume, rel)
        in_trash = store.shoot_in_trash(volume, rel)  # a hold saves it from purge
        if (scope == "shoot" and (row is None or row["path"] != rel) and not in_trash
                and not force):
            raise OpError(f"{shoot}: not an indexed shoot folder; use --force to hold it anyway")
        if scope == "path" and row is None and not force:
            raise OpError(f"{path}: not inside any indexed shoot; use --force to hold it anyway")
        token = audit.token(scope, f"{volume}:{exact_path(rel)}")
    with store.transaction():
        hold_id = store.add_hold(scope=scope, customer=customer, customer_key=customer_key,
                                 volume=volume, path=rel, kind=kind, reason=reason, until=until,
                                 at=now)
        audit.append("hold_add", hold=hold_id, scope=scope, kind=kind, target=token,
                     until=until.isoformat() if until else None)
    note_time(store, check_clock(config, store, now))
    return hold_id


def release_hold(config, store: Store, audit, now: datetime, hold_id: str) -> None:
    if hold_id.startswith("cfg-"):
        raise OpError(f"hold {hold_id} is in the config file: remove it there", 2)
    if not hold_id.isdigit():
        raise OpError(f"{hold_id!r} is not a hold id (see `hold list`)", 2)
    row = store.open_hold(int(hold_id))
    if row is None:
        raise OpError(f"no active hold with id {hold_id}")
    with store.transaction():
        audit.append("hold_release", hold=int(hold_id), scope=row["scope"], kind=row["kind"])
        store.release_hold(int(hold_id), now)
    note_time(store, check_clock(config, store, now))


REVIEW_AFTER = Period(1, "years")


def hold_docs(config, store: Store, today: date | None = None) -> list[dict]:
    """Every hold (config and stored), ending soonest first; holds with no end last. A stored
    hold carries its creation time; `review` is true for one with no end date created more
    than REVIEW_AFTER before `today` (a forgotten invoice hold keeps data forever). A config
    hold's creation is not known: never flagged (None `today`: nothing is)."""
    created = {str(r["id"]): r["created_at"] for r in store.open_holds()}
    docs = []
    for hold in all_holds(config, store):
        created_at = created.get(hold.id) if hold.source == "cli" else None
        review = (hold.until is None and created_at is not None and today is not None
                  and REVIEW_AFTER.add_to(datetime.fromisoformat(created_at).date()) < today)
        doc = {"id": hold.id, "kind": hold.kind, "reason": hold.reason,
               "until": hold.until.isoformat() if hold.until else None, "source": hold.source,
               "created_at": created_at, "review": review}
        if hold.scope == "customer":
            doc["customer"] = _customer_name(config, store, hold)
        else:
            doc.update(volume=hold.volume, path=hold.path, scope=hold.scope)
        docs.append(doc)
    docs.sort(key=lambda d: (d["until"] is None, d["until"] or "", d["id"]))
    return docs


def ended_holds(config, store: Store, check: planner.ClockCheck
                ) -> list[tuple[Hold, str | None]]:
    """The holds in force whose end date has passed (today > until: the until day is still
    held), each with its creation time if stored (None for a config hold). None at all on a
    clock the guard distrusts or has nothing to judge by: a clock jumped ahead must not put
    in the record an end that has not come."""
    if not check.trusted or check.reference is None:
        return []
    today = check.now.date()
    created = {str(r["id"]): r["created_at"] for r in store.open_holds()}
    return [(h, created.get(h.id) if h.source == "cli" else None)
            for h in all_holds(config, store) if h.until is not None and h.until < today]


def note_expired_holds(config, store: Store, audit, check: planner.ClockCheck) -> int:
    """Record each ended hold (ended_holds) in the audit log once: `hold_expired` with its id,
    kind, scope, end date and a token for what it held, never a name. Return how many were
    recorded now. A config hold's id changes when the config is edited, so each hold is
    remembered by a hash of what it is (its tokens, kind and end; a stored hold's id and
    creation time too): the same hold renumbered is not recorded again, an edited one is."""
    ended = ended_holds(config, store, check)
    known = store.expired_hold_keys() if ended else set()
    recorded = 0
    for hold, created_at in ended:
        target = (audit.token("customer", hold.customer_key) if hold.scope == "customer"
                  else audit.token(hold.scope, f"{hold.volume}:{hold.path}"))
        identity = [hold.kind, hold.scope, target, hold.until.isoformat()]
        if hold.source == "cli":
            identity += [hold.id, created_at]
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        if key in known:
            continue
        with store.transaction():
            if not store.note_hold_expired(key, check.now):
                continue  # another process recorded it meanwhile
            audit.append("hold_expired", hold=int(hold.id) if hold.source == "cli" else hold.id,
                         kind=hold.kind, scope=hold.scope, until=hold.until.isoformat(),
                         **{hold.scope: target})
        recorded += 1
    return recorded


def _customer_name(config, store: Store, hold: Hold) -> str:
    if hold.source == "cli":
        name = store.hold_customer(int(hold.id))
        if name:
            return name
    for cfg in config.holds:
        if cfg.customer and naming.normalize_customer(cfg.customer) == hold.customer_key:
            return cfg.customer
    return hold.customer_key or ""


# -- uses -----------------------------------------------------------------------------------------
def touch(config, store: Store, audit, now: datetime, *, customer: str | None,
          shoot: str | None, reason: str) -> int:
    """Record a use for every copy of the shoot, or of every shoot of the customer. Return the
    number of shoots (all copies) whose last-used date this moves. Refused (exit 3) on a
    distrusted clock: a use recorded at a wrong time moves a deletion date."""
    check = check_clock(config, store, now)
    if customer is not None:
        key = naming.normalize_customer(customer)
        rows = store.shoots(customer_key=key)
        if not rows:
            raise OpError(f"customer {customer!r} is not in the index")
    else:
        volume, rel = resolve_target(config, shoot)
        row = find_shoot(store, volume, rel)
        if row is None or row["path"] != rel:
            raise OpError(f"{shoot}: not an indexed shoot folder")
        rows = [row]
    refuse_on_distrust(store, audit, check, "touch")
    copy_sets = {(r["customer_key"], r["date"], r["type"]) for r in rows}
    with store.transaction():
        audit.append("touch", customer=audit.token("customer", rows[0]["customer_key"]),
                     copies=len(copy_sets))
        store.add_uses(sorted(copy_sets, key=str), now, reason)
    affected = store.count_copies(copy_sets)
    note_time(store, check)
    return affected


# -- approval -------------------------------------------------------------------------------------
def approve(config, store: Store, audit, now: datetime, shoot_ids: list[int] | None) -> int:
    """Approve the listed (not blocked) items of the given shoots, or all with None. Return how
    many items were approved. An item that changes later is a new item: approve it again."""
    if not config.safety.require_approval:
        raise OpError("approval is not required (safety.require_approval is false)", 2)
    check = check_clock(config, store, now)
    refuse_on_distrust(store, audit, check, "approve")
    plan = compute_plan(config, store, now, announce=True, clock=check)
    chosen = [i for i in plan.items if i.status != "blocked" and i.date <= now.date()
              and (shoot_ids is None or i.shoot_id in shoot_ids)]
    if shoot_ids is not None:
        unknown = set(shoot_ids) - {i.shoot_id for i in plan.items}
        if unknown:
            raise OpError(f"no plan items for shoot id(s) {sorted(unknown)} (see `plan`)")
    if not chosen:
        return 0
    with store.transaction():
        audit.append("approve", items=len(chosen), files=sum(len(i.files) for i in chosen),
                     bytes=sum(i.bytes for i in chosen),
                     shoots=sorted({audit.token("shoot", f"{i.volume}:{i.path}")
                                    for i in chosen}))
        store.approve(((i.key, i.shoot_id) for i in chosen), now)
    return len(chosen)


def open_audit(config, clock, store: Store):
    """The audit log of config's state_dir; `store` remembers its last record."""
    from archivekeeper.act.audit import AuditLog

    private_dir(config.state_dir)
    return AuditLog(Path(config.state_dir), clock.now, store)


def token_names(store: Store, audit) -> dict[str, str]:
    """Token -> readable name for every customer and shoot the index still knows."""
    names = {}
    for row in store.shoot_names():
        names.setdefault(audit.token("customer", row[3]), row[2])
        shoot = f"{row[0]}:{exact_path(row[1])}"
        names[audit.token("shoot", shoot)] = shoot
    return names


# -- acting ---------------------------------------------------------------------------------------
def refuse(store: Store, audit, now: datetime, command: str, reasons) -> None:
    """Audit and store a refusal (for the next report) before saying no."""
    with store.transaction():
        audit.append("refusal", command=command, reasons=list(reasons))
        store.add_refusal(now, command, reasons)


def _begin_run(store: Store, kind: str, now: datetime) -> int:
    """Record a run (UTC) as changing things from its start, so a run that crashes or fails
    midway is on record as one that may have; _end_run corrects it."""
    with store.transaction():
        return store.begin_run(kind, now)


def _end_run(store: Store, run_id: int, changed: bool, clock) -> None:
    with store.transaction():
        store.end_run(run_id, clock.now(), changed)


def apply(config, store: Store, audit, clock, *, dry_run: bool,
          should_stop: Callable[[], bool] | None = None,
          more_holds: Callable[[], tuple[Hold, ...]] = tuple,
          scan: Callable[[str], None] | None = None):
    """Move due items to trash and purge expired trash. Return (plan, result); result is None
    for a dry run. Raise OpError(exit 3) when a limit or the clock guard refuses: then nothing
    was moved, and the refusal is audited. should_stop() is asked before each file operation;
    once it says stop, the run ends with result.stopped (the next run goes on from there).
    more_holds() is read with the holds before each shoot (the daemon: a reloaded config's).
    scan(volume) indexes a volume: pending erasures (art. 17) whose drive is online now are
    carried out first, after a scan of that drive, on a trusted clock only."""
    from archivekeeper.act.executor import Executor

    now = clock.now()
    check = check_clock(config, store, now)
    executor = Executor(config, store, audit, now, should_stop)
    try:
        erased = None
        if not dry_run:
            recover(config, store, executor, check)
            if check.trusted:
                from archivekeeper.act.executor import RunResult
                from archivekeeper.privacy import erase

                erased = RunResult()
                erase.carry_out_pending(config, store, audit, executor, erased, scan,
                                        more_holds)
            note_expired_holds(config, store, audit, check)
        plan = compute_plan(config, store, now, announce=not dry_run, clock=check)
        if plan.refused:
            if not dry_run:
                refuse(store, audit, now, "apply", plan.refusals)
            raise OpError("refused, nothing was deleted: " + "; ".join(plan.refusals)
                          + check.hint(), 3)
        if dry_run:
            return plan, None
        note_time(store, check)  # before acting: a run killed midway has recorded its time
        run_id = _begin_run(store, "apply", now)
        result = None
        try:
            result = executor.trash_items(
                plan, lambda: all_holds(config, store) + more_holds(),
                erasure_records(config, store))
            if erased is not None:
                result.erased_files, result.erased_bytes = erased.erased_files, erased.erased_bytes
                result.skipped[:0] = erased.skipped
                result.failed += erased.failed
            if not result.stopped:
                purged = executor.purge(lambda: all_holds(config, store) + more_holds())
                result.purged_files, result.purged_bytes = purged.purged_files, purged.purged_bytes
                result.skipped += purged.skipped
                result.failed += purged.failed
                result.stopped = purged.stopped
        finally:
            _end_run(store, run_id, result is None or result.changed, clock)
        note_time(store, check)
        return plan, result
    finally:
        executor.close()


def purge_trash(config, store: Store, audit, clock, *,
                should_stop: Callable[[], bool] | None = None):
    """`trash purge`: purge expired trash (holds re-checked; the clock guard applies).
    should_stop() is asked before each file operation, as in apply."""
    from archivekeeper.act.executor import Executor

    now = clock.now()
    check = check_clock(config, store, now)
    executor = Executor(config, store, audit, now, should_stop)
    try:
        recover(config, store, executor, check)  # rolls half-done purges back if distrusted
        if not check.trusted:
            refuse(store, audit, now, "trash purge", check.refusals)
            raise OpError("refused, nothing was purged: " + "; ".join(check.refusals)
                          + check.hint(), 3)
        note_time(store, check)  # before acting: a run killed midway has recorded its time
        run_id = _begin_run(store, "purge", now)
        result = None
        try:
            result = executor.purge(lambda: all_holds(config, store))
        finally:
            _end_run(store, run_id, result is None or result.changed, clock)
        note_time(store, check)
        return result
    finally:
        executor.close()


def restore_trash(config, store: Store, audit, clock, group_id: int):
    from archivekeeper.act.executor import Executor

    now = clock.now()
    check = check_clock(config, store, now)
    executor = Executor(config, store, audit, now)
    try:
        recover(config, store, executor, check)
        try:
            result = executor.restore(group_id)
        except LookupError as exc:
            raise OpError(str(exc)) from None
        note_time(store, check)
        return result
    finally:
        executor.close()


def recover(config, store: Store, executor, check: planner.ClockCheck) -> int:
    """Finish or roll back the half-done file steps a crash left (the caller holds the run
    lock). Holds are read afresh for each trash group; a purge is finished only on a trusted
    clock, so a hold's end is judged by a date that can be believed."""
    return executor.recover(lambda: all_holds(config, store), finish_purges=check.trusted)


def trash_docs(store: Store) -> list[dict]:
    return [{"id": r[0], "volume": r[1], "path": exact_path(r[2]), "files": r[5], "bytes": r[6],
             "trashed_at": r[3], "purge_after": r[4]} for r in store.trash_summary()]
