"""`archivekeeper demo`: a sample studio archive with its own config and state, built in one
directory and touching nothing else. Shoot dates are relative to today so the plan always has
something due, upcoming and kept."""

from __future__ import annotations

import io
import os
import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

CUSTOMERS = [
    "Mäkinen Anna", "Virtanen Matti", "Korhonen Päivi", "Nieminen Jyrki", "Hämäläinen Eeva",
    "Järvinen Sööti", "Lehtonen Ville", "Heikkinen Aino", "Koskinen Öljy-Pekka", "Laine Tuula",
    "Mäkelä Mikko", "Salo Sirkka", "Ahonen Väinö", "Räsänen Kaija", "Ylönen Lauri",
]
TYPES = ["wedding", "portrait", "passport", "family", "school", "product"]

CONFIG = """\
# archivekeeper demo configuration: paths are relative to this file's folder.
state_dir: state
volumes:
  - {{name: studio, path: volumes/studio}}
  - {{name: backup-1, path: volumes/backup-1, removable: true}}
  - {{name: backup-2, path: volumes/backup-2-unplugged, removable: true}}
shoots:
  patterns:
    - "{{date}} {{customer}}"
    - "{{date}}_{{customer}}_{{type}}"
    - "{{customer}}/{{date}} {{type}}"
    - "Arkisto/{{customer}}"
rules:
  - {{name: passport-photos, match: {{type: passport}}, delete_after: 6 months}}
  - {{name: raw-files-one-year, match: {{files: "*.{{cr2,cr3,nef,arw,dng,raf,orf}}"}},
     delete_after: 1 year}}
  - {{name: keep-backups-one-year, exclude: {{type: passport}}, keep_for: 1 year}}
  - {{name: unused-five-years, delete_after: 5 years, since: last_used}}
holds:
  - {{customer: "Virtanen Matti", kind: invoice, reason: "open invoice 2024-113",
     until: {hold_until}}}
safety:
  notice_period: 14 days
  trash_retention: 30 days
  max_files_per_run: 20000
  max_bytes_per_run: 500 GB
  max_fraction_per_volume: 0.9  # the sample archive is mostly old: most of it is due at once
report:
  dir: reports
  keep: 12 weeks
"""


class DemoError(Exception):
    pass


def jpeg_with_exif(when: datetime, seed: int) -> bytes:
    """A small real JPEG whose EXIF DateTimeOriginal is `when`."""
    from PIL import Image

    rng = random.Random(seed)
    img = Image.new("RGB", (48, 32), tuple(rng.randrange(256) for _ in range(3)))
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp  # DateTime
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R6"
    exif.get_ifd(0x8769)[0x9003] = stamp  # DateTimeOriginal
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=70)
    return out.getvalue()


def _write(path: Path, data: bytes, when: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))


def _shoot_files(folder: Path, when: datetime, rng: random.Random, seed: int) -> None:
    _fill_shoot(folder, when, rng, seed)
    stamp = when.timestamp()
    for dirpath, _, _ in os.walk(folder):  # folders as old as the shoot, like a real archive
        os.utime(dirpath, (stamp, stamp))


def _fill_shoot(folder: Path, when: datetime, rng: random.Random, seed: int) -> None:
    for i in range(rng.randint(2, 4)):
        shot = when + timedelta(minutes=7 * i)
        _write(folder / "JPEG" / f"IMG_{seed:03d}{i}.jpg", jpeg_with_exif(shot, seed * 10 + i),
               shot)
        _write(folder / "RAW" / f"IMG_{seed:03d}{i}.CR2",
               b"II*\x00" + rng.randbytes(rng.randint(2000, 6000)), shot)
    _write(folder / "JPEG" / f"IMG_{seed:03d}0.xmp", b"<x:xmpmeta/>", when)


