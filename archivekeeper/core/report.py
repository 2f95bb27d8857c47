"""The weekly report's model: from a plan and the facts gathered around it, the document every
rendering (HTML, text, JSON, mail) shows. Pure: no I/O, no clock; `today` is a parameter.

The upcoming deletions are the plan's own items (planner.build_plan through ops.compute_plan),
never a second reading of the rules, so the report and `plan` agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from archivekeeper.core.model import Rule
from archivekeeper.core.planner import Plan, PlanItem

FORMAT = 1  # the JSON document's version; keys may be added, never renamed
HOLDS_ENDING_WITHIN = timedelta(days=30)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SINCE_WORDS = {"shoot_date": "the shoot date", "last_used": "the last use",
                "modified": "the newest file change"}


def iso_week(day: date) -> tuple[str, date, date]:
    """Given a date, return its ISO week as ("2026-W49", Monday, Sunday)."""
    year, week, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return f"{year}-W{week:02d}", monday, monday + timedelta(days=6)


def short_day(day: date) -> str:
    """A date as people write it: 3 Dec 2026 (month names in English, whatever the locale)."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def size_text(n: int) -> str:
    """Bytes in decimal units, as people read drive sizes: 48.2 GB."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class CopyFact:
    """One indexed shoot as backup coverage and storage need it (no files)."""

    shoot_id: int
    volume: str
    path: str
    customer: str
    customer_key: str
    date: date
    type: str | None
    bytes: int
    keep_until: date | None  # the latest date its keep rules give; None: no keep rule


@dataclass(frozen=True)
class VolumeFact:
    name: str
    path: str
    online: bool
    removable: bool
    reason: str  # why offline
    last_seen: date | None


@dataclass(frozen=True)
class Activity:
    """One step taken since the last report, from the audit log and the index."""

    kind: str  # trashed | purged | restored | erased
    at: str  # the audit record's time
    volume: str
    path: str
    customer: str
    files: int
    bytes: int


def rule_words(rules: Sequence[Rule], names: str) -> str:
    """Given the rules and an item's rule field ("a, b"), return what they say in words."""
    by_name = {r.name: r for r in rules}
    words = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        rule = by_name.get(name)
        if name == "erasure":
            words.append("an erasure request (GDPR art. 17)")
        elif rule is None:
            words.append(f"rule {name}")
        else:
            verb = "deleted" if rule.kind == "delete" else "kept"
            words.append(f"rule {name}: {verb} {rule.period} after {_SINCE_WORDS[rule.since]}")
    return "; ".join(words) or "no rule"


def status_words(item: PlanItem, today: date) -> str:
    if item.status == "due":
        return "due now"
    if item.status == "awaiting-approval":
        return "due, waiting for your approval"
    if item.date > today:
        return f"deletable from {short_day(item.date)}"
    if item.announced_at is None:
        return "due, the notice period starts with this report"
    return f"due, announced {short_day(item.announced_at.date())}: in its notice period"


def item_doc(item: PlanItem, rules: Sequence[Rule], today: date) -> dict:
    """A plan item as `plan --json` has it, with the reason in words."""
    doc = item.to_json()
    doc["reason"] = f"{rule_words(rules, item.rule)}; {status_words(item, today)}"
    return doc


def upcoming_groups(items: Iterable[dict]) -> list[dict]:
    """Given item documents, return them grouped by earliest_deletion (unknown last)."""
    groups: dict[str | None, list[dict]] = {}
    for doc in items:
        groups.setdefault(doc["earliest_deletion"], []).append(doc)
    order = sorted(groups, key=lambda d: (d is None, d or ""))
    return [{"date": d, "shoots": len({i["shoot_id"] for i in groups[d]}),
             "files": sum(i["files"] for i in groups[d]),
             "bytes": sum(i["bytes"] for i in groups[d]),
             "items": sorted(groups[d], key=lambda i: (i["customer"], i["volume"], i["path"]))}
            for d in order]


def holds_ending(holds: Iterable[Mapping], today: date) -> list[dict]:
    """Given hold documents (ops.hold_docs), return those whose end lies within 30 days."""
    last = today + HOLDS_ENDING_WITHIN
    return [dict(h) for h in holds
            if h.get("until") and today <= date.fromisoformat(h["until"]) <= last]


def single_copies(copies: Iterable[CopyFact], today: date) -> list[dict]:
    """Shoots inside a keep period that exist on only one volume: the studio promises a backup.
    Copies share customer, date and type; a copy on an offline drive still counts as a copy."""
    sets: dict[tuple, list[CopyFact]] = {}
    for copy in copies:
        sets.setdefault((copy.customer_key, copy.date, copy.type), []).append(copy)
    out = []
    for members in sets.values():
        if len({c.volume for c in members}) > 1:
            continue
        for c in members:
            if c.keep_until is not None and c.keep_until > today:
                out.append({"shoot_id": c.shoot_id, "volume": c.volume, "path": c.path,
                            "customer": c.customer, "date": c.date.isoformat(),
                            "bytes": c.bytes, "keep_until": c.keep_until.isoformat()})
    out.sort(key=lambda d: (d["keep_until"], d["customer"], d["path"]))
    return out


