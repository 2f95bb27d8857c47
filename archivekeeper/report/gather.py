"""Gathering the weekly report: one plan through ops.compute_plan (announcing, as `plan` does,
never on a distrusted clock), with every shoot observed in the same pass for backup coverage
and storage; the audit log since the last report; volumes; problems. The pure model is
core/report.py."""

from __future__ import annotations

import json
from datetime import date, datetime

from archivekeeper import ops
from archivekeeper.core import policy
from archivekeeper.core import report as model
from archivekeeper.logs import exact_path

LAST_REPORT = "report_last"  # meta: {"week", "at", "audit_seq"} of the last stored report
MAIL_FAILED = "report_mail_failed"  # meta: {"week", "at", "error"} of an undelivered report
FAILED_JOBS = "jobs_failed"  # meta: [{"job", "why", "at", "error"}], the daemon's last failures
KEEP_FAILED_JOBS = 20


def gather(config, store, audit, now: datetime, statuses) -> dict:
    """Given the config, the index, the audit log, now and the volumes' statuses (probed by
    the caller), return the report document (core.report.build). Stores the announcements a
    `plan` would store."""
    check = ops.check_clock(config, store, now)
    rules = config.model_rules()
    copies: list[model.CopyFact] = []

    def observe(shoot, decision):
        copies.append(model.CopyFact(
            shoot.id, shoot.volume, shoot.path, shoot.customer, shoot.customer_key, shoot.date,
            shoot.type, sum(f.size for f in shoot.files), policy.keep_until(shoot, rules)))

    plan = ops.compute_plan(config, store, now, announce=True, clock=check, observe=observe)
    ops.note_expired_holds(config, store, audit, check)
    today = now.date()
    last = json.loads(store.get_meta(LAST_REPORT) or "null")
    _, monday, _ = model.iso_week(today)
    # read first: a step recorded while this report is made is in the next one, not lost
    head = store.audit_head()
    upto = head[0] if head else 0
    if last is not None:
        since = f"{last['at']} (the report of week {last['week']})"
        steps, problems = activity(store, audit, after_seq=last["audit_seq"], since_day=None,
                                   upto=upto)
    else:
        since = f"{monday.isoformat()} (the start of this week; no earlier report)"
        steps, problems = activity(store, audit, after_seq=None, since_day=monday, upto=upto)
    problems = (undelivered(store) + failed_jobs(store, last) + problems
                + scan_errors(store, statuses) + unrecognised(store))
    volumes = []
    for status in statuses:
        row = store.volume_row(status.name)
        seen = row["last_seen"] if row is not None else None
        volumes.append(model.VolumeFact(
            status.name, str(status.path), status.online, status.removable, status.reason,
            datetime.fromisoformat(seen).date() if seen else None))
    doc = model.build(
        plan, today=today, generated_at=now.isoformat(timespec="seconds"), rules=rules,
        holds=ops.hold_docs(config, store, today), copies=copies, volumes=volumes, steps=steps,
        problems=problems, since=since, audit_head=head, trusted=check.trusted)
    if config.report.thumbnails:  # shown in the HTML only; the JSON file leaves them out
        from archivekeeper.report.thumbs import thumbnails

        doc["thumbnails"] = thumbnails(config, [i for i in plan.items if i.status != "blocked"])
    return doc


