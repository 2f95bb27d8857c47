"""What the fuzz tests share: how many cases a run makes, and the Hypothesis settings.

The default run makes the counts the tests name, from fixed seeds (the same cases on every run,
about two minutes for all the fuzz tests on a loaded two-core machine). Bigger runs:
ARCHIVEKEEPER_FUZZ_SCALE=N multiplies every count, ARCHIVEKEEPER_FUZZ_SEED=S draws other cases,
`pytest -m slow tests/safety` runs the slow variants (ten times the counts, fresh seeds), and
HYPOTHESIS_PROFILE=long gives each Hypothesis test 5,000 examples."""

from __future__ import annotations

import os
import random

from hypothesis import settings

SCALE = max(1, int(os.environ.get("ARCHIVEKEEPER_FUZZ_SCALE", "1")))
SEED = int(os.environ.get("ARCHIVEKEEPER_FUZZ_SEED", "20261201"))
SLOW_SCALE = 10
UNTRUSTED = (b"Traceback", b"internal error")
FIGURES: list[str] = []  # what each run made and measured; shown at the end (conftest.py)


def note(line: str) -> None:
    """Keep a figure of this run for the summary at the end of the test session."""
    FIGURES.append(line)


def count(base: int, slow: bool = False) -> int:
    """The number of cases for a test that makes `base` by default."""
    return base * SCALE * (SLOW_SCALE if slow else 1)


def seed(slow: bool = False) -> int:
    """The seed of a deterministic generator: ARCHIVEKEEPER_FUZZ_SEED, else a fixed one, or in
    a slow run a fresh one (each run notes its seed, so a failure can be replayed)."""
    if "ARCHIVEKEEPER_FUZZ_SEED" in os.environ or not slow:
        return SEED
    return random.SystemRandom().randrange(2**32)


def hypothesis_settings(examples: int) -> settings:
    """The active profile (HYPOTHESIS_PROFILE, default `ci`): under `ci` with `examples`
    examples (times the scale), under `long` with its own 5,000."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    profile = settings.get_profile(name)
    if name.startswith("ci"):
        return settings(profile, max_examples=examples * SCALE)
    return profile


def no_traceback(stderr: str | bytes) -> bool:
    """Did a command's stderr stay free of a Python traceback and of main()'s "internal error"
    line (what an unexpected exception becomes)?"""
    raw = stderr.encode("utf-8", "surrogateescape") if isinstance(stderr, str) else stderr
    return not any(word in raw for word in UNTRUSTED)


# --- hostile folder names -------------------------------------------------------------------

NAME_MAX = 255  # bytes in one name on ext4, XFS, btrfs, tmpfs
NFD_NAME = "Ma\u0308kinen Anna"
SEPARATORS = [" ", " ", "_", "-", "  ", "\t", "\n", "\r", "\x1b", "\x07", "\x1c", "\x85",
              "\u00a0", "\u3000", "\u200f", "\u202e", "\u2066", "\u2028", "\ufeff", ""]
WORDS = ["Virtanen", "Matti", "Mäkinen", NFD_NAME, "Ylönen Åsa", "李小龍", "👨‍👩‍👧", "\u0301",
         "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "{{ 7*7 }}",
         "{customer}", "{date}", "{", "}", "*", "**", "..", ".", "...", "?", "[a-z]", "\\",
         "\\x41", "%s", "$(reboot)", "'", '"', "wedding", "passport", "passikuva", "Anna-Liisa",
         "ǅ", "ß", "İ", "ﬁ", "ｗｅｄｄｉｎｇ", "٣", "x" * 40, "\x1b[2J", "\x1b]0;pwned\x07"]
TYPES = ["wedding", "passport", "passikuva", "häät", "a\u0308a\u0308t", "x", "*", "{type}", "..",
         "\u202e", "ｗ"]
BAD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80",
             b"\xf4\x90\x80\x80", b"\xe2\x82"]


def date_texts(today) -> list[str]:
    """Folder dates: the three forms, impossible, implausible, near the end of plausible
    (tomorrow is allowed, the day after is not), and digits that are not ASCII."""
    from datetime import timedelta

    edge = [today, today + timedelta(days=1), today + timedelta(days=2)]
    return ["2019-05-12", "20190512", "12.05.2019", "1990-01-01", "1989-12-31", "2019-02-29",
            "2020-02-29", "2019-13-01", "0000-00-00", "2019-5-12", "99999999", "2999-01-01",
            "٢٠١٩-٠٥-١٢", "２０１９-05-12", "2019-05-12\n", *(d.isoformat() for d in edge),
            edge[1].strftime("%d.%m.%Y"), edge[2].strftime("%Y%m%d")]


def hostile_name(rng: random.Random, today) -> bytes:
    """One folder name as bytes (1 to 255 of them, no '/' nor NUL): mostly shaped like a shoot
    folder ("{date} {customer}", "{date}_{customer}_{type}", "{date} {type}", "Arkisto"),
    with hostile words, separators and invalid UTF-8 bytes in it, NFD now and then, and now and
    then padded to the 255-byte limit (cut mid-character, too)."""
    import unicodedata

    def word() -> str:
        return rng.choice(WORDS)

    def customer() -> str:
        return "".join(word() + rng.choice(SEPARATORS) for _ in range(rng.randint(1, 3))).strip(
            " ") if rng.random() < 0.9 else rng.choice(SEPARATORS)

    day = rng.choice(date_texts(today))
    shape = rng.randrange(7)
    if shape == 0:
        text = f"{day} {customer()}"
    elif shape == 1:
        text = f"{day}_{customer()}_{rng.choice(TYPES)}"
    elif shape == 2:
        text = f"{day} {rng.choice(TYPES)}"
    elif shape == 3:
        text = rng.choice(["Arkisto", "arkisto", "Arkisto ", "Ar\u200bkisto"])
    elif shape == 4:
        text = customer()
    elif shape == 5:
        text = "".join(rng.choice(SEPARATORS + WORDS) for _ in range(rng.randint(1, 8)))
    else:
        text = day + rng.choice(SEPARATORS) + customer() + rng.choice(SEPARATORS) + word()
    if rng.random() < 0.2:
        text = unicodedata.normalize("NFD", text)
    raw = text.encode("utf-8")
    if rng.random() < 0.15:
        at = rng.randint(0, len(raw))
        raw = raw[:at] + rng.choice(BAD_BYTES) + raw[at:]
    if rng.random() < 0.1:
        raw += ("ä" if rng.random() < 0.5 else "x").encode() * NAME_MAX
    raw = raw.replace(b"/", b"\\").replace(b"\0", b"")[:NAME_MAX]
    return raw if raw not in (b"", b".", b"..") else b"..." + raw


def json_path_bytes(text: str) -> bytes:
    """Given a path as JSON carries it (SPEC: \\xNN for an undecodable byte, \\\\ for a
    backslash, every other character itself), return its bytes."""
    out = bytearray()
    at = 0
    while at < len(text):
        if text.startswith("\\\\", at):
            out += b"\\"
            at += 2
        elif text.startswith("\\x", at):
            out.append(int(text[at + 2:at + 4], 16))
            at += 4
        else:
            out += text[at].encode("utf-8")
            at += 1
    return bytes(out)
