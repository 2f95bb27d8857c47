"""Carries out a plan through fsops: trash, restore, purge — crash-resumable.

Every file operation is preceded by an intent committed to the index (trash_files.state moving /
restoring / purging) and an audit record fsynced to disk, and followed by its completion. After a
crash, `recover` looks at where each half-moved file actually is and finishes or rolls back the
step, so a file is never both in place and in trash, nor in neither, without the index knowing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from archivekeeper.act import fsops
from archivekeeper.core import planner, policy
from archivekeeper.index.store import Store, inode_from_sql, inode_to_sql
from archivekeeper.index.volumes import probe
from archivekeeper.logs import exact_path, get_logger, show_path

log = get_logger()
AUDIT_CHUNK = 64  # shoots whose intent records share one fsync
NOT_TRIED = fsops.Outcome("stopped")  # a file left where it was because of a stop


@dataclass
class RunResult:
    moved_files: int = 0
    moved_bytes: int = 0
    shoots: int = 0
    skipped: list[str] = field(default_factory=list)  # "volume:path: why" (never audited)
    purged_files: int = 0
    purged_bytes: int = 0
    restored_files: int = 0
    erased_files: int = 0  # deleted for good by an erasure (art. 17)
    erased_bytes: int = 0
    stopped: bool = False  # should_stop said stop: the rest is left for the next run
    # what the system said of each file operation it failed, e.g. "Input/output error" (a
    # full, read-only or failing disk); each is in skipped too
    failed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.moved_files or self.purged_files or self.restored_files
                    or self.erased_files)


class Executor:
    """Given the config, the index, the audit log and `now`, act on the file system.
    should_stop (the daemon's SIGTERM) is asked before each file operation of trash_items and
    purge: once it says stop, the operation under way has finished and no other starts."""

    def __init__(self, config, store: Store, audit, now: datetime,
                 should_stop: Callable[[], bool] | None = None):
        self.config = config
        self.store = store
        self.audit = audit
        self.now = now
        self.should_stop = should_stop
        self._roots: dict[str, fsops.VolumeRoot | None] = {}

    # -- volumes --------------------------------------------------------------------------------
    def root(self, volume: str) -> fsops.VolumeRoot | None:
        """Open a volume for changes only if it is online with the recorded marker id now."""
        if volume not in self._roots:
            vol = self.config.volume(volume)
            recorded = self.store.volume_ids()
            # every configured volume is probed, so two drives carrying one id are both offline
            status = next((s for s in probe(self.config.volumes, recorded) if s.name == volume),
                          None)
            root = None
            if status is not None and status.online and recorded.get(volume) == status.volume_id:
                try:
                    # the id is checked again through the handle opened: the folder at the
                    # path may have been swapped since the probe read it
                    root = fsops.VolumeRoot.open(str(vol.path), volume, expected_dev=status.dev,
                                                 expected_id=status.volume_id)
                except fsops.FsError as exc:
                    log.warning("volume_refused", volume=volume, error=str(exc))
            self._roots[volume] = root
        return self._roots[volume]

    def close(self) -> None:
        for root in self._roots.values():
            if root is not None:
                root.close()
        self._roots.clear()

    def expect(self, root: fsops.VolumeRoot, size: int, mtime_ns: int, inode: int):
        return fsops.Expect(size, mtime_ns, inode if root.stable_inodes else None)

    def stop_now(self, result: RunResult) -> bool:
        if not result.stopped and self.should_stop is not None and self.should_stop():
            result.stopped = True
        return result.stopped

    def _audit_stop(self, result: RunResult, step: str) -> None:
        """Record that a run stopped early, with what this step had done by then."""
        if result.stopped:
            files, size = ((result.moved_files, result.moved_bytes) if step == "trash"
                           else (result.purged_files, result.purged_bytes))
            self.audit.append("run_stopped", step=step, files=files, bytes=size)
            log.info("run_stopped", step=step, files=files, bytes=size)

    # -- recovery -------------------------------------------------------------------------------
    def recover(self, holds_now: Callable[[], Sequence], *, finish_purges: bool) -> int:
        """Finish or roll back every half-done step whose volume is online (the caller holds the
        run lock). A purge is finished only with finish_purges (a trusted clock: never on a
        distrusted one, which can only roll it back), when the trash's retention has passed
        today, and where no hold, read afresh from holds_now() for each trash group, covers the
        item today. Return how many steps were
        resolved."""
        held: dict[int, bool] = {}

        def group_held(gid: int) -> bool:
            if gid not in held:
                held[gid] = self._group_held(gid, holds_now())
            return held[gid]

        rows = self.store.half_done_steps()
        today = self.now.date().isoformat()
        done = 0
        for (gid, batch, volume, shoot_rel, purge_after, rel, state, size, mtime_ns,
             inode) in rows:
            inode = inode_from_sql(inode)
            root = self.root(volume)
            if root is None:
                continue  # offline: resolved when it is back
            vol_path = os.fsencode(str(self.config.volume(volume).path))
            original = os.path.lexists(vol_path + b"/" + rel)
            trashed = os.path.lexists(
                vol_path + b"/.archivekeeper/trash/" + batch.encode() + b"/" + rel)
            try:
                if state == "moving":
                    new = None  # never moved: roll the intent back
                    if trashed:
                        new = "trashed"
                        if original:  # a link-then-unlink cut short: let fsops finish it
                            root.move_to_trash(rel, batch, self.expect(root, size, mtime_ns,
                                                                       inode))
                elif state == "restoring":
                    new = "trashed" if trashed else ("restored" if original else "gone")
                elif trashed and (not finish_purges or purge_after > today):
                    # the clock is distrusted, or says the trash has not expired (a purge begun
                    # on a clock that was ahead): roll the purge back
                    new = "trashed"
                elif trashed and group_held(gid):
                    new = "trashed"  # a hold came in after the purge began: keep it
                elif trashed:
                    outcome = root.unlink_trash(batch, rel, self.expect(root, size, mtime_ns,
                                                                        inode))
                    new = "purged" if outcome.status in ("unlinked", "gone") else "trashed"
                    if new == "trashed":  # not what was trashed: kept in trash, reported
                        log.warning("recover_kept_in_trash", volume=volume, path=show_path(rel),
                                    status=outcome.status, detail=outcome.detail)
                else:
                    new = "purged"
                if new == "purged":  # the killed run had not yet removed the emptied folders
                    _prune_trash(root, batch, [rel])
            except fsops.FsError as exc:
                log.warning("recover_failed", error=str(exc))
                continue
            with self.store.transaction():
                if new is None:
                    self.store.drop_trash_files(gid, [rel])
                else:
                    self.store.set_trash_files_state(gid, new, [rel])
                if new == "trashed" and state == "moving":
                    shoot = self.store.shoot_by_path(volume, shoot_rel)
                    if shoot is not None:
                        self.store.forget_files(shoot["id"], [rel])
            done += 1
        if done:
            self._settle_groups()
            self.audit.append("recovered", steps=done)
            log.warning("recovered_half_done_steps", steps=done)
        return done

    def _group_held(self, group_id: int, holds: Sequence) -> bool:
        group = self.store.trash_group(group_id)
        return group is not None and _held(group, holds, self.now.date())

    def _settle_groups(self) -> None:
        """A group's state follows its files: no files left -> dropped; all purged -> purged."""
        with self.store.transaction():
            self.store.settle_trash_groups()

    # -- trash ----------------------------------------------------------------------------------
    def trash_items(self, plan: planner.Plan, holds_now, erasures) -> RunResult:
        """Move every actionable item of the plan to trash, one file at a time.

        Items go in chunks: the chunk's intent records are audited (one fsync) before any of its
        files moves, its completion records after; each shoot's files are re-verified against
        freshly read holds and rules right before they move."""
        result = RunResult()
        batch = self.now.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        purge_after = self.config.safety.trash_retention.add_to(self.now.date()).isoformat()
        rules = self.config.model_rules()
        # a shoot's items back to back, so its whole-shoot check is fresh for all of them
        items = sorted(plan.actionable(), key=lambda i: i.shoot_id)
        verified: dict[int, str | None] = {}  # shoot id -> why it changed since the scan
        for start in range(0, len(items), AUDIT_CHUNK):
            if result.stopped:
                break
            chunk = []
            for item in items[start:start + AUDIT_CHUNK]:
                root = self.root(item.volume)
                if root is None:
                    result.skipped.append(f"{item.volume}:{show_path(item.path)}: volume is not online now")
                else:
                    chunk.append((item, root, self.audit.token(
                        "shoot", f"{item.volume}:{item.path}")))
            if not chunk:
                continue
            self.audit.append_many([("trash", {
                "batch": batch, "shoot": token, "rule": item.rule, "files": len(item.files),
                "bytes": item.bytes,
                "customer": self.audit.token("customer", item.customer_key)})
                for item, _, token in chunk])
            done = []
            for item, root, token in chunk:
                if result.stopped:  # its intent is on record: so is that none of it moved
                    done.append(("trash_done", {"batch": batch, "shoot": token, "files": 0,
                                                "bytes": 0, "skipped": len(item.files)}))
                    continue
                if item.shoot_id not in verified:
                    verified[item.shoot_id] = self._shoot_changed(item, root)
                changed = verified[item.shoot_id]
                facts = [] if changed else self._still_due(item, rules, holds_now(), erasures,
                                                           plan.as_of)
                moved, moved_bytes, failed_before = 0, 0, len(result.failed)
                if changed:
                    result.skipped.append(f"{item.volume}:{show_path(item.path)}: {changed}; nothing of "
                                          "it moved (run `archivekeeper scan`)")
                elif facts:
                    moved, moved_bytes = self._trash_item(root, item, facts, batch, purge_after,
                                                          result)
                else:
                    result.skipped.append(f"{item.volume}:{show_path(item.path)}: no longer due")
                done.append(("trash_done", {"batch": batch, "shoot": token, "files": moved,
                                            "bytes": moved_bytes,
                                            "skipped": len(item.files) - moved,
                                            "failed": len(result.failed) - failed_before}))
            self.audit.append_many(done)
        self._audit_stop(result, "trash")
        return result

    def _shoot_changed(self, item, root) -> str | None:
        """Compare the whole shoot on disk with the index before any of it moves: a changed,
        added or removed file (folder mtimes) means its last-used and modified dates may be
        newer than planned, so none of it moves. Return why, or None if unchanged."""
        base = os.fsencode(str(self.config.volume(item.volume).path))
        for rel, mtime_ns in self.store.folder_mtimes(item.shoot_id):
            try:
                st = os.lstat(base + b"/" + rel)
            except OSError:
                return f"folder {show_path(rel)} is gone"
            if mtime_ns < 0 or st.st_mtime_ns != mtime_ns:
                return f"folder {show_path(rel)} changed since the last scan"
        for rel, size, mtime_ns, inode, _ in self.store.file_tuples(item.shoot_id):
            try:
                st = os.lstat(base + b"/" + rel)
            except OSError:
                return f"{show_path(rel)} is gone"
            same_inode = not root.stable_inodes or st.st_ino == inode
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or not same_inode:
                return f"{show_path(rel)} changed since the last scan"
        return None

    def _still_due(self, item, rules, holds, erasures, today):
        """Re-read the shoot's holds and rules just before moving: return the item's files that
        are still deletable today."""
        from archivekeeper.index.facts import iter_shoot_facts

        row = self.store.shoot(item.shoot_id)
        if row is None or row["state"] != "online" or row["incomplete"]:
            return []
        shoot = next(iter_shoot_facts(self.store, [row]))
        decision = policy.evaluate_shoot(shoot, rules, holds, erasures)
        deletable = set()
        for group in decision.groups:
            if group.date is None or group.date > today:
                continue
            if any(policy.hold_active(h, today) for h in group.holds):
                continue
            deletable.update(group.files)
        return [f for f in item.facts if f in deletable]

    def _trash_item(self, root, item, facts, batch, purge_after, result) -> tuple[int, int]:
        """Move one shoot's verified files; return (files moved, bytes moved)."""
        shoot_rel = self.store.shoot(item.shoot_id)["path"]
        raw = self._raw_paths(item.shoot_id)
        files = [(raw[f.relpath], f) for f in facts if f.relpath in raw]
        with self.store.transaction():
            gid = self.store.add_trash_group(
                batch=batch, volume=item.volume, shoot_path=shoot_rel,
                customer_key=item.customer_key, item_key=item.key, rule=item.rule,
                trashed_at=self.now, purge_after=purge_after,
                files=((rel, f.size, f.mtime_ns, inode_to_sql(f.inode)) for rel, f in files))
        moved, moved_bytes, outcomes = [], 0, {}
        for rel, f in files:
            if self.stop_now(result):
                outcomes[rel] = NOT_TRIED  # its 'moving' row is dropped below, as a refusal's
                continue
            try:
                outcome = root.move_to_trash(rel, batch, self.expect(root, f.size, f.mtime_ns,
                                                                      f.inode))
            except fsops.FsError as exc:
                outcome = _failed(result, exc)
            outcomes[rel] = outcome
            if outcome.status == "moved":
                moved.append(rel)
                moved_bytes += f.size
            else:
                result.skipped.append(f"{item.volume}:{show_path(f.relpath)}: {outcome.status}"
                                      f"{' (' + outcome.detail + ')' if outcome.detail else ''}")
        for rel in sorted({os.path.dirname(r) for r in moved}, key=len, reverse=True):
            try:
                root.prune_empty_dirs(rel, os.path.dirname(shoot_rel))
            except fsops.FsError as exc:
                log.warning("prune_failed", error=str(exc))
        with self.store.transaction():
            self.store.set_trash_files_state(gid, "trashed", moved)
            self.store.drop_trash_files(
                gid, (rel for rel, o in outcomes.items() if o.status != "moved"))
            if not moved:
                self.store.drop_trash_group(gid)
            self.store.forget_files(item.shoot_id, moved)
        result.moved_files += len(moved)
        result.moved_bytes += moved_bytes
        result.shoots += 1 if moved else 0
        return len(moved), moved_bytes

    def _raw_paths(self, shoot_id: int) -> dict[str, bytes]:
        """Exact relpath text (as the plan has it) -> raw bytes: one text per path and back."""
        return {exact_path(raw): raw for raw, *_ in self.store.file_tuples(shoot_id)}

    # -- purge ----------------------------------------------------------------------------------
    def purge(self, holds_now: Callable[[], Sequence]) -> RunResult:
        """Delete for good the trash whose retention has passed, unless a hold covers it: holds
        are read afresh from holds_now() right before each trash group, so a hold added by
        another process during a long purge saves what the purge has not reached yet."""
        result = RunResult()
        today = self.now.date()
        groups = self.store.expired_trash_groups(today)
        for group in groups:
            if result.stopped:
                break
            if _held(group, holds_now(), today):
                result.skipped.append(f"trash {group['id']}: held, not purged")
                continue
            root = self.root(group["volume"])
            if root is None:
                result.skipped.append(f"trash {group['id']}: volume {group['volume']} offline")
                continue
            token = self.audit.token("shoot", f"{group['volume']}:{exact_path(group['shoot_path'])}")
            with self.store.transaction():
                files = self.store.start_purging(group["id"])
                self.audit.append("purge", trash=group["id"], batch=group["batch"], shoot=token,
                                  files=len(files), bytes=sum(f[1] for f in files))
            purged, kept, size = self._unlink_trashed(root, group, files, result)
            result.purged_files += len(purged)
            result.purged_bytes += size
            _prune_trash(root, group["batch"], purged)
            with self.store.transaction():
                self.store.set_trash_files_state(group["id"], "purged", purged)
                self.store.set_trash_files_state(group["id"], "trashed", kept)
                if not kept:
                    self.store.set_trash_group_state(group["id"], "purged")
                self.audit.append("purge_done", trash=group["id"], files=len(purged),
                                  kept=len(kept))
        self._audit_stop(result, "purge")
        return result

    def _unlink_trashed(self, root, group, files, result: RunResult
                        ) -> tuple[list[bytes], list[bytes], int]:
        """Delete a trash group's files (marked 'purging') for good, each re-verified; return
        (gone, left in trash, bytes gone). A file left is named in result.skipped, unless a
        stop meant it was not tried (it goes back to 'trashed' for a later run)."""
        purged, kept, size_gone = [], [], 0
        for rel, size, mtime_ns, inode in files:
            if self.stop_now(result):
                kept.append(rel)
                continue
            try:
                outcome = root.unlink_trash(group["batch"], rel, self.expect(
                    root, size, mtime_ns, inode_from_sql(inode)))
            except fsops.FsError as exc:
                outcome = _failed(result, exc)
            if outcome.status in ("unlinked", "gone"):
                purged.append(rel)
                size_gone += size
            else:  # still in trash: stays listed, purged by a later run
                kept.append(rel)
                result.skipped.append(f"trash {group['id']}: {show_path(rel)}: "
                                      f"{outcome.status} ({outcome.detail})")
        return purged, kept, size_gone

    # -- restore --------------------------------------------------------------------------------
    def restore(self, group_id: int) -> RunResult:
        """Move a trash group's files back; never overwrite what is at the original path now."""
        result = RunResult()
        group = self.store.trash_group(group_id)
        if group is None or group["state"] != "trashed":
            raise LookupError(f"no restorable trash item {group_id} (see `trash list`)")
        root = self.root(group["volume"])
        if root is None:
            raise LookupError(f"volume {group['volume']} is not online")
        files = self.store.trashed_files(group_id)
        token = self.audit.token("shoot", f"{group['volume']}:{exact_path(group['shoot_path'])}")
        with self.store.transaction():
            self.audit.append("restore", trash=group_id, shoot=token, files=len(files))
            self.store.start_restoring(group_id)
            # the restored item's announcement starts again
            self.store.forget_announcement(group["item_key"])
        restored, kept = [], []
        for rel, size, mtime_ns, inode in files:
            try:
                outcome = root.restore(group["batch"], rel,
                                       self.expect(root, size, mtime_ns, inode_from_sql(inode)))
            except fsops.FsError as exc:
                outcome = _failed(result, exc)
            if outcome.status == "restored":
                restored.append(rel)
            else:
                kept.append(rel)
                result.skipped.append(f"{group['volume']}:{show_path(rel)}: {outcome.status}"
                                      f"{' (' + outcome.detail + ')' if outcome.detail else ''}")
        _prune_trash(root, group["batch"], restored)
        with self.store.transaction():
            self.store.set_trash_files_state(group_id, "restored", restored)
            self.store.set_trash_files_state(group_id, "trashed", kept)
            if not kept:
                self.store.set_trash_group_state(group_id, "restored")
            self.audit.append("restore_done", trash=group_id, files=len(restored),
                              kept=len(kept))
        result.restored_files = len(restored)
        return result


    # -- erasure (art. 17) ----------------------------------------------------------------------
    def erase_files(self, root: fsops.VolumeRoot, shoot_id: int, facts,
                    result: RunResult, stop_at: bytes) -> list[bytes]:
        """Delete a shoot's given files for good, each re-verified against the index, then the
        folders left empty up to (never) stop_at, an ancestor of the shoot; drop them from the
        index. Return the relpaths gone. A changed or refused file stays, named in
        result.skipped."""
        raw = self._raw_paths(shoot_id)
        # the shoot's folders as scanned: a killed erasure may have emptied some already
        folders = {rel for rel, _ in self.store.folder_mtimes(shoot_id)}
        gone = []
        for f in facts:
            rel = raw.get(f.relpath)
            if rel is None or self.stop_now(result):
                continue
            try:
                outcome = root.unlink(rel, self.expect(root, f.size, f.mtime_ns, f.inode))
            except fsops.FsError as exc:
                outcome = _failed(result, exc)
            if outcome.status in ("unlinked", "gone"):
                gone.append(rel)
                result.erased_files += 1
                result.erased_bytes += f.size
            else:
                result.skipped.append(f"{root.name}:{show_path(f.relpath)}: {outcome.status}"
                                      f"{' (' + outcome.detail + ')' if outcome.detail else ''}")
        for rel in sorted({os.path.dirname(r) for r in gone} | folders, key=len, reverse=True):
            try:
                root.prune_empty_dirs(rel, stop_at)
            except fsops.FsError as exc:
                log.warning("prune_failed", error=str(exc))
        with self.store.transaction():
            self.store.forget_files(shoot_id, gone)
        return gone

    def erase_trash(self, root: fsops.VolumeRoot, group, result: RunResult) -> int:
        """Delete a trash group's files for good, whatever its retention (the caller checked
        holds); a group left empty leaves the index. Return how many files went."""
        with self.store.transaction():
            files = self.store.start_purging(group["id"])
        purged, kept, size = self._unlink_trashed(root, group, files, result)
        result.erased_files += len(purged)
        result.erased_bytes += size
        _prune_trash(root, group["batch"], purged)
        with self.store.transaction():
            if kept:
                self.store.set_trash_files_state(group["id"], "purged", purged)
                self.store.set_trash_files_state(group["id"], "trashed", kept)
            else:
                self.store.forget_trash_group(group["id"])
        return len(purged)

    def erase_pending_trash(self, root: fsops.VolumeRoot, rows, token_of, result: RunResult,
                            held: Callable[[bytes], bool]) -> int:
        """Delete for good the trashed files a pending erasure names by path token: each of
        the rows' batch folders is walked (archivekeeper's own, symlinks not followed) and a
        file whose token(volume:relpath) is listed goes, re-verified, unless held(relpath)
        (a hold keeps it: it stays listed, for when the hold ends). Return how many went."""
        wanted = {(r["batch"], r["path_token"]): r for r in rows}
        base = os.path.join(os.fsencode(str(self.config.volume(root.name).path)),
                            fsops.META_DIR, fsops.TRASH_DIR)
        done = 0
        for batch in sorted({r["batch"] for r in rows}):
            top = os.path.join(base, os.fsencode(batch))
            purged = []
            for folder, _, names in os.walk(top):
                for name in names:
                    rel = os.path.relpath(os.path.join(folder, name), top)
                    row = wanted.get((batch, token_of(rel)))
                    if row is None or held(rel) or self.stop_now(result):
                        continue
                    try:
                        outcome = root.unlink_trash(batch, rel, self.expect(
                            root, row["size"], row["mtime_ns"], inode_from_sql(row["inode"])))
                    except fsops.FsError as exc:
                        outcome = _failed(result, exc)
                    if outcome.status not in ("unlinked", "gone"):
                        result.skipped.append(f"{root.name}: a trashed file of the erasure: "
                                              f"{outcome.status} ({outcome.detail})")
                        continue
                    purged.append(rel)
                    result.erased_files += 1
                    result.erased_bytes += row["size"]
                    with self.store.transaction():
                        self.store.drop_pending_trash(root.name, batch, row["path_token"])
            done += len(purged)
            _prune_trash(root, batch, purged)
        return done


def _failed(result: RunResult, exc: fsops.FsError) -> fsops.Outcome:
    """A file operation the system failed (EIO, ENOSPC, EROFS, EACCES...): the file stays where
    it was; counted, so that the run ends in an error rather than as done."""
    result.failed.append(exc.reason)
    return fsops.Outcome("failed", exc.reason)


def _prune_trash(root: fsops.VolumeRoot, batch: str, emptied: list[bytes]) -> None:
    """Remove trash folders left empty (deepest first); a failure only costs an empty folder."""
    for rel in sorted({os.path.dirname(r) for r in emptied}, key=len, reverse=True):
        try:
            root.prune_trash_dirs(batch, rel)
        except fsops.FsError as exc:
            log.warning("prune_failed", error=str(exc))


def _held(group, holds, today) -> bool:
    """Is a trash group covered by an active hold now? Matched as planning matches."""
    return any(
        policy.hold_active(hold, today)
        and policy.hold_reaches(hold, group["volume"], exact_path(group["shoot_path"]),
                                group["customer_key"])
        for hold in holds
    )
