"""Art. 17 erasure (SPEC "Erasure", `erase`): the preview, the erasure itself on online
volumes, pending erasures for offline ones (carried out by the next apply that finds the drive
online), finishing an erasure a crash cut short, and scrubbing the customer's name from the index
and the stored reports.

Erasure deletes for good, through the same file module as apply (no symlink followed, no mount
crossed, each file re-verified against the index), under the same clock guard, with holds read
again before each shoot. It overrides rules, notice, approval and the limits; never a hold. The
erasure record keeps the customer's token (never the name): a shoot of theirs dated on or before
it that turns up later is due at once (policy) and named in the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from archivekeeper import ops
from archivekeeper.core import naming, policy
from archivekeeper.core.model import Erasure
from archivekeeper.index.facts import iter_shoot_facts
from archivekeeper.logs import exact_path, get_logger

log = get_logger()
_EVERY_DATE = date.max  # the erasure itself reaches every shoot of the customer, any date


@dataclass
class ShootPart:
    """One shoot of the customer: what goes, what a hold keeps."""

    shoot_id: int
    volume: str
    path: str
    erase: tuple = ()  # FileFacts
    kept: tuple = ()
    holds: tuple[str, ...] = ()  # words naming each hold that keeps something
    online: bool = True


@dataclass
class Survey:
    key: str
    shoots: list[ShootPart] = field(default_factory=list)
    trash: list[dict] = field(default_factory=list)  # {"id", "volume", "files", "bytes", "held"}
    offline: list[str] = field(default_factory=list)  # volumes where it will wait

    def volumes(self) -> dict[str, dict]:
        """Per volume: state, shoots, files and bytes to erase, shoots and files kept."""
        out: dict[str, dict] = {}
        for part in self.shoots:
            row = out.setdefault(part.volume, {"state": "online" if part.online else "offline",
                                               "shoots": 0, "files": 0, "bytes": 0,
                                               "kept_files": 0})
            row["shoots"] += 1 if part.erase else 0
            row["files"] += len(part.erase)
            row["bytes"] += sum(f.size for f in part.erase)
            row["kept_files"] += len(part.kept)
        return out

    def to_json(self) -> dict:
        return {
            "volumes": self.volumes(),
            "kept": [{"volume": p.volume, "path": p.path, "files": len(p.kept),
                      "holds": list(p.holds)} for p in self.shoots if p.kept],
            "trash": self.trash,
            "pending_volumes": self.offline,
            "unrecognised": [{"volume": v, "path": exact_path(rel)}
                             for v, rel in self.unrecognised],
        }


def survey(config, store, key: str, today: date, online: Callable[[str], bool]) -> Survey:
    """What an erasure of the customer would do today: each shoot's files split into erased
    and kept (by which hold), their trash, the volumes where it must wait."""
    holds = ops.all_holds(config, store)
    result = Survey(key)
    for row in store.shoots(customer_key=key):
        result.shoots.append(shoot_part(store, row, key, today, holds, online(row["volume"])))
    for group in store.customer_trash(key):
        files = store.trashed_files(group["id"])
        result.trash.append({"id": group["id"], "volume": group["volume"], "files": len(files),
                             "bytes": sum(f[1] for f in files),
                             "held": trash_held(group, key, today, holds)})
    configured = {v.name for v in config.volumes}
    result.offline = sorted({v for v in configured if not online(v)}
                            | {p.volume for p in result.shoots if p.volume not in configured})
    result.unrecognised = unrecognised(store, key)
    return result


def shoot_part(store, row, key: str, today: date, holds, is_online: bool) -> ShootPart:
    """One shoot's files split into erased and kept by the holds given."""
    shoot = next(iter_shoot_facts(store, [row]))
    part = ShootPart(shoot.id, shoot.volume, shoot.path, online=is_online)
    decision = policy.evaluate_shoot(shoot, (), holds, [Erasure(key, _EVERY_DATE)])
    erase, kept, words = [], [], []
    for group in decision.groups:
        active = [h for h in group.holds if policy.hold_active(h, today)]
        if active:
            kept.extend(group.files)
            words.extend(policy.hold_text(h) for h in active if policy.hold_text(h)
                         not in words)
        else:
            erase.extend(group.files)
    part.erase, part.kept, part.holds = tuple(erase), tuple(kept), tuple(words)
    return part


def trash_held(group, key: str, today: date, holds) -> bool:
    return any(policy.hold_active(h, today) and policy.hold_reaches(
        h, group["volume"], exact_path(group["shoot_path"]), key) for h in holds)


