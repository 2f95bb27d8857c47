"""Deciding, per shoot and per file, when it may be deleted. Pure: no I/O, no clock.

For each file: `due` is the earliest date of the matching delete rules, `keep_until` the latest
of the matching keep rules and holds, and its date is max(due, keep_until) when it has a due at
all (None = never). Erasure records make a shoot due on the erasure date whatever the rules say;
holds win over everything, erasure too.

evaluate_shoot (plan, report, apply) and explain_shoot (explain) both decide every file through
_Context.verdict, so they agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple

from archivekeeper.core.durations import Period
from archivekeeper.core.globs import CompiledGlob, compile_glob, fold
from archivekeeper.core.model import Erasure, FileFact, Hold, Match, Rule, ShootFact
from archivekeeper.core.naming import normalize_customer

ERASURE_RULE = "erasure"
_SHOOT_KEYS = ("customer", "type", "volume", "path")
_BASE_FIELDS = {"shoot_date": "date", "last_used": "last_used", "modified": "modified"}
_BASE_WORDS = {"shoot_date": "shot", "last_used": "last used", "modified": "modified"}


@dataclass(frozen=True)
class FileGroup:
    """Files of one shoot that share a verdict.

    date: when they become deletable (None = never); rule: the rule that gave the earliest due,
    or "erasure", or None when no delete rule matches; unheld: the date with holds left aside
    (what the rules alone give); holds: every hold that applies to these files, ended or not.
    """

    date: date | None
    rule: str | None
    erasure: bool  # decided by an erasure record (rule is then "erasure")
    unheld: date | None
    holds: tuple[Hold, ...]
    files: tuple[FileFact, ...]


@dataclass(frozen=True)
class ShootDecision:
    """The verdicts on every file of one shoot, grouped by identical verdict."""

    shoot: ShootFact
    groups: tuple[FileGroup, ...]
    holds: tuple[Hold, ...]  # every hold that applies to the shoot or some of its files

    def group_of(self, relpath: str) -> FileGroup | None:
        """Given a file's relpath, return the group holding it, or None if not in the shoot."""
        for group in self.groups:
            if any(f.relpath == relpath for f in group.files):
                return group
        return None


@dataclass(frozen=True)
class _Check:
    """One rule seen from one shoot: its dates and whether it applies (files aside)."""

    index: int
    rule: Rule
    base: date
    date: date
    miss: str | None  # why the rule does not apply to the shoot; None = it does
    files: CompiledGlob | None
    exclude_files: CompiledGlob | None

    def file_miss(self, folded_name: str) -> str | None:
        """Given a folded base name, return why the rule does not cover it, or None."""
        if self.miss is not None:
            return self.miss
        if self.files is not None and not self.files.match_folded(folded_name):
            return f"files {self.files.pattern} does not match"
        if self.exclude_files is not None and self.exclude_files.match_folded(folded_name):
            return "excluded by files"
        return None


@dataclass(frozen=True)
class _Verdict:
    date: date | None
    rule: str | None
    erasure: bool
    unheld: date | None
    holds: tuple[Hold, ...]
    rule_index: int  # position of the deciding rule in the rules; -1 for erasure or none
    keeper: str | None  # the keep rule or hold that pushed the date past the due, in words


