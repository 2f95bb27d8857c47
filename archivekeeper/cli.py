"""Command line: thin front door onto the operations. stdout carries only a command's output
(one JSON document with --json); logs, warnings and progress go to stderr."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import click

from archivekeeper.logs import exact_path, json_path, show_path
from archivekeeper.session import Session, SessionError

EXIT_RUNTIME, EXIT_USAGE = 1, 2  # 3 (refused for safety) comes from ops; 78 from session


class Failure(click.ClickException):
    """A runtime error a person can act on: printed as one line, exit 1 (or the given code)."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME):
        super().__init__(message)
        self.exit_code = code

    def show(self, file=None) -> None:
        click.echo(f"archivekeeper: {self.message}", err=True)


class App(Session):
    """A command's session: fails as the CLI does (the lines, then one line and the code)."""

    def fail(self, error: SessionError):
        for line in error.lines:
            click.echo(line, err=True)
        raise Failure(str(error), error.code)


pass_app = click.make_pass_decorator(App)


def emit_json(doc) -> None:
    """Print one JSON document. Paths are kept shown (escaped) inside the program; JSON carries
    them as their exact text (every path in these documents is under a "path" key)."""
    sys.stdout.write(json.dumps(_exact_paths(doc), ensure_ascii=False, indent=2) + "\n")