def others(store, key: str) -> list[str]:
    """The other customers the index knows, whose longer names hold this one's."""
    return [k for k in store.customer_keys() if k != key and naming.mentions(k, key)]


def unrecognised(store, key: str) -> list[tuple[str, bytes]]:
    """The unrecognised folders whose names bear the customer's (never deleted: the owner
    sees to them)."""
    longer = others(store, key)
    return [(r["volume"], r["relpath"]) for r in store.unrecognised()
            if naming.mentions(exact_path(r["relpath"]), key, longer)]


def recorded(store, audit, key: str) -> bool:
    """Has an erasure of this customer been recorded before (a re-run finishes or repeats it)?"""
    if not store.has_erasures():
        return False
    token = audit.token("customer", key)
    return any(row["token"] == token for row in store.erasures())


def check_reason(customer: str, reason: str) -> None:
    """The reason is kept with the erasure record: it must not name the customer."""
    if naming.mentions(reason, naming.normalize_customer(customer)):
        raise ops.OpError("--reason names the customer; the erasure record must not keep the "
                          "name (write e.g. 'request received 2026-12-01 by e-mail')", 2)


def erase(config, store, audit, clock, customer: str, reason: str, *, should_stop=None):
    """Erase the customer now (the caller holds the run lock). Return (survey, result).
    Raise OpError(3) on a distrusted clock (audited, nothing deleted)."""
    from archivekeeper.act.executor import Executor, RunResult

    key = naming.normalize_customer(customer)
    if not key:
        raise ops.OpError("--customer is empty", 2)
    check_reason(customer, reason)
    now = clock.now()
    check = ops.check_clock(config, store, now)
    executor = Executor(config, store, audit, now, should_stop)
    try:
        ops.recover(config, store, executor, check)
        if not check.trusted:
            ops.refuse(store, audit, now, "erase", check.refusals)
            raise ops.OpError("refused, nothing was erased: " + "; ".join(check.refusals)
                              + check.hint(), 3)
        ops.note_time(store, check)
        result = RunResult()
        finish_running(config, store, audit, executor, result)
        found = survey(config, store, key, now.date(), lambda v: online(executor, v))
        token = audit.token("customer", key)
        with store.transaction():
            erasure_id = store.add_erasure(token=token, customer_key=key, on=now.date(), at=now,
                                           reason=reason, pending=found.offline)
            held = {g["id"] for g in found.trash if g["held"]}  # stays, named: a hold wins
            for group in store.customer_trash(key):
                if group["volume"] in found.offline and group["id"] not in held:
                    # kept as path tokens only, for later
                    store.hold_pending_trash(erasure_id, group["id"], {
                        f[0]: _path_token(audit, group["volume"], f[0])
                        for f in store.trashed_files(group["id"])})
                    store.forget_trash_group(group["id"])
            audit.append("erase", erasure=erasure_id, customer=token,
                         files=sum(len(p.erase) for p in found.shoots if p.online),
                         bytes=sum(f.size for p in found.shoots if p.online for f in p.erase),
                         held=sum(1 for p in found.shoots if p.kept),
                         pending_volumes=found.offline)
        _carry_out(config, store, audit, executor, erasure_id, key, _EVERY_DATE,
                   [v.name for v in config.volumes if v.name not in found.offline], result)
        return found, result
    finally:
        executor.close()


def finish_running(config, store, audit, executor, result, more_holds=tuple) -> None:
    """Finish the online part of every erasure a crash (or a stop) cut short."""
    for row in store.running_erasures():
        pending = {p["volume"] for p in store.pending_erasures() if p["erasure_id"] == row["id"]}
        volumes = [v.name for v in config.volumes if v.name not in pending]
        log.info("erasure_resumed", erasure=row["id"])
        _carry_out(config, store, audit, executor, row["id"], row["customer_key"], _EVERY_DATE,
                   volumes, result, more_holds=more_holds)