@dataclass(frozen=True)
class _Context:
    """What one shoot needs to decide each file cheaply."""

    shoot: ShootFact
    checks: tuple[_Check, ...]
    file_checks: tuple[_Check, ...]  # applying to the shoot, with a files glob to test per file
    base_due: tuple[date, int, str] | None  # earliest due of rules covering every file
    base_keep: tuple[date, str] | None  # latest keep of rules covering every file
    erasure: Erasure | None
    shoot_holds: tuple[Hold, ...]  # cover every file of the shoot
    file_holds: tuple[tuple[Hold, str], ...]  # path holds inside the shoot, with folded path

    def file_key(self, f: FileFact) -> tuple[tuple[bool, ...], tuple[Hold, ...]]:
        """Given a file, return what its verdict depends on beyond the shoot."""
        if self.file_checks:
            folded = fold(f.name)
            hits = tuple(c.file_miss(folded) is None for c in self.file_checks)
        else:
            hits = ()
        holds = self.shoot_holds
        if self.file_holds:
            rel = fold(f.relpath)
            inside = tuple(h for h, p in self.file_holds if rel == p or rel.startswith(p + "/"))
            holds = holds + inside
        return hits, holds

    def verdict(self, hits: tuple[bool, ...], holds: tuple[Hold, ...]) -> _Verdict:
        """Given a file_key, return the verdict: the one place a file's date is decided."""
        due = self.base_due
        keep = self.base_keep
        for check, hit in zip(self.file_checks, hits, strict=True):
            if hit:
                due, keep = _tighten(due, keep, check)
        if self.erasure is not None:
            # An erasure overrides every rule, keep rules included; only holds stand.
            due = (self.erasure.on, -1, ERASURE_RULE)
            keep = None
        if due is None:
            return _Verdict(None, None, False, None, holds, -1, None)
        if keep is not None and keep[0] > due[0]:
            unheld, keeper = keep[0], keep[1]
        else:
            unheld, keeper = due[0], None
        date_: date | None = unheld
        for hold in holds:
            end = _hold_end(hold)
            if end is None:
                date_, keeper = None, _hold_words(hold)
                break
            if end > date_:
                date_, keeper = end, _hold_words(hold)
        erased = self.erasure is not None
        return _Verdict(date_, due[2], erased, unheld, holds, due[1], keeper)


def evaluate_shoot(
    shoot: ShootFact,
    rules: Sequence[Rule],
    holds: Sequence[Hold],
    erasures: Sequence[Erasure],
) -> ShootDecision:
    """Given a shoot, the rules, every hold and every erasure record, return the verdict on each
    of its files, grouped by identical verdict. Raise ValueError on a rule with an unknown
    `since` or a glob that cannot be compiled."""
    ctx = _context(shoot, rules, holds, erasures)
    verdicts: dict[tuple[tuple[bool, ...], tuple[Hold, ...]], _Verdict] = {}
    members: dict[tuple, list[FileFact]] = {}
    for f in shoot.files:
        key = ctx.file_key(f)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = ctx.verdict(*key)
        group_key = (verdict.date, verdict.rule, verdict.erasure, verdict.unheld, verdict.holds)
        members.setdefault(group_key, []).append(f)
    groups = tuple(
        FileGroup(*group_key, files=tuple(files)) for group_key, files in members.items()
    )
    all_holds = ctx.shoot_holds + tuple(h for h, _ in ctx.file_holds)
    return ShootDecision(shoot, groups, all_holds)


def evaluate_all(
    shoots: Iterable[ShootFact],
    rules: Sequence[Rule],
    holds: Sequence[Hold],
    erasures: Sequence[Erasure],
) -> list[ShootDecision]:
    """Given shoots, return evaluate_shoot of each, in the same order."""
    return [evaluate_shoot(s, rules, holds, erasures) for s in shoots]


def keep_until(shoot: ShootFact, rules: Sequence[Rule]) -> date | None:
    """Given a shoot and the rules, return the latest date the keep rules covering all of its
    files give (the report's backup coverage: a shoot inside a keep period), or None."""
    keep = _context(shoot, rules, (), ()).base_keep
    return keep[0] if keep is not None else None


def _tighten(due, keep, check: _Check):
    """Fold one matching rule in: a delete rule may bring the due date earlier (first rule in
    the config wins a tie), a keep rule may push the keep date later. Return (due, keep)."""
    if check.rule.kind == "delete":
        candidate = (check.date, check.index, check.rule.name)
        if due is None or candidate < due:
            due = candidate
    elif keep is None or check.date > keep[0]:
        keep = (check.date, check.rule.name)
    return due, keep


