"""Promise 7 with the daemon running: it keeps its index connection open while the CLI erases a
customer, so SQLite never removes the WAL; the erasure's checkpoint must still leave no page
with the name in index.sqlite-wal (nor in the index, nor the audit log)."""

from __future__ import annotations

import unicodedata

from conftest import OLD
from test_daemon import run_daemon, studio  # noqa: F401 (fixtures)

ANNA = "Mäkinen Anna"


def naming(folder, name: str) -> list[str]:
    forms = {unicodedata.normalize(form, name).casefold().encode() for form in ("NFC", "NFD")}
    return [p.name for p in sorted(folder.iterdir())
            if p.is_file() and any(f in p.read_bytes().lower() for f in forms)]


def test_an_erasure_while_the_daemon_holds_the_index_open_leaves_no_name_in_the_wal(
        studio, run_daemon):  # noqa: F811
    for day in range(1, 21):
        studio.shoot("studio", f"2015-03-{day:02d} {ANNA}", mtime=OLD)
    studio.shoot("studio", "2015-03-01 Virtanen Matti", mtime=OLD)
    daemon = run_daemon(studio)
    daemon.notes.wait_idle()  # the start scan has indexed every shoot
    assert "index.sqlite-wal" in naming(studio.state, ANNA)
    erased = studio.cli("erase", "--customer", ANNA, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "erase_checkpoint_busy" not in erased.stderr
    assert daemon.proc.poll() is None  # still running, its connection open
    assert (studio.state / "index.sqlite-wal").exists()
    assert naming(studio.state, ANNA) == []
    assert daemon.stop() == 0
