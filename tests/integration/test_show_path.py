"""Names and paths in output (SPEC): one escaping for every module, that can neither break a line
nor drive a terminal, and that still names exactly one path."""

from __future__ import annotations

import os
import re

import pytest
from conftest import DUE_RULES, OLD
from hypothesis import given
from hypothesis import strategies as st

from archivekeeper.act.fsops import FsError, VolumeRoot
from archivekeeper.logs import from_json_path, json_path, show_path

# What must never reach a terminal raw: C0 and C1 controls, line and paragraph separators, bidi
# controls.
RAW_DANGER = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def unshow(text: str) -> bytes:
    """The bytes show_path's text stands for (the test's own reading of the escapes)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
            continue
        kind = text[i + 1]
        if kind in "nrt\\":
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}[kind]
            i += 2
        elif kind == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            assert kind == "u", text
            out += chr(int(text[i + 2:i + 6], 16)).encode()
            i += 6
    return bytes(out)


@pytest.mark.parametrize(("raw", "shown"), [
    (b"2019-05-12 M\xc3\xa4kinen", "2019-05-12 Mäkinen"),  # UTF-8 as itself
    ("Ma\u0308kinen".encode(), "Ma\u0308kinen"),  # NFD stays NFD
    ("a\u00a0b".encode(), "a\u00a0b"),  # a no-break space is no control
    (b"line1\nline2\r\t", "line1\\nline2\\r\\t"),
    (b"\x1b[31mred\x07\x7f", "\\x1b[31mred\\x07\\x7f"),  # ESC, BEL, DEL
    ("nel\u0085".encode(), "nel\\u0085"),  # a C1 control, never shown as the byte \x85
    ("evil\u202egpj.exe".encode(), "evil\\u202egpj.exe"),  # right-to-left override
    ("\u200fx\u2066y\u2069\u061c".encode(), "\\u200fx\\u2066y\\u2069\\u061c"),
    ("a\u2028b".encode(), "a\\u2028b"),
    (b"raw\xfe\xff.CR2", "raw\\xfe\\xff.CR2"),  # undecodable bytes
    (b"cut\xc3", "cut\\xc3"),  # a truncated UTF-8 sequence
    (b"a\\xff", "a\\\\xff"),  # a literal backslash is doubled: not the byte 0xff
    ("text\udcff", "text\\xff"),  # text from os.fsdecode carries the byte it stands for
])
def test_show_path_escapes_as_the_spec_says(raw: bytes | str, shown: str) -> None:
    assert show_path(raw) == shown
    if isinstance(raw, bytes):
        assert unshow(shown) == raw


@given(st.binary(max_size=40))
def test_any_name_is_shown_on_one_safe_line_and_names_only_itself(raw: bytes) -> None:
    shown = show_path(raw)
    assert RAW_DANGER.search(shown) is None
    assert unshow(shown) == raw
    assert show_path(os.fsdecode(raw)) == shown


def test_fsops_messages_escape_names_like_every_other_output(tmp_path) -> None:
    (tmp_path / "vol" / ".archivekeeper").mkdir(parents=True)
    (tmp_path / "vol" / ".archivekeeper" / "volume.json").write_text('{"id": "x"}')
    name = "shoot\u202e/a\\b\x1b.jpg".encode() + b"\xff"
    with VolumeRoot.open(tmp_path / "vol", "studio") as root:
        with pytest.raises(FsError) as caught:
            root.unlink(b"/" + name, None)
    assert RAW_DANGER.search(str(caught.value)) is None
    assert show_path(b"/" + name) in str(caught.value)


def test_a_name_with_a_backslash_and_one_with_the_byte_it_spells_both_move(studio) -> None:
    """b"a\\xff.jpg" (undecodable byte) and the literal text a\\xff.jpg are two files: both are
    shown, planned and moved, neither in the other's place."""
    studio.write_config(DUE_RULES)
    shoot = studio.shoot("studio", "2015-03-01 Mäkinen Anna",
                         {b"a\xff.jpg": b"byte", b"a\\xff.jpg": b"backslash"}, mtime=OLD)
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    moved = {p.name.encode("utf-8", "surrogateescape"): p.read_bytes()
             for p in trash.rglob("*.jpg")}
    assert moved == {b"a\xff.jpg": b"byte", b"a\\xff.jpg": b"backslash"}
    assert not shoot.exists()


@given(st.binary(max_size=40))
def test_a_path_as_json_carries_it_reads_back_to_its_bytes(raw):
    exact = os.fsdecode(raw)  # undecodable bytes as surrogates, as exact_path keeps them
    assert os.fsencode(from_json_path(json_path(exact))) == raw