def _context(
    shoot: ShootFact, rules: Sequence[Rule], holds: Sequence[Hold], erasures: Sequence[Erasure]
) -> _Context:
    customer = _norm(shoot.customer_key)
    checks = tuple(_check(i, rule, shoot, customer) for i, rule in enumerate(rules))
    base_due: tuple[date, int, str] | None = None
    base_keep: tuple[date, str] | None = None
    file_checks = []
    for check in checks:
        if check.miss is not None:
            continue
        if check.files is not None or check.exclude_files is not None:
            file_checks.append(check)
        else:
            base_due, base_keep = _tighten(base_due, base_keep, check)
    shoot_holds: list[Hold] = []
    file_holds: list[tuple[Hold, str]] = []
    for hold in holds:
        reach = _hold_reach(hold, shoot, customer)
        if reach == "shoot":
            shoot_holds.append(hold)
        elif reach == "files":
            file_holds.append((hold, _path_key(hold.path or "")))
    erasure = None
    for record in erasures:
        if _norm(record.customer_key) == customer and shoot.date <= record.on:
            if erasure is None or record.on < erasure.on:
                erasure = record
    return _Context(
        shoot,
        checks,
        tuple(file_checks),
        base_due,
        base_keep,
        erasure,
        tuple(shoot_holds),
        tuple(file_holds),
    )


def _check(index: int, rule: Rule, shoot: ShootFact, customer: str) -> _Check:
    field = _BASE_FIELDS.get(rule.since)
    if field is None:
        raise ValueError(f"rule {rule.name!r}: since must be one of {', '.join(_BASE_FIELDS)}")
    base = getattr(shoot, field)
    match, exclude = rule.match, rule.exclude
    return _Check(
        index=index,
        rule=rule,
        base=base,
        date=_add(rule.period, base),
        miss=_shoot_miss(match, exclude, shoot, customer),
        files=compile_glob(match.files) if match is not None and match.files else None,
        exclude_files=(
            compile_glob(exclude.files) if exclude is not None and exclude.files else None
        ),
    )


def _shoot_miss(
    match: Match | None, exclude: Match | None, shoot: ShootFact, customer: str
) -> str | None:
    """Return why a rule's match/exclude keys leave the shoot out, or None if they do not."""
    for key in _SHOOT_KEYS:
        pattern = getattr(match, key) if match is not None else None
        if pattern is not None and not _key_matches(key, pattern, shoot, customer):
            return f"{key} {pattern} does not match"
    for key in _SHOOT_KEYS:
        pattern = getattr(exclude, key) if exclude is not None else None
        if pattern is not None and _key_matches(key, pattern, shoot, customer):
            return f"excluded by {key}"
    return None


def _key_matches(key: str, pattern: str, shoot: ShootFact, customer: str) -> bool:
    if key == "customer":
        return _customer_glob(pattern).match_folded(customer)
    if key == "type":
        return shoot.type is not None and compile_glob(pattern).match(shoot.type)
    if key == "volume":
        return shoot.volume == pattern
    return compile_glob(pattern).match(shoot.path.strip("/"))


@lru_cache(maxsize=1024)
def _customer_glob(pattern: str) -> CompiledGlob:
    return compile_glob(normalize_customer(pattern))


@lru_cache(maxsize=65536)
def _norm(customer_key: str) -> str:
    # Keys should arrive normalised; normalising again is cheap and a hold must never miss.
    return normalize_customer(customer_key)


def _path_key(path: str) -> str:
    # Case-folded so that a hold over-matches rather than misses (exFAT drives fold case).
    return fold(path.strip("/"))


def _hold_reach(hold: Hold, shoot: ShootFact, customer: str) -> str | None:
    """Return "shoot" if the hold covers every file of the shoot, "files" if some files may lie
    under it, None if it does not apply."""
    if hold.scope == "customer":
        if hold.customer_key is None:
            return "shoot"  # a malformed hold keeps rather than misses
        return "shoot" if _norm(hold.customer_key) == customer else None
    if hold.scope not in ("shoot", "path"):
        return "shoot"  # an unknown scope keeps rather than misses
    if hold.volume is not None and hold.volume != shoot.volume:
        return None
    if hold.path is None:
        return "shoot"  # a malformed shoot or path hold keeps its volume rather than misses
    held, here = _path_key(hold.path), _path_key(shoot.path)
    if hold.scope == "shoot":
        return "shoot" if held == here else None
    if held == "" or held == here or here.startswith(held + "/"):
        return "shoot"
    if here == "" or held.startswith(here + "/"):
        return "files"
    return None


