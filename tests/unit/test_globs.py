from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archivekeeper.core.globs import compile_glob, fold


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*.cr2", "IMG_0001.CR2", True),
        ("*.CR2", "img_0001.cr2", True),
        ("*.cr2", "IMG_0001.cr3", False),
        ("*.cr2", "RAW/IMG_0001.cr2", False),
        ("**/*.cr2", "RAW/IMG_0001.cr2", True),
        ("**/*.cr2", "IMG_0001.cr2", True),
        ("2024/**", "2024/05/a.jpg", True),
        ("**", "a/b/c", True),
        ("*", "a/b", False),
        ("?.jpg", "a.jpg", True),
        ("?.jpg", "ab.jpg", False),
        ("a?b", "a/b", False),
        ("[abc].jpg", "B.jpg", True),
        ("[abc].jpg", "d.jpg", False),
        ("[a-c]x", "bx", True),
        ("[!a]x", "bx", True),
        ("[!a]x", "ax", False),
        ("[!a]x", "/x", False),
        ("*.{cr2,cr3,nef}", "x.NEF", True),
        ("*.{cr2,cr3,nef}", "x.jpg", False),
        ("{a,b{c,d}}.jpg", "bd.jpg", True),
        ("{a,b{c,d}}.jpg", "b.jpg", False),
        ("{a,b}", "a,b", False),
        ("{ab", "{ab", True),
        ("[ab", "[ab", True),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("Virtanen*", "virtanen matti", True),
        ("virtanen", "virtanen matti", False),
        ("wedding", "matti wedding", False),
    ],
)
def test_glob_matches_whole_text_case_insensitively(pattern, text, expected):
    assert compile_glob(pattern).match(text) is expected


def test_glob_is_nfc_normalised_on_both_sides():
    nfd = "Ma\u0308kinen*"
    nfc = "M\u00e4kinen*"
    assert compile_glob(nfd).match("MÄKINEN anna")
    assert compile_glob(nfc).match("Ma\u0308kinen Anna")


def test_glob_folds_non_ascii_case():
    assert compile_glob("ÅSA*.JPG").match("åsa_1.jpg")
    assert fold("STRASSE") == fold("strasse")


def test_reversed_range_is_a_value_error():
    with pytest.raises(ValueError, match="not a valid glob"):
        compile_glob("[z-a]")


def test_compiled_globs_are_cached():
    assert compile_glob("*.jpg") is compile_glob("*.jpg")


def test_many_unclosed_braces_compile_quickly():
    assert compile_glob("{" * 200 + "a").match("{" * 200 + "a")


_names = st.text(alphabet="abcAB.", max_size=8)
_patterns = st.text(alphabet="abAB.*?[]!", max_size=8)


@settings(max_examples=200)
@given(pattern=_patterns, name=_names)
def test_glob_on_plain_names_agrees_with_fnmatch(pattern, name):
    try:
        expected = fnmatch.fnmatchcase(name.lower(), pattern.lower())
    except Exception:  # fnmatch itself rejects some odd classes
        return
    try:
        ours = compile_glob(pattern).match(name)
    except ValueError:
        return
    assert ours is expected