def carry_out_pending(config, store, audit, executor, result,
                      scan: Callable[[str], None] | None, more_holds=tuple) -> int:
    """Carry out the pending erasures whose volume is online now (apply calls this): the
    volume is scanned first (its rows went with the erasure), then the customer's shoots on it
    dated on or before the erasure go for good, and their trashed files, but what a hold
    (stored, configured, or more_holds(): a config reloaded meanwhile) keeps. Return how many
    pending erasures were done."""
    finish_running(config, store, audit, executor, result, more_holds)
    rows = [r for r in store.pending_erasures() if online(executor, r["volume"])]
    if not rows or scan is None:
        return 0
    for volume in sorted({r["volume"] for r in rows}):
        scan(volume)
    today = executor.now.date()
    done = 0
    for row in rows:
        if result.stopped:
            break
        holds = ops.all_holds(config, store) + more_holds()
        # a hold may name a customer the index has no row of any more
        keys = set(store.customer_keys()) | {h.customer_key for h in holds if h.customer_key}
        key = next((k for k in keys if audit.token("customer", k) == row["token"]), None)
        on = date.fromisoformat(row["on_date"])
        before = (result.erased_files, result.erased_bytes, len(result.failed))
        audit.append("erase_pending", erasure=row["erasure_id"], customer=row["token"],
                     volume=row["volume"])
        if key is not None:
            _carry_out(config, store, audit, executor, row["erasure_id"], key, on,
                       [row["volume"]], result, finish=False, more_holds=more_holds)
        root = executor.root(row["volume"])
        trash = store.pending_trash(row["erasure_id"], row["volume"])
        if trash and root is not None:
            holds = ops.all_holds(config, store) + more_holds()  # read again: promise 3
            executor.erase_pending_trash(
                root, trash, lambda rel, v=row["volume"]: _path_token(audit, v, rel), result,
                lambda rel, v=row["volume"], t=row["token"], h=holds: _pending_file_held(
                    audit, h, v, rel, t, today))
        if result.stopped:
            break
        with store.transaction():
            left = len(store.pending_trash(row["erasure_id"], row["volume"]))
            # a file the disk failed to delete keeps it pending: the next apply tries again
            if not left and len(result.failed) == before[2]:
                store.finish_pending(row["erasure_id"], row["volume"])
            audit.append("erase_pending_done", erasure=row["erasure_id"], customer=row["token"],
                         volume=row["volume"], files=result.erased_files - before[0],
                         bytes=result.erased_bytes - before[1], trash_left=left)
        done += 1
    if done:
        store.checkpoint()
    return done


def _carry_out(config, store, audit, executor, erasure_id: int, key: str, on: date,
               volumes: list[str], result, *, finish: bool = True, more_holds=tuple) -> None:
    """Erase the customer's shoots dated on or before `on` and their trash on the given
    volumes; then scrub the stored reports and the index of what named them, and with
    `finish` close the erasure. Each shoot's intent is audited before its first file goes;
    holds are read afresh for each shoot and each trash group (promise 3). A stop leaves the
    erasure running (or pending): the next apply or erase goes on from there."""
    from archivekeeper import report

    today = executor.now.date()
    wanted = set(volumes)
    held = set()  # shoots a hold keeps (some of): their rows stay in the index
    before = (result.erased_files, result.erased_bytes, len(result.failed))
    for part in survey(config, store, key, today, lambda v: online(executor, v)).shoots:
        shoot = store.shoot(part.shoot_id)
        if (part.volume not in wanted or not part.online or shoot is None
                or date.fromisoformat(shoot["date"]) > on):
            held.update([part.shoot_id] if part.kept else [])
            continue
        if executor.stop_now(result):
            return
        part = shoot_part(store, shoot, key, today,
                          ops.all_holds(config, store) + more_holds(), True)
        if part.kept:
            held.add(part.shoot_id)
        shoot_token = audit.token("shoot", f"{part.volume}:{part.path}")
        audit.append("erase_shoot", erasure=erasure_id, shoot=shoot_token,
                     files=len(part.erase), bytes=sum(f.size for f in part.erase),
                     kept=len(part.kept))
        gone = executor.erase_files(executor.root(part.volume), part.shoot_id, part.erase,
                                    result, _prune_stop(shoot["path"], key))
        audit.append("erase_shoot_done", erasure=erasure_id, shoot=shoot_token,
                     files=len(gone), skipped=len(part.erase) - len(gone))
    for group in store.customer_trash(key):
        root = executor.root(group["volume"]) if group["volume"] in wanted else None
        if root is None or trash_held(group, key, today,
                                      ops.all_holds(config, store) + more_holds()):
            continue
        if executor.stop_now(result):
            return
        audit.append("erase_trash", erasure=erasure_id, trash=group["id"],
                     shoot=audit.token("shoot", f"{group['volume']}:"
                                                f"{exact_path(group['shoot_path'])}"))
        executor.erase_trash(root, group, result)
    if result.stopped or (finish and len(result.failed) > before[2]):
        return  # still running: a stop, or a file the disk failed; the next run goes on
    longer = others(store, key)
    report.redact(config, key, longer)
    with store.transaction():
        # the rows of shoots left on the volumes erased now stay (held, changed, or dated
        # after a pending erasure); with `finish`, those on offline volumes go, but held
        # ones: the pending erasure scans for them
        gone = [r["id"] for r in store.shoots(customer_key=key)
                if finish and r["volume"] not in wanted and r["id"] not in held]
        store.forget_customer(key, gone, unrecognised(store, key), today)
        store.forget_holds(h["id"] for h in store.holds_ever()
                           if _names(h, key, today, longer))
        # another customer's hold or use, or an earlier erasure, may give a reason naming them
        store.redact_reasons((table, row_id) for table, row_id, text in store.reasons()
                             if naming.mentions(text, key, longer))
        if finish:
            store.finish_erasure(erasure_id)
            audit.append("erase_done", erasure=erasure_id, customer=audit.token("customer", key),
                         files=result.erased_files - before[0],
                         bytes=result.erased_bytes - before[1], skipped=len(result.skipped))
    if finish and not store.checkpoint():
        log.warning("erase_checkpoint_busy",
                    hint="another process reads the index; its journal keeps old pages until "
                         "the next checkpoint")


