"""I/O fault injection for tests, at the three places archivekeeper writes: fsops' file
operations (ARCHIVEKEEPER_FAULT), the audit log's record writes (ARCHIVEKEEPER_AUDIT_FAULT) and
the index's commits (ARCHIVEKEEPER_STORE_FAULT).

A value is an errno name and a call number: ``EIO@5`` fails the 5th call only (a passing
error), ``ENOSPC@5+`` the 5th and every later one (a disk that stays full). Each module reads
its variable once, at import; unset, a call costs one comparison with None.
"""

from __future__ import annotations

import errno
import os
import re

_VALUE = re.compile(r"(E[A-Z0-9]+)@([1-9][0-9]*)(\+?)")


class Fault:
    """The calls of one kind that fail, and with which errno."""

    def __init__(self, code: int, at: int, onward: bool) -> None:
        self.code = code
        self.at = at
        self.onward = onward
        self.calls = 0

    def hit(self) -> int | None:
        """Count a call; return the errno it fails with, or None if it goes ahead."""
        self.calls += 1
        if self.calls == self.at or (self.onward and self.calls > self.at):
            return self.code
        return None

    def check(self) -> None:
        """Count a call; raise the OSError it fails with, if it does."""
        code = self.hit()
        if code is not None:
            raise OSError(code, os.strerror(code))


def from_env(name: str) -> Fault | None:
    """Given a variable's name, return the fault it asks for, None if it is unset. Raise
    ValueError for a value that is not like ENOSPC@3 or ENOSPC@3+ (a typo must not quietly
    test nothing)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    match = _VALUE.fullmatch(value)
    code = getattr(errno, match.group(1), None) if match else None
    if not isinstance(code, int):
        raise ValueError(f"{name}={value!r}: give an errno name and a call number, like "
                         "EIO@5 (the 5th call) or ENOSPC@5+ (the 5th and every later one)")
    return Fault(code, int(match.group(2)), match.group(3) == "+")