def storage(copies: Iterable[CopyFact]) -> dict:
    """Bytes and shoots by volume and by shoot year."""
    volumes: dict[str, list[int]] = {}
    years: dict[int, list[int]] = {}
    for c in copies:
        for table, key in ((volumes, c.volume), (years, c.date.year)):
            row = table.setdefault(key, [0, 0])
            row[0] += 1
            row[1] += c.bytes
    return {"volumes": [{"name": k, "shoots": v[0], "bytes": v[1]}
                        for k, v in sorted(volumes.items())],
            "years": [{"year": k, "shoots": v[0], "bytes": v[1]}
                      for k, v in sorted(years.items())]}


def bar_chart(rows: Sequence[tuple[str, int]], width: int = 320, bar: int = 16) -> dict:
    """Given (label, value) rows, return the geometry of a horizontal bar chart in a
    width x height box: labels on the left, bars scaled to the largest value."""
    label_w, gap = 70, 4
    top = max((v for _, v in rows), default=0) or 1
    span = width - label_w - 70
    bars = [{"label": label, "value": value, "text": size_text(value),
             "y": i * (bar + gap), "x": label_w, "w": round(span * value / top, 1),
             "text_x": label_w + round(span * value / top, 1) + 4}
            for i, (label, value) in enumerate(rows)]
    return {"width": width, "height": max(len(rows) * (bar + gap), bar), "bar": bar,
            "bars": bars}


def offline_docs(volumes: Iterable[VolumeFact], copies: Iterable[CopyFact],
                 blocked: Iterable[PlanItem], today: date) -> list[dict]:
    """Offline drives: when last seen, what they hold, and what waits for them."""
    held: dict[str, list[int]] = {}
    for c in copies:
        row = held.setdefault(c.volume, [0, 0])
        row[0] += 1
        row[1] += c.bytes
    waiting: dict[str, list[int]] = {}
    for item in blocked:
        if f"volume {item.volume} is offline" in item.blocked_by:
            row = waiting.setdefault(item.volume, [0, 0])
            row[0] += 1
            row[1] += item.bytes
    return [{"name": v.name, "path": v.path, "removable": v.removable, "reason": v.reason,
             "last_seen": v.last_seen.isoformat() if v.last_seen else None,
             "days_unseen": (today - v.last_seen).days if v.last_seen else None,
             "shoots": held.get(v.name, [0, 0])[0], "bytes": held.get(v.name, [0, 0])[1],
             "waiting_items": waiting.get(v.name, [0, 0])[0],
             "waiting_bytes": waiting.get(v.name, [0, 0])[1]}
            for v in volumes if not v.online]


def activity_docs(steps: Iterable[Activity]) -> dict:
    """Steps since the last report, by kind, with totals."""
    out: dict[str, list[dict]] = {"trashed": [], "purged": [], "restored": [], "erased": []}
    seen: dict[tuple, dict] = {}  # one line per shoot and kind: its items summed
    for s in steps:
        doc = seen.get((s.kind, s.volume, s.path))
        if doc is None:
            doc = seen[(s.kind, s.volume, s.path)] = {
                "at": s.at, "volume": s.volume, "path": s.path, "customer": s.customer,
                "files": 0, "bytes": 0}
            out[s.kind].append(doc)
        doc["at"] = max(doc["at"], s.at)
        doc["files"] += s.files
        doc["bytes"] += s.bytes
    totals = {k: {"items": len(v), "files": sum(d["files"] for d in v),
                  "bytes": sum(d["bytes"] for d in v)} for k, v in out.items()}
    return {**out, "totals": totals}


