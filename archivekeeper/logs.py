"""structlog set-up: CLI commands log to stderr (readable on a terminal, JSON lines otherwise);
the daemon logs JSON lines to stdout for journald.

structlog (and the rich it pulls in) is imported on the first log line, not at start-up: a quick
scan that has nothing to say should not pay for it.
"""

from __future__ import annotations

import logging
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
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_settings["level"]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _pending = False


class _LazyLogger:
    """Looks like a structlog logger; sets structlog up on first use."""

    def __getattr__(self, method: str):
        if _pending:
            _setup()
        import structlog

        return getattr(structlog.get_logger(), method)


def get_logger() -> _LazyLogger:
    return _LazyLogger()


def show_path(raw: bytes | str) -> str:
    """Given a path as bytes or text, return printable text: undecodable bytes and control
    characters (newlines!) escaped, so one name is always one line."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="backslashreplace")
    else:
        text = raw.encode("utf-8", errors="surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
