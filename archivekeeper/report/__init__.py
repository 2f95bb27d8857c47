"""The weekly report (SPEC `report`): gather (gather.py) -> model (core/report.py) ->
renderings (render.py) -> stored files (files.py) -> mail (mail.py). The CLI and the daemon's
weekly job both call `run`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from archivekeeper.core import report as model
from archivekeeper.logs import get_logger


class ReportError(Exception):
    """A report that cannot be made or stored; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass
class Outcome:
    doc: dict
    paths: list[Path]
    pruned: list[str] = field(default_factory=list)
    mail_error: str | None = None  # set when --send failed; the files were written


def run(config, store, audit, now: datetime, statuses, *, out: Path | None = None,
        send: bool = False) -> Outcome:
    """Make this week's report, store it in `out` (default report.dir, where older reports
    past report.keep are deleted) and, with `send`, mail it. A mail that fails leaves the
    report written, is remembered, and is named as a problem in the next report."""
    from archivekeeper.index.store import StoreError
    from archivekeeper.report import files, gather, mail, render

    if send and config.report.email is None:
        raise ReportError(f"{config.source}: report.email is not configured: nothing to send "
                          "to (add report.email, or leave out --send)", 2)
    if out is not None:
        inside = _volume_holding(config, Path(out))
        if inside is not None:
            raise ReportError(f"{out}: is inside volume {inside}; archivekeeper writes nothing "
                              "on a volume (give a folder outside every volume)", 2)
    doc = gather.gather(config, store, audit, now, statuses)
    body = {"html": render.html(doc), "txt": render.text(doc), "json": render.json_text(doc)}
    directory = Path(out) if out is not None else config.report_dir
    try:
        paths = files.write_reports(directory, doc["week"], body, private=out is None)
        # deleting by date: never on a clock that cannot be believed
        pruned = (files.prune_reports(directory, now.date(), config.report.keep)
                  if out is None and doc["clock_trusted"] else [])
    except (OSError, StoreError) as exc:
        raise ReportError(f"{directory}: cannot store the report: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    outcome = Outcome(doc, paths, pruned)
    if out is None:  # the stored series: the next report covers what happened after this one
        with store.transaction():
            store.set_meta(gather.LAST_REPORT, json.dumps({
                "week": doc["week"], "at": doc["generated_at"],
                "audit_seq": doc["audit"]["seq"] if doc["audit"] else 0}))
    if send:
        msg = mail.message(config.report.email, model.subject(doc), body["txt"], body["html"],
                           now)
        try:
            mail.send(config.report.email, msg)
        except mail.MailError as exc:
            outcome.mail_error = str(exc)
            get_logger().warning("report_mail_failed", error=str(exc))
            with store.transaction():
                store.set_meta(gather.MAIL_FAILED, json.dumps(
                    {"week": doc["week"], "at": doc["generated_at"], "error": str(exc)}))
        else:
            with store.transaction():
                store.set_meta(gather.MAIL_FAILED, "null")  # delivered: the notice is done
    return outcome


def _volume_holding(config, folder: Path) -> str | None:
    real = os.path.realpath(folder)
    for volume in config.volumes:
        root = os.path.realpath(volume.path)
        if real == root or real.startswith(root.rstrip("/") + "/"):
            return volume.name
    return None


ERASED = "[erased]"


def redact(config, customer_key: str, others=()) -> list[str]:
    """After an erasure: rewrite every stored report in report.dir that names the customer
    (in any form the matching accepts), from its JSON with each text that names them replaced
    by "[erased]"; thumbnails of such a report go with it. Another customer's longer name
    holding theirs ("Anna Maria" for "Anna"; others: the keys the index knows, and those the
    report names) is no mention of them. Return the weeks rewritten."""
    from archivekeeper.core.naming import mentions, normalize_customer
    from archivekeeper.report import files, render

    directory = Path(config.report_dir)
    if not directory.is_dir():
        return []
    weeks = []
    for week in files.stored_weeks(directory):
        texts = files.read_report(directory, week)
        if not any(mentions(t, customer_key) for t in texts.values()):
            continue
        if "json" not in texts:  # never written alone, but a damaged set must not keep names
            files.remove_report(directory, week)
            weeks.append(week)
            continue
        original = _unescape_paths(json.loads(texts["json"]))
        longer = sorted({*others, *(normalize_customer(c) for c in _customers(original))})
        doc = _scrub(original, customer_key, longer)
        if doc == original:  # only another customer's longer name: leave it as it was
            continue
        body = {"html": render.html(doc), "txt": render.text(doc), "json": render.json_text(doc)}
        files.write_reports(directory, week, body)
        weeks.append(week)
    return weeks


def _customers(value):
    """Every customer name a report document lists."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "customer" and isinstance(v, str):
                yield v
            else:
                yield from _customers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _customers(v)


def _scrub(value, key: str, others: list[str]):
    from archivekeeper.core.naming import mentions

    if isinstance(value, dict):
        return {k: _scrub(v, key, others) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, key, others) for v in value]
    if isinstance(value, str) and mentions(value, key, others):
        return ERASED
    return value


def _unescape_paths(value, key: str | None = None):
    """The stored JSON's paths back to exact text (render.json_text escapes them again)."""
    from archivekeeper.logs import from_json_path

    if isinstance(value, dict):
        return {k: _unescape_paths(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape_paths(v, key) for v in value]
    if isinstance(value, str) and key == "path":
        return from_json_path(value)
    return value