def _exact_paths(value, key: str | None = None):
    if isinstance(value, dict):
        return {k: _exact_paths(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact_paths(v) for v in value]
    return json_path(value) if key == "path" and isinstance(value, str) else value


def on_terminal() -> bool:
    return sys.stdout.isatty()


def utf8_text(ctx, param, value):
    """A name or reason given on the command line must be UTF-8 text: one with an undecodable
    byte (a lone surrogate here) matches no folder name and cannot be stored."""
    if value is not None and any("\ud800" <= c <= "\udfff" for c in value):
        raise click.BadParameter(f"{show_path(value)} is not valid UTF-8 text")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Config file (default $ARCHIVEKEEPER_CONFIG, else "
                   "/etc/archivekeeper/archivekeeper.yaml).")
@click.version_option(package_name="archivekeeper")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Retention and photo-archive cleanup for photo studios."""
    from archivekeeper import logs

    logs.configure()
    ctx.obj = App(config_path)
    ctx.call_on_close(lambda: ctx.obj.close())


@cli.command("check-config")
@pass_app
def check_config(app: App) -> None:
    """Validate the configuration: exit 0, or 78 with every error."""
    cfg = app.config
    click.echo(f"{cfg.source}: configuration is valid "
               f"({len(cfg.volumes)} volumes, {len(cfg.rules)} rules, {len(cfg.holds)} holds)")
    try:
        indexed = (Path(cfg.state_dir) / "index.sqlite").exists()
    except OSError as exc:  # another user's 0700 state_dir, a name too long: the config stands
        click.echo(f"warning: cannot look for the index in {show_path(str(cfg.state_dir))}: "
                   f"{exc.strerror}; rules and holds were not checked against it", err=True)
        indexed = False
    if indexed:
        from archivekeeper import ops
        from archivekeeper.core import policy

        shoots = ops.plannable_shoots(app.store, cfg)
        for warning in policy.unused_rules_and_holds(shoots, cfg.model_rules(),
                                                     ops.all_holds(cfg, app.store)):
            click.echo(f"warning: {warning}", err=True)


@cli.group()
def volume() -> None:
    """Volume markers and states."""


@volume.command("init")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Volume name as in the config.")
@pass_app
def volume_init(app: App, path: Path, name: str) -> None:
    """Write the volume marker at PATH (refuses a marker of another name)."""
    from archivekeeper.act.volume_init import init_volume
    from archivekeeper.index.volumes import VolumeError

    names = [v.name for v in app.config.volumes]
    if name not in names:
        raise Failure(f"no volume named {name!r} in {app.config.source}; configured: "
                      f"{', '.join(names) or 'none'} (add it to volumes: first)", EXIT_USAGE)
    try:
        marker, created = init_volume(path, name, app.clock.now())
    except (VolumeError, OSError) as exc:
        raise Failure(str(exc)) from None
    verb = "initialised" if created else "already initialised as"
    click.echo(f"{path}: {verb} volume {marker['name']} (id {marker['id']})")


@volume.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def volume_list(app: App, as_json: bool) -> None:
    """Name, path, online/offline, last seen, shoots, bytes."""
    statuses = app.volume_statuses()
    counts = app.store.shoots_per_volume()
    vols = []
    for s in statuses:
        row = app.store.volume_row(s.name)
        shoots, nbytes = counts.get(s.name, (0, 0))
        vols.append({"name": s.name, "path": str(s.path),
                     "state": "online" if s.online else "offline",
                     "last_seen": row["last_seen"] if row else None,
                     "shoots": shoots, "bytes": nbytes,
                     "removable": s.removable, "reason": s.reason or None})
    if as_json:
        emit_json({"volumes": vols})
        return
    from archivekeeper.index.scanner import human_bytes

    render_table(["volume", "path", "state", "last seen", "shoots", "size"],
                 [[v["name"], show_path(v["path"]),
                   v["state"] + (f" ({show_path(v['reason'])})" if v["reason"] else ""),
                   v["last_seen"] or "never", v["shoots"], human_bytes(v["bytes"])]
                  for v in vols])


def render_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """A rich table on a terminal; tab-separated plain lines otherwise."""
    if on_terminal():
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console()
        cells = [[str(c) for c in row] for row in rows]
        table = Table(*headers, title=title, box=box.SIMPLE_HEAD, pad_edge=False)
        for row in cells:
            table.add_row(*(Text(c) for c in row))  # Text: a folder named "[/]" is no markup
        unbounded = console.options.update_width(10**6)
        if console.measure(table, options=unbounded).maximum <= console.width:
            console.print(table)
            return
        # wider than this terminal: a wrapped table is noise; one paragraph per row instead
        if title:
            console.print(Text(title))
        for row in cells:
            named = (f"{h}: {c}" for h, c in zip(headers, row, strict=True) if c)
            console.print(Text(" · ".join(named)), end="\n\n")
        return
    if title:
        click.echo(title)
    click.echo("\t".join(headers))
    for row in rows:
        click.echo("\t".join(str(c) for c in row))


def warn_offline(app: App, statuses) -> int:
    """Log offline volumes (once per volume and command); return how many fixed
    (non-removable) volumes are offline: an error, where an unplugged removable drive is only a
    warning."""
    from archivekeeper.logs import get_logger

    log = get_logger()
    problems = 0
    for s in statuses:
        if s.online:
            continue
        if not s.removable:
            problems += 1
        if s.name in app.warned_offline:
            continue
        app.warned_offline.add(s.name)
        if s.removable:
            log.warning("volume_offline", volume=s.name, reason=s.reason)
        else:
            log.error("volume_offline", volume=s.name, reason=s.reason, removable=False)
    return problems


@cli.command()
@click.option("--volume", "only", metavar="NAME", help="Scan only this volume.")
@click.option("--full", is_flag=True, help="Re-list every folder and stat every file.")
@pass_app
def scan(app: App, only: str | None, full: bool) -> None:
    """Index online volumes; offline ones are reported, not touched. Never deletes."""
    summary, fixed_offline = run_scan(app, only, full)
    summary.errors += fixed_offline  # the summary says what the exit code says
    click.echo(summary.line())
    if fixed_offline or summary.aborted:
        sys.exit(EXIT_RUNTIME)


def run_scan(app: App, only: str | None, full: bool):
    cfg = app.config
    if only is not None and cfg.volume(only) is None:
        raise Failure(f"no volume named {only!r} in {cfg.source}", EXIT_USAGE)
    with progress_bar("scanning") as advance:
        summary, statuses, warnings = app.scan(only, full, progress=advance)
    fixed_offline = warn_offline(app, statuses)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return summary, fixed_offline


class progress_bar:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str):
        self.label = label
        self.progress = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TextColumn("{task.completed} files"), transient=True)
        self.progress.start()
        task = self.progress.add_task(self.label, total=None)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


@cli.command()
@click.option("--customer", metavar="NAME", callback=utf8_text,
              help="Only this customer (normalised match).")
@click.option("--volume", "only", metavar="NAME", help="Only this volume.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def shoots(app: App, customer: str | None, only: str | None, as_json: bool) -> None:
    """List indexed shoots."""
    from archivekeeper.core import naming
    from archivekeeper.index import facts
    from archivekeeper.index.store import shoot_json

    key = naming.normalize_customer(customer) if customer is not None else None
    warn_offline(app, app.volume_statuses())  # their shoots are listed from the index
    rows = app.store.shoots(customer_key=key, volume=only)
    used = facts.last_used_map(app.store, rows)
    docs = [shoot_json(r, used[r["id"]]) for r in rows]
    if as_json:
        emit_json({"shoots": docs})
        return
    from archivekeeper.index.scanner import human_bytes

    render_table(
        ["id", "volume", "path", "customer", "date", "source", "type", "files", "size",
         "last used", "state"],
        [[d["id"], d["volume"], show_path(d["path"]), show_path(d["customer"]), d["date"],
          d["date_source"],
          show_path(d["type"] or ""), d["files"], human_bytes(d["bytes"]), d["last_used"],
          d["state"] + (" (incomplete)" if d["incomplete"] else "")] for d in docs])


@cli.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.pass_context
def demo(ctx: click.Context, directory: Path | None) -> None:
    """Build a sample studio archive in DIRECTORY (default: a new temp dir) and run on it."""
    from archivekeeper import demo as demo_mod

    try:
        config_path = demo_mod.build(directory, ctx.obj.clock.now())
    except (demo_mod.DemoError, OSError) as exc:
        raise Failure(str(exc)) from None
    app = App(str(config_path), ctx.obj.clock)
    ctx.obj = app
    click.echo(f"Demo archive built in {config_path.parent}", err=True)
    summary, _ = run_scan(app, None, False)
    click.echo(summary.line())
    ctx.invoke(shoots, customer=None, only=None, as_json=False)
    for step in demo_mod.extra_steps():
        step(ctx, app)
    click.echo(demo_mod.where_to_look(config_path))


def op_call(fn, *args, **kwargs):
    """Run an operation; turn its refusals into one-line errors with their exit codes."""
    from archivekeeper.ops import OpError

    try:
        return fn(*args, **kwargs)
    except OpError as exc:
        raise Failure(str(exc), exc.code) from None


def parse_day(ctx, param, value):
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2027-01-31") from None


@cli.command()
@click.option("--as-of", callback=parse_day, metavar="DATE",
              help="Plan as of this date (YYYY-MM-DD); announces nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def plan(app: App, as_of, as_json: bool) -> None:
    """What is due, upcoming and blocked, and why. Never changes a file."""
    from archivekeeper import ops

    now = app.clock.now()
    check = ops.check_clock(app.config, app.store, now)
    result = op_call(ops.compute_plan, app.config, app.store, now, as_of=as_of,
                     announce=as_of is None, clock=check)
    if as_of is None and ops.ended_holds(app.config, app.store, check):  # else no audit opened
        ops.note_expired_holds(app.config, app.store, app.audit, check)
    if as_json:
        emit_json(result.to_json())
        return
    print_plan(result)


def print_plan(result) -> None:
    from archivekeeper.index.scanner import human_bytes

    rows = []
    for item in result.items:
        why = show_path("; ".join(item.blocked_by))  # hold reasons and paths: escaped
        earliest = _iso(item.earliest) or "not known"
        if item.earliest is not None and item.earliest != item.date:
            earliest += " (after the hold)" if item.blocked_by else " (after notice)"
        rows.append([item.status, item.date.isoformat(), earliest, item.shoot_id, item.volume,
                     show_path(item.path), item.scope, len(item.files), human_bytes(item.bytes),
                     item.rule, why])
    if rows:
        render_table(["status", "deletable from", "earliest deletion", "shoot", "volume", "path",
                      "scope", "files", "size", "rule", "blocked by"], rows,
                     title=f"Plan as of {result.as_of}")
    else:
        click.echo(f"Plan as of {result.as_of}: nothing due, upcoming or blocked.")
    by_status: dict[str, list] = {}
    for item in result.items:
        by_status.setdefault(item.status, []).append(item)
    for status, items in by_status.items():
        click.echo(f"{status}: {len(items)} items, {sum(len(i.files) for i in items)} files, "
                   f"{human_bytes(sum(i.bytes for i in items))}")
    for refusal in result.refusals:
        click.echo(f"REFUSED: {refusal}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def explain(app: App, path: str, as_json: bool) -> None:
    """Every rule and hold for a shoot folder or file, and the decision."""
    from archivekeeper import ops
    from archivekeeper.core import policy
    from archivekeeper.core.planner import earliest_deletion
    from archivekeeper.index.facts import iter_shoot_facts

    try:
        volume, rel = ops.resolve_target(app.config, path)
        row = ops.find_shoot(app.store, volume, rel)
    except ops.OutsideVolumes:
        row = None
    except ops.OpError as exc:
        raise Failure(str(exc), exc.code) from None
    if row is None:
        if as_json:
            emit_json({"path": path, "shoot": None, "rules": [], "holds": [],
                       "decision": "keep", "date": None,
                       "reason": "not in any shoot: never deleted", "files": []})
        raise Failure(f"{path}: not in any shoot: never deleted")
    shoot = next(iter_shoot_facts(app.store, [row]))
    cfg = app.config
    now = app.clock.now()
    explanation = policy.explain_shoot(shoot, cfg.model_rules(), ops.all_holds(cfg, app.store),
                                       ops.erasure_records(cfg, app.store), now.date())
    doc = explanation.to_json(None if rel == row["path"] else exact_path(rel))
    clock = ops.check_clock(cfg, app.store, now)
    items = ops.shoot_items(cfg, app.store, shoot, clock)

    def earliest(files):
        if not clock.trusted:  # counted from a today that cannot be believed: not known
            return None
        return _iso(earliest_deletion(items, [
            (f["path"], _day(f["date"]), [_day(h["until"]) for h in f["holds"] if h["active"]])
            for f in files], now.date(), cfg.safety.notice_period))

    for f in doc["files"]:
        f["earliest_deletion"] = earliest([f])
    doc["earliest_deletion"] = earliest(doc["files"])
    if as_json:
        emit_json(doc)
        return
    click.echo(f"{volume}:{show_path(doc['path'])}  (shoot {shoot.id}: {show_path(shoot.customer)}, "
               f"{shoot.date}, "
               f"{show_path(shoot.type or 'no type')})")
    click.echo(show_path(doc["reason"]))
    if doc["date"] is not None:
        after = " (after notice)" if doc["earliest_deletion"] != doc["date"] else ""
        click.echo(f"Earliest deletion: {doc['earliest_deletion'] or 'not known yet'}{after}")
    render_table(["rule", "kind", "matched", "since", "base", "date"],
                 [[r.get("name"), r.get("kind"), r.get("matched"), r.get("since"),
                   r.get("base"), r.get("date")] for r in doc["rules"]])
    for hold in doc["holds"]:
        click.echo(f"hold {hold.get('id')}: {hold.get('kind')} {hold.get('reason')!r} "
                   f"until {hold.get('until') or 'further notice'}"
                   f"{'' if hold.get('active', True) else ' (ended)'}")
    dates = {(f["decision"], f["date"]) for f in doc["files"]}
    if len(dates) > 1:
        render_table(["file", "decision", "deletable from", "earliest deletion", "reason"],
                     [[show_path(f["path"]), f["decision"], f["date"] or "never",
                       f["earliest_deletion"] or "-", show_path(f["reason"])]
                      for f in doc["files"]])


@cli.command()
@click.option("--lang", type=click.Choice(["en", "fi"]), default="en", show_default=True,
              help="Language of the draft.")
@pass_app
def records(app: App, lang: str) -> None:
    """Draft of the retention part of the art. 30 record of processing, from the config
    (markdown on stdout; names no customer)."""
    from archivekeeper.privacy.records import draft

    click.echo(draft(app.config, lang), nl=False)


def _day(text):
    from datetime import date

    return date.fromisoformat(text) if text else None


def _iso(day):
    return day.isoformat() if day else None


@cli.group()
def hold() -> None:
    """Holds block deletion of a customer, a shoot or a path."""


@hold.command("add")
@click.option("--customer", metavar="NAME", callback=utf8_text)
@click.option("--shoot", metavar="PATH")
@click.option("--path", "path_", metavar="PATH")
@click.option("--kind", required=True,
              type=click.Choice(["accounting", "invoice", "collection", "legal-claim",
                                 "restriction", "other"]))
@click.option("--reason", required=True, callback=utf8_text)
@click.option("--until", callback=parse_day, metavar="DATE", help="Last day held (inclusive).")
@click.option("--force", is_flag=True, help="Hold a customer or path the index does not know.")
@pass_app
def hold_add(app: App, customer, shoot, path_, kind, reason, until, force) -> None:
    """Add a hold (--customer NAME | --shoot PATH | --path PATH)."""
    if sum(x is not None for x in (customer, shoot, path_)) != 1:
        raise click.UsageError("give exactly one of --customer, --shoot, --path")
    from archivekeeper.ops import add_hold

    hold_id = op_call(add_hold, app.config, app.store, app.audit, app.clock.now(),
                      customer=customer, shoot=shoot, path=path_, kind=kind, reason=reason,
                      until=until, force=force)
    click.echo(f"hold {hold_id} added")


@hold.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def hold_list(app: App, as_json: bool) -> None:
    """Every hold, ending soonest first."""
    from archivekeeper.ops import hold_docs

    docs = hold_docs(app.config, app.store, app.clock.now().date())
    if as_json:
        emit_json({"holds": docs})
        return
    render_table(["id", "kind", "held", "reason", "until", "added", "review"],
                 [[d["id"], d["kind"],
                   show_path(d["customer"] if "customer" in d else f"{d['volume']}:{d['path']}"),
                   show_path(d["reason"]), d["until"] or "further notice",
                   (d["created_at"] or "in config")[:10], _review_note(d)] for d in docs])


def _review_note(doc: dict) -> str:
    if doc["review"]:
        return "open-ended, over a year old: review"
    if doc["until"] is None and doc["source"] == "config":
        return "no end date (config file: age not known)"
    return ""


@hold.command("release")
@click.argument("hold_id")
@pass_app
def hold_release(app: App, hold_id: str) -> None:
    """Release a hold added with `hold add`."""
    from archivekeeper.ops import release_hold

    op_call(release_hold, app.config, app.store, app.audit, app.clock.now(), hold_id)
    click.echo(f"hold {hold_id} released")


@cli.command()
@click.option("--customer", metavar="NAME", callback=utf8_text)
@click.option("--shoot", metavar="PATH")
@click.option("--reason", required=True, callback=utf8_text)
@pass_app
def touch(app: App, customer, shoot, reason) -> None:
    """Record a use (re-order, re-delivery) for every copy."""
    if (customer is None) == (shoot is None):
        raise click.UsageError("give exactly one of --customer, --shoot")
    from archivekeeper import ops

    app.recover()
    count = op_call(ops.touch, app.config, app.store, app.audit, app.clock.now(),
                    customer=customer, shoot=shoot, reason=reason)
    click.echo(f"use recorded for {count} shoots (every copy)")


@cli.command()
@click.option("--customer", metavar="NAME", required=True, callback=utf8_text)
@click.option("--yes", is_flag=True, help="Erase for good (without it: a preview only).")
@click.option("--reason", default="", metavar="TEXT", callback=utf8_text,
              help="Kept with the erasure record; must not name the customer.")
@click.option("--force", is_flag=True,
              help="Record the erasure of a customer the index does not know.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def erase(app: App, customer: str, yes: bool, reason: str, force: bool, as_json: bool) -> None:
    """GDPR art. 17: preview an erasure of the customer; with --yes delete their files on
    online volumes for good (holds keep theirs), and leave a pending erasure for offline ones."""
    from archivekeeper.act.executor import Executor
    from archivekeeper.core import naming
    from archivekeeper.index.scanner import human_bytes
    from archivekeeper.privacy import erase as erasure

    op_call(erasure.check_reason, customer, reason)
    key = naming.normalize_customer(customer)
    if not key:
        raise Failure("--customer is empty", 2)
    if not yes:
        executor = Executor(app.config, app.store, None, app.clock.now())
        try:
            found = erasure.survey(app.config, app.store, key, app.clock.now().date(),
                                   lambda v: erasure.online(executor, v))
        finally:
            executor.close()
        if as_json:
            emit_json({"customer": customer, "erased": False, **found.to_json()})
            return
        for line in erasure.preview_lines(found):
            click.echo(show_path(line))
        click.echo("preview only: nothing was changed; add --yes to erase for good")
        return
    app.lock()
    # erase what is on the drives now: a folder restored or copied since the last scan too
    app.scan()
    if not (force or app.store.knows_customer(key) or erasure.recorded(app.store, app.audit, key)):
        # a typo ("Virtanen Mati") must not leave the owner believing the photos are gone
        raise Failure(f"no shoot or trash of customer {show_path(customer)} in the index (check "
                      "the spelling with `archivekeeper shoots --customer`); add --force to "
                      "record the erasure anyway, so a shoot of theirs that turns up later is "
                      "due at once")
    found, result = op_call(erasure.erase, app.config, app.store, app.audit, app.clock,
                            customer, reason)
    if as_json:
        emit_json({"customer": customer, "erased": True, **found.to_json(),
                   "files": result.erased_files, "bytes": result.erased_bytes,
                   "skipped": result.skipped})
        return
    for line in result.skipped:
        click.echo(f"skipped: {line}", err=True)
    for line in erasure.preview_lines(found):
        if line.startswith(("kept:", "unrecognised", "the index holds no")) or "offline" in line:
            click.echo(show_path(line))
    click.echo(f"erase: deleted {result.erased_files} files "
               f"({human_bytes(result.erased_bytes)}) for good; skipped {len(result.skipped)}")
    if result.failed:
        raise Failure("the disk failed some files (see above): the erasure stays open, and the "
                      "next `archivekeeper apply` or `erase` tries them again")
    if result.skipped:
        raise Failure("some files were not erased (see above): run `archivekeeper scan`, then "
                      "erase again")


@cli.command()
@click.option("--all", "all_", is_flag=True, help="Approve every listed item.")
@click.argument("shoot_ids", nargs=-1, type=int)
@pass_app
def approve(app: App, all_: bool, shoot_ids) -> None:
    """Approve due items when safety.require_approval is on."""
    if all_ == bool(shoot_ids):
        raise click.UsageError("give --all or one or more SHOOT_IDs")
    from archivekeeper import ops

    app.recover()
    count = op_call(ops.approve, app.config, app.store, app.audit, app.clock.now(),
                    None if all_ else list(shoot_ids))
    click.echo(f"{count} items approved")


@cli.command("apply")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@pass_app
def apply_cmd(app: App, dry_run: bool) -> None:
    """Move due items to trash, purge expired trash."""
    from archivekeeper import ops
    from archivekeeper.index.scanner import human_bytes

    if not dry_run:
        app.lock()
    plan_, result = op_call(ops.apply, app.config, app.store, app.audit, app.clock,
                            dry_run=dry_run, scan=lambda volume: app.scan(only=volume))
    due = plan_.actionable()
    if result is None:
        for item in due:
            click.echo(f"would move {len(item.files)} files ({human_bytes(item.bytes)}) of "
                       f"{item.volume}:{show_path(item.path)} to trash (rule {item.rule})")
        click.echo(f"dry run: {len(due)} items, {sum(len(i.files) for i in due)} files, "
                   f"{human_bytes(sum(i.bytes for i in due))} would move to trash; "
                   "nothing was changed")
        return
    for line in result.skipped:
        click.echo(f"skipped: {line}", err=True)
    click.echo(f"apply: moved {result.moved_files} files ({human_bytes(result.moved_bytes)}) "
               f"of {result.shoots} shoots to trash; skipped {len(result.skipped)}; purged "
               f"{result.purged_files} files ({human_bytes(result.purged_bytes)})"
               + (f"; erased {result.erased_files} files ({human_bytes(result.erased_bytes)}) "
                  "for good (pending erasures)" if result.erased_files else ""))
    if result.failed:  # each named above; the files stay where they were for the next run
        sys.exit(EXIT_RUNTIME)


@cli.group()
def trash() -> None:
    """Inspect, restore and purge the trash."""


@trash.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def trash_list(app: App, as_json: bool) -> None:
    """What is in trash, and when it is purged."""
    from archivekeeper.index.scanner import human_bytes
    from archivekeeper.ops import trash_docs

    docs = trash_docs(app.store)
    if as_json:
        emit_json({"items": docs})
        return
    render_table(["id", "volume", "path", "files", "size", "trashed", "purge after"],
                 [[d["id"], d["volume"], show_path(d["path"]), d["files"],
                   human_bytes(d["bytes"]), d["trashed_at"], d["purge_after"]] for d in docs])


@trash.command("restore")
@click.argument("item_id", type=int)
@pass_app
def trash_restore(app: App, item_id: int) -> None:
    """Move a trash item back (never overwriting what is there now)."""
    from archivekeeper import ops

    app.lock()
    group = app.store.trash_group(item_id)
    result = op_call(ops.restore_trash, app.config, app.store, app.audit, app.clock, item_id)
    for line in result.skipped:
        click.echo(f"kept in trash: {line}", err=True)
    click.echo(f"restored {result.restored_files} files")
    if result.restored_files:
        # indexed again at once: a use recorded next (`touch --customer` for the re-order the
        # restore was for) must reach the shoot, or the next apply moves it again
        app.scan(only=group["volume"], folders={group["volume"]: [bytes(group["shoot_path"])]})
        click.echo(f"indexed {show_path(bytes(group['shoot_path']))} again")
    if result.skipped:
        sys.exit(EXIT_RUNTIME)


@trash.command("purge")
@pass_app
def trash_purge(app: App) -> None:
    """Delete for good the trash past its retention (holds re-checked)."""
    from archivekeeper import ops
    from archivekeeper.index.scanner import human_bytes

    app.lock()
    result = op_call(ops.purge_trash, app.config, app.store, app.audit, app.clock)
    for line in result.skipped:
        click.echo(f"skipped: {line}", err=True)
    click.echo(f"purged {result.purged_files} files ({human_bytes(result.purged_bytes)})")
    if result.failed:
        sys.exit(EXIT_RUNTIME)


@cli.command()
@click.option("--out", "out", type=click.Path(path_type=Path), metavar="DIR",
              help="Write the report here instead of report.dir (nothing there is pruned).")
@click.option("--send", is_flag=True, help="Mail it as report.email says.")
@pass_app
def report(app: App, out: Path | None, send: bool) -> None:
    """The weekly report as HTML, text and JSON; --send mails it."""
    from archivekeeper.report import ReportError, run

    warn_offline(app, statuses := app.volume_statuses())
    try:
        outcome = run(app.config, app.store, app.audit, app.clock.now(), statuses, out=out,
                      send=send)
    except ReportError as exc:
        raise Failure(str(exc), exc.code) from None
    for warning in outcome.doc["problems"]:
        if warning["kind"] == "warning":
            click.echo(f"warning: {show_path(warning['text'])}", err=True)
    for path in outcome.paths:
        click.echo(str(path))
    if outcome.mail_error:
        raise Failure(f"the report was written but not sent: {outcome.mail_error}")
    if send:
        click.echo(f"sent to {', '.join(app.config.report.email.to)}", err=True)


@cli.group()
def clock() -> None:
    """The clock guard: a clock that went back or jumped ahead deletes nothing."""


@clock.command("accept")
@pass_app
def clock_accept(app: App) -> None:
    """Trust the present clock after a real gap in time (a machine off for a summer)."""
    from archivekeeper.ops import accept_clock

    app.lock()
    now = app.clock.now()
    old = op_call(accept_clock, app.store, app.audit, now)
    was = old.astimezone(now.tzinfo).isoformat(timespec="seconds") if old else "none yet"
    click.echo(f"clock accepted: {now.isoformat(timespec='seconds')} (last recorded: {was})")


@cli.command()
@click.option("--customer", required=True, metavar="NAME", help="Normalised match, as holds.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True, help="csv: one row per file, with its shoot's columns.")
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE",
              help="Write to this new file (mode 0600; an existing one is refused).")
@pass_app
def export(app: App, customer: str, fmt: str, out: Path | None) -> None:
    """GDPR art. 15: everything held about a customer. Reads only; takes no lock."""
    from archivekeeper.ops import open_audit
    from archivekeeper.privacy import export as access

    log = open_audit(app.config, app.clock, app.store)  # read: app.audit would record a change
    doc = op_call(access.gather, app.config, app.store, log, app.clock.now(),
                  app.volume_statuses(register=False), customer)
    text = access.to_json(doc) if fmt == "json" else access.to_csv(doc)
    if out is None:
        sys.stdout.write(text)
    else:
        op_call(access.write_new, out, text)
    click.echo(access.summary(doc) + (f" -> {show_path(str(out))}" if out else ""), err=True)


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@pass_app
def audit_verify(app: App) -> None:
    """Check the chain: exit 0 intact, 1 with the first bad record."""
    from archivekeeper.ops import open_audit

    result = open_audit(app.config, app.clock, app.store).verify()
    if result.ok:
        click.echo(f"audit log intact: {result.records} records")
        return
    raise Failure(f"audit log damaged: {result.message}")


@audit.command("show")
@click.option("--since", callback=parse_day, metavar="DATE")
@click.option("--customer", metavar="NAME", callback=utf8_text)
@pass_app
def audit_show(app: App, since, customer) -> None:
    """The audit log, readable; tokens resolved while the index knows them."""
    from archivekeeper.ops import open_audit, token_names

    log = open_audit(app.config, app.clock, app.store)
    names = token_names(app.store, log)
    wanted = log.token("customer", customer) if customer else None
    for record in log.records(since):
        values = [v for v in record.values() if isinstance(v, str)] + [
            x for v in record.values() if isinstance(v, list) for x in v]
        if wanted and wanted not in values:
            continue
        extra = {k: v for k, v in record.items() if k not in ("seq", "time", "event", "prev",
                                                               "mac")}
        # a token resolves to a customer or a volume:path: a folder name, shown escaped
        shown = " ".join(f"{k}={show_path(str(_resolve(v, names)))}"
                         for k, v in sorted(extra.items()))
        click.echo(f"{record.get('seq')} {record.get('time')} {record.get('event')} {shown}")


def _resolve(value, names):
    if isinstance(value, list):
        return "[" + ", ".join(str(_resolve(v, names)) for v in value) + "]"
    return names.get(value, value) if isinstance(value, str) else value


@cli.command()
@pass_app
def daemon(app: App) -> None:
    """The service: scheduled scans, apply and report, file watching, drive hot-plug, systemd
    notify. Logs JSON lines on stdout (docs/daemon.md); stops on SIGTERM, reloads on SIGHUP."""
    from archivekeeper.service.daemon import serve

    try:
        code = serve(app.config_arg)
    except SessionError as exc:  # an invalid config (78, with its errors), another daemon (1)
        app.fail(exc)
    sys.exit(code)


def main() -> None:
    """Entry point: never a traceback for a person; exit codes as SPEC.md says."""
    from archivekeeper.index.store import StoreError

    try:
        cli.main(standalone_mode=False, prog_name="archivekeeper")
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_RUNTIME)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_RUNTIME)
    except StoreError as exc:  # e.g. a damaged file list: says which index and what to run
        click.echo(f"archivekeeper: {exc}", err=True)
        sys.exit(EXIT_RUNTIME)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and os.environ.get("ARCHIVEKEEPER_DEBUG"):
            raise
        click.echo(f"archivekeeper: the index is busy or unusable ({exc}); another "
                   "archivekeeper may be writing to it; try again", err=True)
        sys.exit(EXIT_RUNTIME)
    except Exception as exc:  # a bug: say what and where, not a traceback
        from archivekeeper.act.audit import AuditError

        if isinstance(exc, AuditError):  # raised before the step it was to record
            click.echo(f"archivekeeper: audit log: {exc}; nothing more was done", err=True)
            sys.exit(EXIT_RUNTIME)
        if os.environ.get("ARCHIVEKEEPER_DEBUG"):
            raise
        click.echo(f"archivekeeper: internal error: {type(exc).__name__}: {exc} (nothing more "
                   "was done; set ARCHIVEKEEPER_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_RUNTIME)
    sys.exit(0)
