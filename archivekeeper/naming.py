"""Folder names -> (customer, date, type); customer normalising. Pure: no I/O, no clock."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[\s_]+")


def normalize_customer(name: str) -> str:
    """Given a customer name as written, return its matching key: NFC, case-folded,
    `_` and runs of white space as one space, trimmed."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return _SPACES.sub(" ", unicodedata.normalize("NFC", folded)).strip()