def _prune_stop(shoot_path: bytes, key: str) -> bytes:
    """Where removing the folders an erased shoot leaves empty stops: its parent, or higher
    while that folder is named for the customer (an empty "Mäkinen Anna/" goes with them;
    the owner's "Arkisto/" stays: nothing outside a shoot is deleted)."""
    parent = os.path.dirname(shoot_path)
    while parent and naming.mentions(exact_path(os.path.basename(parent)), key):
        parent = os.path.dirname(parent)
    return parent


def _pending_file_held(audit, holds, volume: str, rel: bytes, token: str, today: date) -> bool:
    """Does a hold in force now reach a trashed file of a pending erasure? Only its path is
    known, not its shoot: every folder above it stands for the shoot, so a hold on or inside
    any of them keeps it (over-keeping, never missing); a customer hold matches by token."""
    parts = exact_path(rel).split("/")
    folders = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for hold in holds:
        if not policy.hold_active(hold, today):
            continue
        if hold.scope == "customer":
            if hold.customer_key is None or audit.token(
                    "customer", naming.normalize_customer(hold.customer_key)) == token:
                return True
        elif any(policy.hold_reaches(hold, volume, folder, "") for folder in folders):
            return True
    return False


def _names(hold, key: str, today: date, longer=()) -> bool:
    """A stored hold that keeps nothing now (released or ended) and whose text names the
    customer: it goes with the erasure."""
    ended = hold["released_at"] is not None or (
        hold["until"] is not None and date.fromisoformat(hold["until"]) < today)
    text = " ".join(str(hold[c]) for c in ("customer", "reason") if hold[c] is not None)
    if hold["path"] is not None:
        text += " " + exact_path(hold["path"])
    return ended and naming.mentions(text, key, longer)


def online(executor, volume: str) -> bool:
    """Is the volume configured, online and open for changes through the executor?"""
    return executor.config.volume(volume) is not None and executor.root(volume) is not None


def _path_token(audit, volume: str, rel: bytes) -> str:
    return audit.token("path", f"{volume}:{exact_path(rel)}")


def preview_lines(found: Survey) -> list[str]:
    """The preview in words, one line each, for the terminal (to be shown with show_path)."""
    lines = []
    for volume, row in sorted(found.volumes().items()):
        lines.append(f"{volume} ({row['state']}): {row['shoots']} shoots, {row['files']} files, "
                     f"{row['bytes']} bytes" + (" (erased when the drive is next online)"
                                                 if row["state"] == "offline" else ""))
    for part in found.shoots:
        if part.kept:
            lines.append(f"kept: {part.volume}:{part.path}: {len(part.kept)} files, "
                         f"by {'; '.join(part.holds)}")
    for group in found.trash:
        lines.append(f"trash {group['id']} on {group['volume']}: {group['files']} files"
                     + (" (kept: held)" if group["held"] else ""))
    for volume in found.offline:
        lines.append(f"{volume} is offline: the erasure waits for it")
    for volume, rel in found.unrecognised:
        lines.append(f"unrecognised folder {volume}:{exact_path(rel)} bears the name: never "
                     "deleted, see to it by hand")
    if not found.shoots and not found.trash:
        lines.append("the index holds no shoot or trash of this customer; the erasure record "
                     "still makes any shoot of theirs that turns up later due at once")
    return lines
