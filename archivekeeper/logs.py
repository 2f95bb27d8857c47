"""structlog set-up: CLI commands log to stderr (readable on a terminal, JSON lines otherwise);
the daemon logs JSON lines to stdout for journald."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(stream=None, json: bool | None = None, level: int = logging.INFO) -> None:
    """Given an output stream (default stderr), route structlog there."""
    stream = stream or sys.stderr
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
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger():
    return structlog.get_logger()


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
