"""The packed file list: whatever a scan can meet comes back exactly as it went in."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archivekeeper.index.filelist import KINDS, DamagedList, pack_files, unpack_files
from archivekeeper.index.walker import Walk, list_shoot

names = st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b)
files = st.lists(
    st.tuples(names, st.integers(0, 2**63 - 1), st.integers(-(2**63), 2**63 - 1),
              st.integers(0, 2**64 - 1), st.sampled_from(KINDS)),
    max_size=60, unique_by=lambda f: f[0])


@settings(max_examples=300, deadline=None)
@given(files)
def test_a_file_list_round_trips(listed):
    packed = pack_files(listed)
    assert packed[0] == len(listed)
    assert unpack_files(*packed) == sorted(listed)


@settings(max_examples=300, deadline=None)
@given(files.filter(bool), st.integers(0, 5), st.integers(1, 9))
def test_a_list_cut_anywhere_is_damaged_not_misread(listed, column, cut):
    packed = list(pack_files(listed))
    blob = packed[column + 1] if column < 5 else None
    if blob is None:
        packed[0] += 1
    elif column == 0:  # relpaths: one name more or less is caught by the count
        packed[1] = blob + b"\0x"
    else:
        packed[column + 1] = blob[:-min(cut, len(blob))]
    with pytest.raises(DamagedList):
        unpack_files(*packed)


def test_file_kinds_go_by_extension(tmp_path):
    """(Listing real files: kinds are decided where the walker stats them.)"""
    kinds = {b"IMG_1.CR2": "raw", b"a.b.JPEG": "image", b"clip.MOV": "video", b"x.xmp": "sidecar",
             b"jpg": "other", b"notes.txt": "other", b".jpg": "image", b"a\xff.nef": "raw",
             b"trailing.": "other"}
    shoot = os.fsencode(tmp_path / "shoot")
    os.mkdir(shoot)
    for name in kinds:
        open(shoot + b"/" + name, "wb").close()
    listing = list_shoot(Walk(os.fsencode(tmp_path), None, 0, b".marker"), b"shoot", 0)
    assert {f[0]: f[4] for f in unpack_files(*listing.files)} == {
        b"shoot/" + name: kind for name, kind in kinds.items()}