class _Where(NamedTuple):
    volume: str
    path: str


def hold_reaches(hold: Hold, volume: str, path: str, customer_key: str) -> bool:
    """Given a hold and a shoot known only by volume, path and customer key (e.g. in trash),
    return whether the hold covers the shoot or anything in it, matching as planning does."""
    return _hold_reach(hold, _Where(volume, path), _norm(customer_key)) is not None


def _hold_end(hold: Hold) -> date | None:
    """Return the first day the hold no longer keeps (until + 1 day), None if it never ends."""
    if hold.until is None or hold.until == date.max:
        return None
    return hold.until + timedelta(days=1)


def hold_active(hold: Hold, today: date) -> bool:
    """Given a hold and today's date, return whether it still keeps (until is inclusive)."""
    return hold.until is None or hold.until >= today


def _hold_words(hold: Hold) -> str:
    return f"{hold.kind} hold '{hold.reason}'" + (
        f" until {hold.until.isoformat()}" if hold.until is not None else " with no end date"
    )


def hold_text(hold: Hold) -> str:
    """Given a hold, return it as a plan's blocked_by text."""
    until = hold.until.isoformat() if hold.until is not None else "no end date"
    return f"hold {hold.kind}: {hold.reason} (until {until})"


def _add(period: Period, base: date) -> date:
    try:
        return period.add_to(base)
    except OverflowError:
        return date.max


# ---------------------------------------------------------------------------------------------
# explain


