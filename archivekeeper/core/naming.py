"""Folder names -> (customer, date, type); customer normalising. Pure: no I/O, no clock.

A layout pattern (config `shoots.patterns`) is literal text plus the placeholders `{date}`,
`{customer}` and `{type}`; `/` separates folder levels and the pattern is anchored on the whole
path relative to the volume root. Literals match exactly (case-sensitive, after Unicode NFC of
both sides); `{` and `}` are reserved for placeholders. When a split is ambiguous the customer
gets the rest: "{customer}-{type}" reads "Anna-Liisa-wedding" as ("Anna-Liisa", "wedding") and
"{type}-{customer}" reads "pass-Anna-Liisa" as ("pass", "Anna-Liisa").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

_SPACES = re.compile(r"[\s_]+")

EARLIEST_PLAUSIBLE = date(1990, 1, 1)

# ASCII digits only: `\d` would also accept Arabic-Indic and other Unicode digits.
_DATE_FORMS = (
    re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"),
    re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"),
    re.compile(r"(?P<d>[0-9]{2})\.(?P<m>[0-9]{2})\.(?P<y>[0-9]{4})"),
)
_PLACEHOLDER_REGEX = {
    "date": r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}|[0-9]{2}\.[0-9]{2}\.[0-9]{4})",
    # Leading separators are consumed greedily before the first real character, so the
    # start of the name is found without backtracking over every possible prefix.
    "customer": r"(?P<customer>[\s_]*[^\s_/][^/]*)",
    # Lazy, so that next to a customer the customer gets the rest.
    "type": r"(?P<type>[^\s_/]+?)",
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NOT_PLAIN_NAMES = ("", ".", "..")
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_customer(name: str) -> str:
    """Given a customer name as written, return its matching key: NFC, case-folded,
    `_` and runs of white space as one space, trimmed."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return _SPACES.sub(" ", unicodedata.normalize("NFC", folded)).strip()


def mentions(text: str, customer_key: str, others: Sequence[str] = ()) -> bool:
    """Does text (a path, a folder name, a reason) contain the customer's name in any form the
    matching accepts (case, NFD, `_`)? For scrubbing an erased customer from what is stored.
    Whole words only, and not inside the longer name of another customer (others: their keys):
    erasing "Anna" leaves "Hanna" and "2015-03-01 Anna Maria" alone."""
    if not customer_key:
        return False
    name = _whole_word(customer_key)
    folded = normalize_customer(text)
    for other in sorted(others, key=len, reverse=True):
        if other != customer_key and re.search(name, other):
            folded = re.sub(_whole_word(other), "\0", folded)
    return re.search(name, folded) is not None


def _whole_word(key: str) -> str:
    return rf"(?<!\w){re.escape(key)}(?!\w)"


@dataclass(frozen=True, slots=True)
class ShootPattern:
    """A compiled layout pattern: its text and one anchored regex per folder level."""

    text: str
    segments: tuple[re.Pattern[str], ...] = field(repr=False, compare=False)
    depth: int = field(init=False, repr=False, compare=False)  # folder levels; read per folder

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", len(self.segments))

    @property
    def has_date(self) -> bool:
        return any("date" in segment.groupindex for segment in self.segments)


@dataclass(frozen=True, slots=True)
class ShootName:
    """A folder recognised as a shoot. `customer` and `type` are as written (NFC), the
    customer with `_` and runs of white space as one space, trimmed; `date` is None when the pattern has no {date}."""

    customer: str
    customer_key: str
    date: date | None
    type: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Container:
    """A folder above shoots (e.g. a customer folder): descend, nothing to report."""


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """A folder that is neither a shoot nor a container, and why."""

    reason: str


def compile_pattern(text: str) -> ShootPattern:
    """Given a layout pattern such as "{customer}/{date} {type}", return its ShootPattern.
    Raise ValueError naming the problem if the pattern is empty, has an empty, "." or ".."
    folder level, an unknown placeholder or a stray brace, no {customer}, a placeholder used
    twice, or two placeholders with nothing between them that cannot be told apart."""
    if not text:
        raise ValueError("pattern is empty")
    seen: set[str] = set()
    segments = []
    for level in unicodedata.normalize("NFC", text).split("/"):
        if not level:
            raise ValueError(
                f"pattern {text!r} has an empty folder level (a leading, trailing or double '/')"
            )
        if level in (".", ".."):
            raise ValueError(f"pattern {text!r} has a {level!r} folder level")
        segments.append(re.compile(_segment_regex(text, level, seen)))
    if "customer" not in seen:
        raise ValueError(f"pattern {text!r} has no {{customer}}")
    return ShootPattern(text=text, segments=tuple(segments))


