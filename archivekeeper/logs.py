"""structlog set-up: CLI commands log to stderr (readable on a terminal, JSON lines otherwise);
the daemon logs JSON lines to stdout for journald.

structlog (and the rich it pulls in) is imported on the first log line, not at start-up: a quick
scan that has nothing to say should not pay for it.
"""

from __future__ import annotations

import logging
import re
import sys

_settings: dict = {"stream": None, "json": None, "level": logging.INFO}
_pending = False  # configure() was called; structlog is set up on the first log line


def configure(stream=None, json: bool | None = None, level: int = logging.INFO) -> None:
    """Given an output stream (default stderr), route log lines there from the next one on."""
    global _pending
    _settings.update(stream=stream, json=json, level=level)
    _pending = True


def forget() -> None:
    """End of a command: a set-up not yet done is dropped (in-process test runners)."""
    global _pending
    _pending = False


def _setup() -> None:
    global _pending
    import structlog

    stream = _settings["stream"] or sys.stderr
    json = _settings["json"]
    if json is None:
        json = not stream.isatty()
    processors = [structlog.processors.add_log_level]
    if json:
        processors += [structlog.processors.TimeStamper(fmt="iso", utc=False),
                       structlog.processors.JSONRenderer(ensure_ascii=False)]
    else:
        processors.append(_human_line)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_settings["level"]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _pending = False


def _human_line(_logger, _method, event: dict) -> str:
    """A log line for a person at a terminal: "archivekeeper: warning: volume_offline:
    volume=backup-2; reason=...", every value escaped (it may hold a folder name)."""
    level, name = event.pop("level", "info"), event.pop("event", "")
    details = "; ".join(f"{k}={show_path(str(v))}" for k, v in event.items())
    return f"archivekeeper: {level}: {name}" + (f": {details}" if details else "")


class _LazyLogger:
    """Looks like a structlog logger; sets structlog up on first use."""

    def __getattr__(self, method: str):
        if _pending:
            _setup()
        import structlog

        return getattr(structlog.get_logger(), method)


def get_logger() -> _LazyLogger:
    return _LazyLogger()


# Shown escaped: the backslash that starts every escape, C0 and C1 control characters, line and
# paragraph separators, bidi controls (they reorder what follows them on a terminal), and the
# lone surrogates that stand for undecodable bytes.
_ESCAPED = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\udc80-\udcff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def show_path(raw: bytes | str) -> str:
    """Given a path as bytes or text, return it as one line of text that cannot drive a terminal
    and still names exactly one path: undecodable bytes as \\xNN, a backslash as \\\\, control
    characters and bidi controls as \\n, \\x1b, \\u202e, ... (SPEC: names and paths in output)."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that stands for no byte: keep its bytes
            raw = raw.encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:  # the common case, checked fast
        return text
    return _ESCAPED.sub(_escape, text)


def exact_path(raw: bytes | str) -> str:
    """Given a path as bytes, return the text the program matches, keys and tokens it by: its
    exact characters, an undecodable byte as the lone surrogate that stands for it (one text
    per path and back). Escaped only where it is shown: show_path, json_path."""
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw


_JSON_ESCAPED = re.compile(r"[\\\udc80-\udcff]")


def json_path(exact: str) -> str:
    """Given a path's exact text, return it as JSON carries it (SPEC: names and paths in
    output): its characters, control and bidi characters included (the JSON encoder escapes
    what JSON needs); only an undecodable byte is \\xNN and a backslash \\\\, so the text
    round-trips to the path's bytes."""
    return _JSON_ESCAPED.sub(
        lambda m: "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()) - 0xDC00:02x}", exact)


_JSON_ESCAPES = re.compile(r"\\\\|\\x([0-9a-f]{2})")


def from_json_path(text: str) -> str:
    """json_path undone: a path as JSON carries it, back to its exact text."""
    return _JSON_ESCAPES.sub(
        lambda m: "\\" if m.group(1) is None else chr(0xDC00 + int(m.group(1), 16)), text)


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, 0x80 to 0xff
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:  # never confused with an undecodable byte, which is 0x80 or more
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"