def activity(store, audit, *, after_seq: int | None, since_day: date | None, upto: int
             ) -> tuple[list[model.Activity], list[dict]]:
    """Steps recorded in the audit log after the last report (its seq), or from since_day, up
    to record `upto`:
    (what was trashed, purged and restored, with sizes; problems: files skipped because they
    changed, refusals). Names come from the index while it still knows the tokens."""
    names = ops.token_names(store, audit)
    customer_of: dict[tuple, str] = {}
    steps: list[model.Activity] = []
    problems: list[dict] = []
    for record in audit.records(since_day):
        seq = record.get("seq")
        if not isinstance(seq, int) or seq > upto or (after_seq is not None and seq <= after_seq):
            continue
        event, at = record.get("event"), str(record.get("time", ""))
        shoot = names.get(record.get("shoot"), "")
        volume, _, path = shoot.partition(":")
        if event == "trash":
            customer_of[(record.get("batch"), record.get("shoot"))] = names.get(
                record.get("customer"), "")
        elif event == "trash_done":
            if record.get("files"):
                steps.append(model.Activity(
                    "trashed", at, volume, path,
                    customer_of.get((record.get("batch"), record.get("shoot")), ""),
                    int(record["files"]), int(record.get("bytes") or 0)))
            failed = int(record.get("failed") or 0)  # in skipped too
            if failed:
                problems.append({
                    "kind": "failed", "volume": volume, "path": path,
                    "text": f"{failed} files of {shoot or 'a shoot'} could not be moved on "
                            f"{at[:10]}: the system failed the file operation (a full, "
                            "read-only or failing disk?); they stay where they were"})
            if int(record.get("skipped") or 0) > failed:
                problems.append({
                    "kind": "skipped", "volume": volume, "path": path,
                    "text": f"{int(record['skipped']) - failed} files of {shoot or 'a shoot'} "
                            f"were not moved on {at[:10]}: changed since they were planned, or "
                            "no longer due"})
        elif event in ("purge_done", "restore_done") and record.get("files"):
            kind = "purged" if event == "purge_done" else "restored"
            group = _trash_group(store, record.get("trash"))
            if group is not None:
                steps.append(model.Activity(kind, at, *group, int(record["files"]),
                                            group_bytes(store, record.get("trash"), kind)))
        elif event in ("erase_done", "erase_pending_done") and record.get("files"):
            # the customer's name is gone with the erasure: the report says which erasure
            steps.append(model.Activity(
                "erased", at, str(record.get("volume", "online volumes")),
                f"erasure {record.get('erasure')}",
                "[erased]", int(record["files"]), int(record.get("bytes") or 0)))
        elif event == "refusal":
            reasons = "; ".join(str(r) for r in record.get("reasons") or [])
            problems.append({"kind": "refusal",
                             "text": f"{record.get('command')} was refused on {at[:16]}: "
                                     f"{reasons}"})
    return steps, problems


def _trash_group(store, group_id) -> tuple[str, str, str] | None:
    """(volume, shoot path, customer) of a trash group, or None if the index forgot it."""
    row = store.trash_group(group_id)
    if row is None:
        return None
    named = store.customer_name(row["customer_key"])
    return row["volume"], exact_path(row["shoot_path"]), named or row["customer_key"]


def group_bytes(store, group_id, state: str) -> int:
    return store.trash_group_bytes(group_id, state)


def undelivered(store) -> list[dict]:
    failed = json.loads(store.get_meta(MAIL_FAILED) or "null")
    if failed is None:
        return []
    return [{"kind": "mail", "text": f"the report of week {failed['week']} was not delivered "
                                     f"({failed['at'][:16]}): {failed['error']}"}]


def note_failed_jobs(store, failures: list[dict]) -> None:
    """Given the daemon's failed jobs ({"job", "why", "at", "error"}; no names in the error),
    keep them for the next report (the last KEEP_FAILED_JOBS of all)."""
    with store.transaction():
        kept = json.loads(store.get_meta(FAILED_JOBS) or "[]") + failures
        store.set_meta(FAILED_JOBS, json.dumps(kept[-KEEP_FAILED_JOBS:]))


def failed_jobs(store, last: dict | None) -> list[dict]:
    """The daemon's jobs that failed after the last stored report (`last`, its meta)."""
    since = datetime.fromisoformat(last["at"]) if last is not None else None
    return [{"kind": "job",
             "text": f"the daemon's {e['job']} job ({e['why']}) failed on {e['at'][:16]}: "
                     f"{e['error']}"}
            for e in json.loads(store.get_meta(FAILED_JOBS) or "[]")
            if since is None or datetime.fromisoformat(e["at"]) > since]


def scan_errors(store, statuses) -> list[dict]:
    """The last scan of each volume, if it met unreadable folders or files."""
    out = []
    for status in statuses:
        last = json.loads(store.get_meta(f"scan_errors:{status.name}") or "null")
        if last and last["errors"]:
            out.append({"kind": "scan", "volume": status.name,
                        "text": f"the last scan of volume {status.name} ({last['at'][:16]}) "
                                f"met {model.plural(last['errors'], 'error')}: unreadable "
                                "folders or files, named in its log; their shoots are "
                                "incomplete and kept"})
    return out


def unrecognised(store) -> list[dict]:
    return [{"kind": "unrecognised", "volume": r["volume"], "path": exact_path(r["relpath"]),
             "text": f"unrecognised folder {r['volume']}:{exact_path(r['relpath'])}: "
                     f"{r['reason']}"}
            for r in store.unrecognised()]
