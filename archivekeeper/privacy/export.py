"""GDPR art. 15, right of access: everything the index, the config and the audit log hold about
one customer, as one JSON document or as a CSV of their files.

Reading only: nothing is announced, nothing is audited, no run lock is taken, and the index is
read in one snapshot. Nothing of another customer goes in: their tokens in a shared audit
record (an approve) are written as "(not named here)".
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from archivekeeper import ops
from archivekeeper.core import naming, policy
from archivekeeper.core.model import Hold
from archivekeeper.index.facts import iter_shoot_facts
from archivekeeper.index.store import Store
from archivekeeper.logs import exact_path, json_path, show_path

# A hold's kind as a letter to the customer can say it.
KIND_WORDS = {
    "accounting": "accounting law (bookkeeping records must be kept)",
    "invoice": "an open invoice",
    "collection": "debt collection",
    "legal-claim": "a legal claim",
    "restriction": "a restriction of processing",
    "other": "another reason",
}
# a token of another customer, or of a shoot of theirs the index no longer knows
NOT_NAMED = "(not named here)"
_TOKEN = re.compile(r"[csp]_[0-9a-f]{16}")
_CHAIN_FIELDS = ("prev", "mac")  # the chain's own hashes: nothing about the customer

CSV_COLUMNS = (
    "customer", "volume", "volume_state", "volume_last_seen", "shoot_id", "shoot_path",
    "shoot_date", "date_source", "type", "state", "last_used", "status", "deletable_from",
    "rules", "holds", "file_path", "file_size", "file_modified", "file_deletable_from",
)


def gather(config, store: Store, audit, now: datetime, statuses, name: str) -> dict:
    """Given the config, the index, the audit log, now, the volumes' probed statuses and a
    customer name as typed, return the export document (paths and names as their exact text).
    Raise OpError if nothing is held about the customer."""
    key = naming.normalize_customer(name)
    online = {s.name for s in statuses if s.online}
    with store.read_snapshot():
        rows = store.shoots(customer_key=key)
        groups = store.customer_trash_groups(key)
        places = sorted({(r["volume"], exact_path(r["path"])) for r in rows}
                        | {(g["volume"], exact_path(g["shoot_path"])) for g in groups})
        holds = _holds(config, store, key, places, now.date())
        uses = [{"at": u["at"], "reason": u["reason"], "shoot_date": u["shoot_date"],
                 "shoot_type": u["shoot_type"]} for u in store.customer_uses(key)]
        held_as = [h["customer"] for h in holds if h.get("customer")]
        names = sorted({r["customer"] for r in rows} | set(held_as))
        shown = rows[0]["customer"] if rows else held_as[0] if held_as else name
        events = _audit_events(audit, key, shown, places, holds)
        if not (rows or groups or holds or uses or events):
            raise ops.OpError(f"no shoots, holds or uses for customer '{show_path(name)}' "
                              "in the index (check the spelling)")
        volumes = sorted({r["volume"] for r in rows} | {g["volume"] for g in groups})
        last_seen = {v: _last_seen(store, v) for v in volumes}
        return {
            "customer": {"name": shown, "names": names, "asked_as": name, "key": key},
            "exported_at": now.isoformat(timespec="seconds"),
            "volumes": [_volume(config, store, v, v in online, last_seen[v]) for v in volumes],
            "shoots": _shoots(config, store, rows, online, last_seen, now),
            "holds": holds,
            "uses": uses,
            "trash": [_trash(store, g) for g in groups],
            "audit": events,
        }


def _last_seen(store: Store, volume: str) -> str | None:
    row = store.volume_row(volume)
    return row["last_seen"] if row else None


def _volume(config, store: Store, name: str, online: bool, last_seen: str | None) -> dict:
    configured = config.volume(name)
    row = store.volume_row(name)
    path = str(configured.path) if configured is not None else (row["path"] if row else None)
    return {"name": name, "path": path, "state": "online" if online else "offline",
            "configured": configured is not None, "last_seen": last_seen}


def _shoots(config, store: Store, rows, online: set[str], last_seen: dict, now: datetime
            ) -> list[dict]:
    """Each shoot with its files, the rules that apply, its holds and when it is due, decided
    as `explain` and `plan` decide (announcing nothing)."""
    rules = config.model_rules()
    holds = ops.all_holds(config, store)
    erasures = ops.erasure_records(config, store)
    clock = ops.check_clock(config, store, now)
    out = []
    for shoot in iter_shoot_facts(store, rows):
        if shoot.state == "online" and shoot.volume not in online:
            shoot = replace(shoot, state="offline")  # unplugged since the last scan
        explained = policy.explain_shoot(shoot, rules, holds, erasures, now.date())
        items = ops.shoot_items(config, store, shoot, clock)
        mtimes = {f.relpath: f.mtime_ns for f in shoot.files}
        out.append({
            "id": shoot.id, "volume": shoot.volume, "path": shoot.path,
            "customer": shoot.customer, "date": shoot.date.isoformat(),
            "date_source": shoot.date_source, "type": shoot.type, "state": shoot.state,
            "incomplete": shoot.incomplete, "volume_last_seen": last_seen[shoot.volume],
            "last_used": shoot.last_used.isoformat(), "modified": shoot.modified.isoformat(),
            "bytes": sum(f.size for f in shoot.files),
            "rules": [{k: r[k] for k in ("name", "kind", "since", "period", "base", "date")}
                      for r in explained.rules if r["matched"]],
            "holds": [{"id": h["id"], "kind": h["kind"], "kind_text": KIND_WORDS.get(h["kind"]),
                       "reason": h["reason"], "until": h["until"], "active": h["active"]}
                      for h in explained.holds],
            # plan's statuses; "kept": nothing of it is upcoming or due now
            "status": items[0].status if items else "kept",
            "deletable_from": _iso(explained.date),
            "reason": explained.reason,
            "plan": [{"status": i.status, "date": i.date.isoformat(),
                      "earliest_deletion": _iso(i.earliest), "files": len(i.files),
                      "bytes": i.bytes, "rule": i.rule, "blocked_by": list(i.blocked_by)}
                     for i in items],
            "files": [{"path": f.relpath, "size": f.size,
                       "modified": _local_time(mtimes[f.relpath]), "deletable_from": _iso(f.date)}
                      for f in explained.files],
        })
    return out


def _holds(config, store: Store, key: str, places, today: date) -> list[dict]:
    """Every hold, in the config or stored (released ones too), that names the customer or
    reaches one of their shoots (indexed or in trash)."""
    found = []
    for hold, written in zip(config.model_holds(), config.holds, strict=True):
        if _reaches(hold, key, places):
            found.append(_hold_doc(hold, written.customer, None, None, today))
    for row in store.holds_ever():
        hold = Hold(id=str(row["id"]), kind=row["kind"], reason=row["reason"],
                    until=date.fromisoformat(row["until"]) if row["until"] else None,
                    customer_key=row["customer_key"], volume=row["volume"],
                    path=exact_path(row["path"]) if row["path"] is not None else None,
                    scope=row["scope"], source="cli")
        if _reaches(hold, key, places):
            found.append(_hold_doc(hold, row["customer"], row["created_at"], row["released_at"],
                                   today))
    return found


def _reaches(hold: Hold, key: str, places) -> bool:
    if hold.scope == "customer":
        return hold.customer_key is not None and naming.normalize_customer(
            hold.customer_key) == key
    return any(policy.hold_reaches(hold, volume, path, key) for volume, path in places)


def _hold_doc(hold: Hold, customer: str | None, created: str | None, released: str | None,
              today: date) -> dict:
    doc = {"id": hold.id, "source": hold.source, "scope": hold.scope, "kind": hold.kind,
           "kind_text": KIND_WORDS.get(hold.kind), "reason": hold.reason,
           "until": _iso(hold.until),
           "active": released is None and policy.hold_active(hold, today),
           "created_at": created, "released_at": released}
    if hold.scope == "customer":
        doc["customer"] = customer
    else:
        doc.update(volume=hold.volume, path=hold.path)
    return doc


def _trash(store: Store, group) -> dict:
    files = store.trash_group_files(group["id"])
    return {
        "id": group["id"], "volume": group["volume"], "path": exact_path(group["shoot_path"]),
        "rule": group["rule"], "trashed_at": group["trashed_at"],
        "purge_after": group["purge_after"], "state": group["state"],
        "restorable": any(f["state"] == "trashed" for f in files),
        "files": [{"path": exact_path(f["relpath"]), "size": f["size"],
                   "modified": _local_time(f["mtime_ns"]), "state": f["state"]} for f in files],
    }


def _audit_events(audit, key: str, shown: str, places, holds: list[dict]) -> list[dict]:
    """The audit records about the customer, tokens resolved: those carrying their customer
    token or a token of one of their shoots or held paths; a hold_release of one of their
    stored holds; a purge_done or restore_done of one of their trash groups. A record that
    carries tokens is theirs only if one of its tokens is."""
    names: dict[str, str] | None = None
    hold_ids = {int(h["id"]) for h in holds if h["source"] == "cli"}
    trash_ids: set[int] = set()
    out = []
    for record in audit.records():
        if names is None:  # tokens need audit.key: made only once there is a log
            names = {audit.token("customer", key): shown}
            for volume, path in places:
                names[audit.token("shoot", f"{volume}:{path}")] = f"{volume}:{path}"
            for h in holds:
                if h["scope"] != "customer":
                    target = f"{h['volume']}:{h['path']}"
                    names[audit.token(h["scope"], target)] = target
        fields = {k: v for k, v in record.items() if k not in _CHAIN_FIELDS}
        tokens = set(_tokens(fields))
        trash, hold = (v if isinstance(v, int) else None
                       for v in (record.get("trash"), record.get("hold")))
        if tokens:
            if not tokens & names.keys():
                continue
            if trash is not None:
                trash_ids.add(trash)
        elif not (trash in trash_ids or (record.get("event") == "hold_release"
                                          and hold in hold_ids)):
            continue
        first = {k: fields.pop(k, None) for k in ("seq", "time", "event")}
        out.append({**first, **_resolve(fields, names)})
    return out


def _tokens(value):
    if isinstance(value, str):
        if _TOKEN.fullmatch(value):
            yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _tokens(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _tokens(inner)


def _resolve(value, names: dict[str, str]):
    if isinstance(value, str):
        return names.get(value, NOT_NAMED) if _TOKEN.fullmatch(value) else value
    if isinstance(value, dict):
        return {k: _resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    return value


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _local_time(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC).astimezone().isoformat(timespec="seconds")


# -- output ---------------------------------------------------------------------------------------
def to_json(doc: dict) -> str:
    """The document as JSON. Every text is written as SPEC writes paths and names: its exact
    characters, an undecodable byte as \\xNN and a backslash as \\\\, so every path
    round-trips to its bytes."""
    return json.dumps(_texts(doc, json_path), ensure_ascii=False, indent=2) + "\n"


def to_csv(doc: dict) -> str:
    """One row per file (a shoot without files: one row without file columns), with its
    shoot's columns. A CSV is a text file: names are shown escaped as on a terminal."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    volumes = {v["name"]: v for v in doc["volumes"]}
    for shoot in doc["shoots"]:
        columns = [
            shoot["customer"], shoot["volume"], volumes[shoot["volume"]]["state"],
            shoot["volume_last_seen"], shoot["id"], shoot["path"], shoot["date"],
            shoot["date_source"], shoot["type"], shoot["state"], shoot["last_used"],
            shoot["status"], shoot["deletable_from"],
            "; ".join(r["name"] for r in shoot["rules"]),
            "; ".join(f"{h['kind_text']}: {h['reason']}" for h in shoot["holds"] if h["active"]),
        ]
        for f in shoot["files"] or [None]:
            cells = columns + ([f["path"], f["size"], f["modified"], f["deletable_from"]]
                               if f is not None else [None] * 4)
            writer.writerow(_texts(cells, show_path))
    return out.getvalue()