def build(directory: Path | None, now: datetime) -> Path:
    """Build the demo archive in `directory` (a new temp dir if None); return its config path.
    Raise DemoError if the directory already holds something other than an earlier demo."""
    from archivekeeper.act.volume_init import init_volume

    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="archivekeeper-demo-"))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise DemoError(f"{directory}: not empty; give an empty or new directory")
    today = now.date()
    rng = random.Random(2026)
    studio = directory / "volumes" / "studio"
    backup = directory / "volumes" / "backup-1"
    for vol, name in ((studio, "studio"), (backup, "backup-1")):
        vol.mkdir(parents=True)
        init_volume(vol, name, now)
    (directory / "volumes" / "backup-2-unplugged").mkdir()
    ages = [rng.randint(20, 7 * 365) for _ in range(46)]
    ages[:6] = [190, 175, 360, 372, 1830, 1900]  # around the passport, RAW and 5-year limits
    for n, age in enumerate(ages):
        day = today - timedelta(days=age)
        when = datetime(day.year, day.month, day.day, 14, 0).astimezone()
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        kind = "passport" if n in (0, 1) else rng.choice(TYPES)
        layout = n % 3
        if layout == 0:
            rel = f"{day.isoformat()} {customer}"
        elif layout == 1:
            rel = f"{day:%Y%m%d}_{customer.replace(' ', '_')}_{kind}"
        else:
            rel = f"{customer}/{day:%d.%m.%Y} {kind}"
        _shoot_files(studio / rel, when, rng, n)
        if n % 4 == 0:
            _shoot_files(backup / rel, when, random.Random(n), n)
    exif_day = today - timedelta(days=800)
    _shoot_files(studio / "Arkisto" / "Ylönen Lauri",
                 datetime(exif_day.year, exif_day.month, exif_day.day, 11, 0).astimezone(),
                 rng, 99)
    (studio / "Sekalaista kuvia").mkdir()
    hold_until = (today + timedelta(days=60)).isoformat()
    config = directory / "archivekeeper.yaml"
    config.write_text(CONFIG.format(hold_until=hold_until), encoding="utf-8")
    return config


def extra_steps():
    """The demo's steps after the scan and the shoot table: the plan, one explanation, then a
    whole cycle (apply, trash, restore, audit) on a clock past the notice period, and last
    the weekly report."""
    return [_show_plan, _explain_one, _one_cycle, _write_report]


def _show_plan(ctx, app) -> None:
    import click

    from archivekeeper.cli import plan

    click.echo("\n== plan: what is due, upcoming and blocked ==")
    ctx.invoke(plan, as_of=None, as_json=False)
    notice = app.config.safety.notice_period
    click.echo(f"\nWhy everything is upcoming: each item was announced just now, and nothing is "
               f"deleted before it has been announced for the notice period ({notice}); "
               "'earliest deletion' is the day each one can go.")


def _explain_one(ctx, app) -> None:
    import click

    from archivekeeper.cli import explain

    click.echo("\n== explain: why a passport shoot goes ==")
    row = app.store.oldest_shoot_of_type("passport", not_customer_key="virtanen matti")
    if row is not None:
        ctx.invoke(explain, path=f"{row[0]}:{row[1].decode()}", as_json=False)


def _one_cycle(ctx, app) -> None:
    """Apply on the demo's own clock, a day past the notice period; show the trash, restore
    the first item, verify the audit log."""
    import click

    from archivekeeper.cli import (
        App,
        apply_cmd,
        audit_verify,
        clock_accept,
        trash_list,
        trash_restore,
    )
    from archivekeeper.clock import FixedClock
    from archivekeeper.ops import trash_docs

    now = app.clock.now()
    day = app.config.safety.notice_period.add_to(now.date()) + timedelta(days=1)
    later = App(app.config_arg, FixedClock(datetime.combine(day, now.timetz())))
    later.warned_offline = app.warned_offline
    app.close()  # its run lock and index, for the later run
    ctx.obj = later
    try:
        click.echo(f"\n== apply on {day} (the demo's own clock): the notice period has "
                   "passed ==")
        ctx.invoke(apply_cmd, dry_run=False)
        click.echo("\n== trash list: what moved, restorable until it is purged ==")
        ctx.invoke(trash_list, as_json=False)
        items = trash_docs(later.store)
        if items:
            click.echo(f"\n== trash restore {items[0]['id']}: undo one ==")
            ctx.invoke(trash_restore, item_id=items[0]["id"])
        click.echo("\n== audit verify: every step above is in the tamper-evident log ==")
        ctx.invoke(audit_verify)
    finally:
        later.close()
    # the clock guard remembers the demo's later day; give the archive back to the real clock
    ctx.obj = present = App(app.config_arg, app.clock)
    try:
        click.echo("\n== clock accept: back to the real clock (the demo moved its own) ==")
        ctx.invoke(clock_accept)
    finally:
        present.close()


def _write_report(ctx, app) -> None:
    """The weekly report of the demo archive, on the real clock; its path printed."""
    import click

    from archivekeeper.cli import App, report

    ctx.obj = present = App(app.config_arg, app.clock)
    present.warned_offline = app.warned_offline
    try:
        click.echo("\n== report: the weekly report the owner reads (HTML, text, JSON) ==")
        ctx.invoke(report, out=None, send=False)
    finally:
        present.close()


def where_to_look(config: Path) -> str:
    return (f"\nWhere to look:\n  config:  {config}\n  volumes: {config.parent / 'volumes'}\n"
            f"  index:   {config.parent / 'state' / 'index.sqlite'}\n"
            f"  report:  {config.parent / 'reports'} (open the .html in a browser)\n"
            f"Try:     archivekeeper --config {config} shoots --json\n"
            f"         archivekeeper --config {config} apply --dry-run\n")