def summary(upcoming: Sequence[dict], awaiting: Sequence[dict], deleted: dict,
            offline: Sequence[dict], problems: Sequence[dict], trusted: bool) -> str:
    """The report's first sentences, in plain words."""
    parts = []
    if not trusted:
        parts.append("The clock is not trusted, so nothing was announced and nothing will be "
                     "deleted until it is fixed or accepted (see problems)")
    shoots = len({i["shoot_id"] for g in upcoming for i in g["items"]})
    if shoots:
        size = size_text(sum(g["bytes"] for g in upcoming))
        known = [g["date"] for g in upcoming if g["date"]]
        when = f" on or after {short_day(date.fromisoformat(known[0]))}" if known else ""
        parts.append(f"{plural(shoots, 'shoot')} ({size}) will be deleted{when}")
    else:
        parts.append("Nothing is planned for deletion")
    if awaiting:
        parts.append(f"{plural(len(awaiting), 'item')} {'waits' if len(awaiting) == 1 else 'wait'}"
                     " for your approval")
    totals = deleted["totals"]
    moved = totals["trashed"]["items"] + totals["erased"]["items"]
    parts.append(f"{moved} {'was' if moved == 1 else 'were'} deleted since the last report"
                 + (f" ({size_text(totals['trashed']['bytes'] + totals['erased']['bytes'])})"
                    if moved else ""))
    for drive in offline:
        if drive["days_unseen"] is None:
            parts.append(f"drive {drive['name']} has never been seen")
        elif drive["days_unseen"] > 0:
            parts.append(f"drive {drive['name']} has not been seen for "
                         f"{plural(drive['days_unseen'], 'day')}")
        else:
            parts.append(f"drive {drive['name']} is offline")
    if problems:
        parts.append(f"{plural(len(problems), 'problem')} "
                     f"{'needs' if len(problems) == 1 else 'need'} a look")
    first, rest = parts[0], parts[1:]
    return first + (("; " + "; ".join(rest)) if rest else "") + "."


def subject(doc: Mapping) -> str:
    """The mail subject: archivekeeper: 12 shoots to be deleted (week 49)."""
    week = int(doc["week"].split("-W")[1])
    shoots = doc["upcoming"]["shoots"]
    what = f"{plural(shoots, 'shoot')} to be deleted" if shoots else "nothing to be deleted"
    return f"archivekeeper: {what} (week {week})"


def build(plan: Plan, *, today: date, generated_at: str, rules: Sequence[Rule],
          holds: Sequence[Mapping], copies: Sequence[CopyFact], volumes: Sequence[VolumeFact],
          steps: Sequence[Activity], problems: Sequence[dict], since: str,
          audit_head: tuple[int, str] | None, trusted: bool,
          approve_command: str = "archivekeeper approve") -> dict:
    """Given the plan (from ops.compute_plan) and what was gathered around it, return the
    report document: the JSON file as it is written, and what the templates show."""
    week, monday, sunday = iso_week(today)
    listed = [i for i in plan.items if i.status != "blocked"]
    blocked = [i for i in plan.items if i.status == "blocked"]
    upcoming = upcoming_groups(item_doc(i, rules, today) for i in listed)
    awaiting = [item_doc(i, rules, today) for i in listed if i.status == "awaiting-approval"]
    ids = sorted({i["shoot_id"] for i in awaiting})
    held = [item_doc(i, rules, today) for i in blocked
            if any(b.startswith("hold ") for b in i.blocked_by)]
    offline = offline_docs(volumes, copies, blocked, today)
    deleted = activity_docs(steps)
    problems = list(problems)
    for text in plan.refusals:
        problems.append({"kind": "refusal", "text": f"a run now would be refused: {text}"})
    for text in plan.warnings:
        problems.append({"kind": "warning", "text": text})
    single = single_copies(copies, today)
    store = storage(copies)
    doc = {
        "format": FORMAT,
        "week": week,
        "period": {"start": monday.isoformat(), "end": sunday.isoformat()},
        "as_of": plan.as_of.isoformat(),
        "generated_at": generated_at,
        "clock_trusted": trusted,
        "since": since,
        "upcoming": {"shoots": len({i.shoot_id for i in listed}), "items": len(listed),
                     "files": sum(len(i.files) for i in listed),
                     "bytes": sum(i.bytes for i in listed), "groups": upcoming},
        "awaiting_approval": {
            "items": awaiting,
            "command": f"{approve_command} {' '.join(map(str, ids))}" if ids else None,
            "all_command": f"{approve_command} --all" if ids else None},
        "deleted": deleted,
        "holds": {"keeping": held, "all": [dict(h) for h in holds],
                  "ending_soon": holds_ending(holds, today)},
        "offline": offline,
        "problems": problems,
        "backup_coverage": {"single_copy": single, "shoots": len(single),
                            "bytes": sum(s["bytes"] for s in single)},
        "storage": store,
        "audit": {"seq": audit_head[0], "hash": audit_head[1]} if audit_head else None,
    }
    doc["summary"] = summary(upcoming, awaiting, deleted, offline, problems, trusted)
    return doc


def charts(doc: Mapping) -> dict:
    """The storage charts' geometry for the HTML rendering."""
    return {"volumes": bar_chart([(v["name"], v["bytes"]) for v in doc["storage"]["volumes"]]),
            "years": bar_chart([(str(y["year"]), y["bytes"]) for y in doc["storage"]["years"]])}