def _texts(value, convert):
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, dict):
        return {k: _texts(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_texts(v, convert) for v in value]
    return value


def summary(doc: dict) -> str:
    shoots = doc["shoots"]
    offline = sum(1 for s in shoots if s["state"] != "online")
    return (f"export of {show_path(doc['customer']['name'])}: {len(shoots)} shoots "
            f"({offline} not online) on {len(doc['volumes'])} volumes, "
            f"{sum(len(s['files']) for s in shoots)} files, {len(doc['holds'])} holds, "
            f"{len(doc['uses'])} uses, {len(doc['trash'])} trash items, "
            f"{len(doc['audit'])} audit records")


def write_new(path: Path, text: str) -> None:
    """Write text to a new file of mode 0600. An existing path, a symlink included, is refused
    (OpError), never replaced: an export holds personal data."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ops.OpError(f"{show_path(str(path))}: already exists; not overwritten (remove it "
                          "or give another --out)") from None
    except OSError as exc:
        raise ops.OpError(f"{show_path(str(path))}: cannot create: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # a umask takes bits away, never adds them: exactly 0600
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as exc:
        raise ops.OpError(f"{show_path(str(path))}: writing failed: {exc.strerror}; the partial "
                          "file is left there: remove it") from None
    finally:
        os.close(fd)