@dataclass(frozen=True)
class FileExplanation:
    relpath: str
    size: int
    rules: tuple[dict, ...]
    holds: tuple[dict, ...]
    decision: str  # delete | keep
    date: date | None
    rule: str | None
    reason: str

    def to_json(self) -> dict:
        return {
            "path": self.relpath,
            "size": self.size,
            "rules": list(self.rules),
            "holds": list(self.holds),
            "decision": self.decision,
            "date": _iso(self.date),
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Explanation:
    """Everything `explain` shows for one shoot, decided as evaluate_shoot decides."""

    shoot: ShootFact
    today: date
    rules: tuple[dict, ...]
    holds: tuple[dict, ...]
    erasure: Erasure | None
    blocked_by: tuple[str, ...]
    decision: str
    date: date | None
    reason: str
    files: tuple[FileExplanation, ...]

    def file(self, relpath: str) -> FileExplanation | None:
        """Given a file's relpath (relative to the volume), return its explanation or None."""
        for f in self.files:
            if f.relpath == relpath:
                return f
        return None

    def to_json(self, relpath: str | None = None) -> dict:
        """Return the `explain --json` document for the shoot, or, given a relpath, for that
        file or for the folder inside the shoot it names (every file under it)."""
        doc = {
            "path": self.shoot.path,
            "volume": self.shoot.volume,
            "shoot": _shoot_json(self.shoot),
            "rules": list(self.rules),
            "holds": list(self.holds),
            "erasure": _erasure_json(self.erasure),
            "blocked_by": list(self.blocked_by),
            "decision": self.decision,
            "date": _iso(self.date),
            "reason": self.reason,
            "files": [f.to_json() for f in self.files],
        }
        if relpath is None or relpath.strip("/") == self.shoot.path.strip("/"):
            return doc
        single = self.file(relpath)
        if single is not None:
            chosen = [single]
        else:
            prefix = relpath.strip("/") + "/"
            chosen = [f for f in self.files if f.relpath.startswith(prefix)]
        decision, when = _folder_decision([f.date for f in chosen], self.today)
        doc.update(
            path=relpath,
            rules=list(single.rules) if single is not None else doc["rules"],
            holds=list(single.holds) if single is not None else doc["holds"],
            decision=decision,
            date=_iso(when),
            reason=single.reason if single is not None else _folder_reason(chosen, when),
            files=[f.to_json() for f in chosen],
        )
        return doc


def explain_shoot(
    shoot: ShootFact,
    rules: Sequence[Rule],
    holds: Sequence[Hold],
    erasures: Sequence[Erasure],
    today: date,
) -> Explanation:
    """Given a shoot, the rules, holds and erasure records and today's date, return every rule
    and hold with whether and how it applies, and the decision for the shoot and each file."""
    ctx = _context(shoot, rules, holds, erasures)
    all_holds = ctx.shoot_holds + tuple(h for h, _ in ctx.file_holds)
    blocked_by = shoot_blocks(shoot)
    explained = []
    for f in shoot.files:
        key = ctx.file_key(f)
        verdict = ctx.verdict(*key)
        folded = fold(f.name)
        file_rules = tuple(_rule_json(c, c.file_miss(folded)) for c in ctx.checks)
        file_holds = tuple(_hold_json(h, today) for h in verdict.holds)
        decision = "delete" if verdict.date is not None and verdict.date <= today else "keep"
        explained.append(
            FileExplanation(
                f.relpath,
                f.size,
                file_rules,
                file_holds,
                decision,
                verdict.date,
                verdict.rule,
                _reason(verdict, ctx, today),
            )
        )
    decision, when = _folder_decision([f.date for f in explained], today)
    reason = _folder_reason(explained, when)
    if blocked_by:
        reason += " Nothing is deleted now: " + "; ".join(blocked_by) + "."
    shoot_rules = tuple(_shoot_rule_json(c, shoot.files) for c in ctx.checks)
    return Explanation(
        shoot,
        today,
        shoot_rules,
        tuple(_hold_json(h, today) for h in all_holds),
        ctx.erasure,
        blocked_by,
        decision,
        when,
        reason,
        tuple(explained),
    )


def shoot_blocks(shoot: ShootFact) -> tuple[str, ...]:
    """Given a shoot, return why nothing of it may be deleted now, holds aside, as text."""
    blocks = []
    if shoot.state == "offline":
        blocks.append(f"volume {shoot.volume} is offline")
    elif shoot.state != "online":
        blocks.append(f"shoot is {shoot.state} from volume {shoot.volume}")
    if shoot.incomplete:
        blocks.append("shoot is incomplete (unreadable folder)")
    return tuple(blocks)


def _folder_decision(dates: list[date | None], today: date) -> tuple[str, date | None]:
    if not dates or any(d is None for d in dates):
        return "keep", None
    when = max(dates)  # type: ignore[type-var]
    return ("delete" if when <= today else "keep"), when


def _folder_reason(files: Sequence[FileExplanation], when: date | None) -> str:
    if not files:
        return "Never deleted: no files."
    reasons = {f.reason for f in files}
    if len(reasons) == 1:
        return next(iter(reasons))
    never = sum(1 for f in files if f.date is None)
    if never:
        return (
            f"Never deleted as a whole: {never} of {len(files)} files are never deleted "
            "(see files)."
        )
    return f"Deletable as a whole from {_iso(when)}, when the last of its files is (see files)."


def _reason(v: _Verdict, ctx: _Context, today: date) -> str:
    active = [h for h in v.holds if hold_active(h, today)]
    held = "Held: " + "; ".join(_hold_words(h) for h in active) + ". " if active else ""
    if v.rule is None:
        return held + "Never deleted: no delete rule matches."
    if v.erasure and ctx.erasure is not None:
        by = f"by erasure of {ctx.erasure.on.isoformat()}" + (
            f" ({ctx.erasure.reason})" if ctx.erasure.reason else ""
        )
    else:
        check = ctx.checks[v.rule_index]
        by = f"by rule {v.rule} ({_BASE_WORDS[check.rule.since]} {check.base.isoformat()})"
    if v.date is None:
        return held + f"Never deleted while held; otherwise due on {_iso(v.unheld)} {by}."
    text = f"Deletable from {v.date.isoformat()} {by}"
    if v.keeper is not None:
        text += f"; kept until then by {v.keeper}"
    return held + text + "."


def _rule_json(check: _Check, miss: str | None) -> dict:
    return {
        "name": check.rule.name,
        "kind": check.rule.kind,
        "matched": miss is None,
        "why_not": miss,
        "since": check.rule.since,
        "period": str(check.rule.period),
        "base": check.base.isoformat(),
        "date": _iso(check.date),
    }


def _shoot_rule_json(check: _Check, files: Sequence[FileFact]) -> dict:
    doc = _rule_json(check, check.miss)
    if check.miss is None and (check.files is not None or check.exclude_files is not None):
        covered = sum(1 for f in files if check.file_miss(fold(f.name)) is None)
        doc["files_matched"] = covered
        if covered == 0:
            doc.update(matched=False, why_not="covers none of the shoot's files")
    return doc


def _hold_json(hold: Hold, today: date) -> dict:
    doc: dict = {"id": hold.id, "kind": hold.kind, "scope": hold.scope}
    if hold.scope == "customer":
        doc["customer"] = hold.customer_key
    else:
        doc.update(volume=hold.volume, path=hold.path)
    doc.update(
        reason=hold.reason,
        until=_iso(hold.until),
        active=hold_active(hold, today),
        source=hold.source,
    )
    return doc


def _shoot_json(shoot: ShootFact) -> dict:
    return {
        "id": shoot.id,
        "volume": shoot.volume,
        "path": shoot.path,
        "customer": shoot.customer,
        "date": shoot.date.isoformat(),
        "date_source": shoot.date_source,
        "type": shoot.type,
        "files": len(shoot.files),
        "bytes": sum(f.size for f in shoot.files),
        "modified": shoot.modified.isoformat(),
        "last_used": shoot.last_used.isoformat(),
        "state": shoot.state,
        "incomplete": shoot.incomplete,
    }


def _erasure_json(erasure: Erasure | None) -> dict | None:
    if erasure is None:
        return None
    return {"on": erasure.on.isoformat(), "reason": erasure.reason}


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


# ---------------------------------------------------------------------------------------------
# warnings


def unused_rules_and_holds(
    shoots: Sequence[ShootFact], rules: Sequence[Rule], config_holds: Sequence[Hold]
) -> list[str]:
    """Given the indexed shoots, the rules and the config holds, return a warning for each rule
    and hold that applies to no indexed shoot (a typo protects nothing). Raise ValueError as
    evaluate_shoot does."""
    keys = [_norm(s.customer_key) for s in shoots]
    warnings = []
    for index, rule in enumerate(rules):
        if not any(
            _rule_used(_check(index, rule, s, k), s) for s, k in zip(shoots, keys, strict=True)
        ):
            warnings.append(
                f"rule '{rule.name}' matches no indexed shoot (a typo protects nothing)"
            )
    for hold in config_holds:
        if not any(_hold_used(hold, s, k) for s, k in zip(shoots, keys, strict=True)):
            warnings.append(
                f"hold {hold.id} ({hold.kind}: {hold.reason}) matches no indexed shoot "
                "(a typo protects nothing)"
            )
    return warnings


def _rule_used(check: _Check, shoot: ShootFact) -> bool:
    if check.miss is not None:
        return False
    if check.files is None and check.exclude_files is None:
        return True
    return any(check.file_miss(fold(f.name)) is None for f in shoot.files)


def _hold_used(hold: Hold, shoot: ShootFact, customer: str) -> bool:
    reach = _hold_reach(hold, shoot, customer)
    if reach != "files":
        return reach == "shoot"
    held = _path_key(hold.path or "")
    return any((rel := fold(f.relpath)) == held or rel.startswith(held + "/") for f in shoot.files)