def _segment_regex(text: str, level: str, seen: set[str]) -> str:
    """Given one folder level of pattern `text`, return its regex source; add the
    placeholders it uses to `seen`. Raise ValueError as compile_pattern does."""
    parts: list[str] = []
    previous: str | None = None
    position = 0
    for found in _PLACEHOLDER.finditer(level):
        literal = level[position : found.start()]
        _check_literal(text, literal)
        name = found.group(1)
        if name not in _PLACEHOLDER_REGEX:
            raise ValueError(
                f"pattern {text!r} has an unknown placeholder {{{name}}} "
                "(use {date}, {customer} or {type})"
            )
        if name in seen:
            raise ValueError(f"pattern {text!r} uses {{{name}}} twice")
        # Only {date} has a fixed shape, so only next to it can the boundary be found.
        if not literal and previous is not None and "date" not in (previous, name):
            raise ValueError(
                f"pattern {text!r} has {{{previous}}}{{{name}}} with nothing between them "
                "(put a separator such as ' ' or '_' between them)"
            )
        seen.add(name)
        parts.append(re.escape(literal))
        parts.append(_PLACEHOLDER_REGEX[name])
        previous = name
        position = found.end()
    literal = level[position:]
    _check_literal(text, literal)
    parts.append(re.escape(literal))
    return "".join(parts)


def _check_literal(text: str, literal: str) -> None:
    """Raise ValueError if `literal` of pattern `text` holds a brace outside a placeholder."""
    for brace in "{}":
        if brace in literal:
            raise ValueError(
                f"pattern {text!r} has an unmatched {brace!r} "
                "(braces are only for {date}, {customer} and {type})"
            )


def parse_folder_date(text: str) -> date:
    """Given a folder date as YYYY-MM-DD, YYYYMMDD or DD.MM.YYYY, return it as a date.
    Raise ValueError if it is in none of these forms or is not a real date."""
    for form in _DATE_FORMS:
        found = form.fullmatch(text)
        if found is not None:
            try:
                return date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                raise ValueError(f"{text!r} is not a real date") from None
    raise ValueError(f"{text!r} is not a date in YYYY-MM-DD, YYYYMMDD or DD.MM.YYYY form")


def classify(
    patterns: Sequence[ShootPattern], parts: tuple[str, ...], today: date
) -> ShootName | Container | Unrecognised:
    """Given the patterns in config order, a folder's path components relative to the volume
    root (decoded text) and today's local date, return a ShootName if the first pattern that
    matches the whole path does so with a plausible date, a Container if the path is a proper
    prefix of a longer pattern (or the volume root), else Unrecognised with the reason."""
    if not parts:
        return Container()
    # Checked before touching the parts, so each folder of a very deep tree costs O(1).
    if len(parts) > max((pattern.depth for pattern in patterns), default=0):
        return Unrecognised("matches no shoot pattern")
    for part in parts:
        if _SURROGATE.search(part):
            return Unrecognised("folder name is not valid UTF-8")
        if part in _NOT_PLAIN_NAMES or "/" in part:
            return Unrecognised(f"not a plain folder name: {part!r}")
    names = tuple(unicodedata.normalize("NFC", part) for part in parts)
    for pattern in patterns:
        if pattern.depth == len(names):
            fields = _match(pattern.segments, names)
            if fields is not None:
                return _shoot_name(pattern, fields, today)
    for pattern in patterns:
        if pattern.depth > len(names):
            fields = _match(pattern.segments, names)
            if fields is not None and (
                "date" not in fields or isinstance(_folder_date(fields["date"], today), date)
            ):
                return Container()
    return Unrecognised("matches no shoot pattern")


def _match(segments: tuple[re.Pattern[str], ...], names: tuple[str, ...]) -> dict[str, str] | None:
    """Given segment regexes and as many or fewer folder names, return the placeholder values
    if every name matches its segment, else None."""
    fields: dict[str, str] = {}
    for segment, name in zip(segments, names, strict=False):
        found = segment.fullmatch(name)
        if found is None:
            return None
        fields.update(found.groupdict())
    return fields


def _shoot_name(
    pattern: ShootPattern, fields: dict[str, str], today: date
) -> ShootName | Unrecognised:
    """Given a pattern that matched and its placeholder values, return the ShootName, or
    Unrecognised if the folder date is impossible or implausible."""
    shoot_date = None
    if "date" in fields:
        checked = _folder_date(fields["date"], today)
        if isinstance(checked, str):
            return Unrecognised(checked)
        shoot_date = checked
    # shown as a person writes it: "Virtanen_Matti" (from {date}_{customer}_{type}) is
    # "Virtanen Matti"; matching goes through normalize_customer either way
    customer = _SPACES.sub(" ", fields["customer"]).strip()
    return ShootName(
        customer=customer,
        customer_key=normalize_customer(customer),
        date=shoot_date,
        type=fields.get("type"),
        pattern=pattern.text,
    )


def _folder_date(text: str, today: date) -> date | str:
    """Given a folder date as written and today, return it as a date if it is a real date
    from 1990-01-01 to tomorrow, else the reason it is unusable."""
    try:
        value = parse_folder_date(text)
    except ValueError:
        return f"folder date {text} is not a real date"
    if value < EARLIEST_PLAUSIBLE:
        return f"folder date {text} is before {EARLIEST_PLAUSIBLE.isoformat()}"
    # Tomorrow is allowed: a camera or a colleague a time zone ahead is not an error.
    if value > today + timedelta(days=1):
        return f"folder date {text} is in the future"
    return value
