"""Names and paths in output (SPEC): on a terminal and in text, control and bidi characters from
a folder name are shown escaped, never sent raw (a folder name must not split a table row or
drive the terminal); in JSON a name or path is its exact text, and only undecodable bytes and a
literal backslash are escaped, so a path round-trips to its bytes."""

from __future__ import annotations

import os

from conftest import OLD

HOSTILE = "Evil\x1b]0;pwned\x07 Na\u200fme\r\nX"  # title-setting ESC, BEL, RLM, CR, newline
FOLDER = f"2019-05-12 {HOSTILE}"
SLASHED = "2019-05-12 Back\\slash"  # a literal backslash in a (valid UTF-8) shoot folder
ODD_FILE = b"JPEG/bad\xff.jpg"  # an undecodable byte in a file name inside it
RAW_CHARS = ("\x1b", "\x07", "\r", "\u200f")


def test_text_output_shows_control_and_bidi_characters_escaped(studio):
    studio.shoot("studio", FOLDER, mtime=OLD)
    studio.shoot("studio", "2019-06-01 Plain Name", mtime=OLD)
    studio.ok("scan")
    studio.ok("hold", "add", "--customer", HOSTILE, "--kind", "other", "--reason", "r\x1b[2J")
    for args in (["shoots"], ["explain", f"studio:{FOLDER}"], ["hold", "list"], ["plan"]):
        out = studio.ok(*args).stdout
        assert not any(c in out for c in RAW_CHARS), (args, out)
    rows = studio.ok("shoots").stdout.splitlines()
    assert len(rows) == 1 + 2  # header and one row per shoot: no name split a row
    assert any("Evil\\x1b]0;pwned\\x07 Na\\u200fme\\r\\nX" in row for row in rows)


def test_json_carries_names_and_paths_exactly(studio):
    studio.shoot("studio", FOLDER, mtime=OLD)
    studio.shoot("studio", SLASHED, {ODD_FILE: b"x"}, mtime=OLD)
    studio.ok("scan")
    shoots = {s["path"]: s for s in studio.json("shoots")["shoots"]}
    # the name as a person writes it (runs of white space one space), controls kept as text
    assert shoots[FOLDER]["customer"] == "Evil\x1b]0;pwned\x07 Na\u200fme X"
    assert "2019-05-12 Back\\\\slash" in shoots  # a backslash is escaped, nothing else
    doc = studio.json("explain", f"studio:{FOLDER}")
    assert doc["path"] == FOLDER and all(f["path"].startswith(FOLDER) for f in doc["files"])
    raw_json = studio.ok("shoots", "--json").stdout
    assert "\\u200f" not in raw_json and "\u200f" in raw_json  # not as six characters


def test_a_json_path_round_trips_to_its_bytes(studio):
    studio.shoot("studio", SLASHED, {ODD_FILE: b"x"}, mtime=OLD)
    studio.ok("scan")
    (shown,) = [f["path"] for f in studio.json("explain", f"studio:{SLASHED}")["files"]]
    assert shown == "2019-05-12 Back\\\\slash/JPEG/bad\\xff.jpg"
    decoded = shown.replace("\\\\", "\0").replace("\\xff", "\udcff").replace("\0", "\\")
    assert os.fsencode(decoded) == SLASHED.encode() + b"/" + ODD_FILE


def test_a_terminal_table_shows_markup_in_a_name_as_text(monkeypatch, capsys):
    from archivekeeper import cli

    monkeypatch.setattr(cli, "on_terminal", lambda: True)
    cli.render_table(["id", "path"], [[1, "2019-05-12 [/]Odd [bold]Name"]])
    assert "[/]Odd [bold]Name" in capsys.readouterr().out  # no MarkupError, no styling
    wide = [[i, "x" * 60, "y" * 60] for i in range(2)]
    cli.render_table(["id", "path", "customer"], wide)  # wider than the terminal
    out = capsys.readouterr().out
    assert "id: 0 · path: " + "x" * 60 in out.replace("\n", "")
