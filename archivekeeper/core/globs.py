"""Glob patterns for rule keys (customer, type, path, files). Pure: no I/O, no clock.

Globs are anchored on the whole text, case-insensitive (case-folded) and NFC-normalised on both
sides. `*` and `?` stop at "/", `**` crosses it and `**/` also matches zero folders; `[abc]`,
`[a-z]` and `[!abc]` are character classes; `{a,b}` are alternatives (nested ones too); a
backslash makes the next character literal. An unclosed `[` or `{` is a literal character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache


def fold(text: str) -> str:
    """Given text, return the form globs compare: NFC-normalised and case-folded."""
    if text.isascii():
        return text.lower()
    # casefold can decompose characters, hence NFC on both sides of it.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


@dataclass(frozen=True)
class CompiledGlob:
    """A glob translated to an anchored regular expression over folded text."""

    pattern: str
    regex: re.Pattern[str]

    def match(self, text: str) -> bool:
        """Given text, return whether the glob matches all of it."""
        return self.regex.fullmatch(fold(text)) is not None

    def match_folded(self, folded: str) -> bool:
        """Given text already passed through fold(), return whether the glob matches it."""
        return self.regex.fullmatch(folded) is not None


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> CompiledGlob:
    """Given a glob pattern, return it compiled. Raise ValueError if it cannot be compiled
    (a reversed range like `[z-a]`)."""
    try:
        regex = re.compile(_parse(fold(pattern), 0, nested=False)[0], re.DOTALL)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid glob: {exc}") from None
    return CompiledGlob(pattern, regex)


def _parse(p: str, i: int, *, nested: bool) -> tuple[str, int]:
    """Translate p from i until its end (or, when nested in braces, an unnested `,` or `}`)."""
    parts: list[str] = []
    n = len(p)
    while i < n:
        c = p[i]
        if nested and c in ",}":
            break
        if c == "*":
            j = i
            while j < n and p[j] == "*":
                j += 1
            if j - i == 1:
                parts.append("[^/]*")
            elif j < n and p[j] == "/":
                parts.append("(?:.*/)?")
                j += 1
            else:
                parts.append(".*")
            i = j
        elif c == "?":
            parts.append("[^/]")
            i += 1
        elif c == "[":
            end = _class_end(p, i)
            if end < 0:
                parts.append(re.escape(c))
                i += 1
            else:
                parts.append(_class_regex(p[i + 1 : end]))
                i = end + 1
        elif c == "{" and _brace_end(p, i) >= 0:
            regex, i = _alternatives(p, i)
            parts.append(regex)
        elif c == "\\" and i + 1 < n:
            parts.append(re.escape(p[i + 1]))
            i += 2
        else:
            parts.append(re.escape(c))
            i += 1
    return "".join(parts), i


def _alternatives(p: str, i: int) -> tuple[str, int]:
    """Translate the balanced `{...}` starting at p[i]; return the regex and the index after."""
    options = []
    j = i + 1
    while True:
        regex, j = _parse(p, j, nested=True)
        options.append(regex)
        if p[j] == "}":
            return "(?:" + "|".join(options) + ")", j + 1
        j += 1


def _brace_end(p: str, i: int) -> int:
    """Return the index of the `}` closing the `{` at p[i], or -1 when it is never closed.
    Skips escapes and character classes the same way _parse does, so the two agree."""
    depth = 0
    j = i
    while j < len(p):
        c = p[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            end = _class_end(p, j)
            if end >= 0:
                j = end + 1
                continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _class_end(p: str, i: int) -> int:
    """Return the index of the `]` closing the class opened at p[i], or -1."""
    j = i + 1
    if j < len(p) and p[j] in "!^":
        j += 1
    if j < len(p) and p[j] == "]":
        j += 1  # a `]` first in the class is a literal
    end = p.find("]", j)
    return end


def _class_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    chars = "".join("-" if ch == "-" else re.escape(ch) for ch in body)
    # A negated class must not let a single-folder wildcard cross into another folder.
    return f"[^/{chars}]" if negate else f"[{chars}]"
