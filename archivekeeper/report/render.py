"""The report's renderings: self-contained HTML (inline CSS and SVG, no scripts), plain text
within 80 columns, and JSON, from the document core/report.py builds. Jinja2 templates ship as
package data; HTML autoescapes, and every name and path is shown through logs.show_path first,
so a folder name can neither run in a browser nor break a line of text."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date

import jinja2

from archivekeeper.core import report as model
from archivekeeper.logs import json_path, show_path

WIDTH = 80
# Listed one by one up to this many (upcoming, held); the rest are counted and are in the
# JSON file: a week with thousands of items still opens in a mail client.
MAX_LISTED = 2500

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("archivekeeper.report", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"], default_for_string=True),
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True)
_env.filters.update(
    shown=lambda v: show_path("" if v is None else str(v)),
    size=model.size_text,
    day=lambda v: model.short_day(date.fromisoformat(v)) if v else "not known yet",
    plural=model.plural)


def html(doc: dict) -> str:
    return _env.get_template("report.html.j2").render(
        doc=doc, listed=_listed(doc), charts=model.charts(doc),
        thumbs=doc.get("thumbnails", {}))


def text(doc: dict) -> str:
    raw = _env.get_template("report.txt.j2").render(doc=doc, listed=_listed(doc))
    return "".join(line + "\n" for line in _fit(raw.splitlines()))


def json_text(doc: dict) -> str:
    """The document as JSON: names and paths as their exact text (SPEC), an undecodable byte
    as \\xNN and a backslash in a path as \\\\."""
    shown = {k: v for k, v in doc.items() if k != "thumbnails"}
    # one item per line: readable, and the C encoder (indent= would take the slow Python one)
    return json.dumps(_exact(shown), ensure_ascii=False).replace(', {"', ',\n{"') + "\n"


def _exact(value, key: str | None = None):
    if isinstance(value, dict):
        return {k: _exact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, str) and (key == "path" or _has_surrogate(value)):
        return json_path(value)
    return value


_SURROGATE = re.compile("[\udc80-\udcff]")  # an undecodable byte, as exact_path keeps it


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _listed(doc: dict) -> dict:
    """The upcoming groups and held items cut to MAX_LISTED items, with what was left out."""
    left = MAX_LISTED
    groups = []
    for group in doc["upcoming"]["groups"]:
        shown = group["items"][:max(left, 0)]
        left -= len(shown)
        groups.append({**group, "items": shown, "more": len(group["items"]) - len(shown)})
    held = doc["holds"]["keeping"][:MAX_LISTED]
    return {"groups": groups, "held": held,
            "held_more": len(doc["holds"]["keeping"]) - len(held)}


def width(text: str) -> int:
    """Columns a line takes on a terminal: combining marks none, wide characters two."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(lines, limit: int = WIDTH):
    """Wrap every line longer than limit columns at spaces (a word longer than a line is cut),
    continuing two columns further in than the line began. Only a plain space is a break: a
    name's other white space, and a run of spaces inside it, are kept as they are."""
    for line in lines:
        if len(line) * 2 <= limit or width(line) <= limit:  # no character takes 3 columns
            yield line
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
        current = line[:len(indent) - 2]
        for word in line[len(indent) - 2:].split(" "):
            candidate = f"{current} {word}" if current.strip() else current + word
            if width(candidate) <= limit:
                current = candidate
                continue
            if current.strip():
                yield current
            current = indent + word
            while width(current) > limit:
                cut = _cut(current, limit)
                yield current[:cut]
                current = indent + current[cut:]
        if current.strip():
            yield current


def _cut(text: str, limit: int) -> int:
    """The longest prefix of text within limit columns (never splitting a mark from its
    letter)."""
    used = 0
    for i, c in enumerate(text):
        used += width(c)
        if used > limit:
            while i > 0 and unicodedata.combining(text[i]):
                i -= 1
            return i
    return len(text)
