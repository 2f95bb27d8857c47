"""Promise 9 for the config: random mutations of the example config (config/archivekeeper.yaml)
through `archivekeeper check-config` always end in exit 0 or 78 (2 for a usage error), with every
error as FILE:LINE: ..., never a traceback, an "internal error", a hang or a blown memory.

Mutations: lines deleted, duplicated, swapped, moved, re-indented, tabs inserted; values swapped
for other types, huge numbers, odd periods and cron fields, YAML tags (a python/object tag must
not run), anchors and aliases (an alias bomb, an alias inside itself, merge keys), unicode and
control characters, invalid UTF-8, CRLF, truncation, deep nesting. Most run in-process through
click's CliRunner (an exception would escape it); a handful run as the installed command in a
process whose address space is capped at 1 GiB."""

from __future__ import annotations

import random
import re
import resource
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BIN
from hypothesis import given
from hypothesis import strategies as st

from archivekeeper.cli import cli
from safety import fuzzing

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "archivekeeper.yaml"
EXIT_OK, EXIT_USAGE, EXIT_CONFIG = 0, 2, 78
MEMORY_CAP = 1 << 30

BOMB = "\n".join(["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)])
VALUES = [
    "", "~", "null", "true", "no", "0", "-1", "1e400", "-.inf", ".nan", "0x7fffffffffffffff",
    "99999999999999999999999999999999", "1_000", "2027-02-30", "2027-01-31T25:00:00", "[]",
    "{}", "[1, [2, [3]]]", "{a: 1}", '"\\u202e"', "'\\n'", '"\\0"', "!!binary aGVsbG8=",
    "!!python/object/apply:os.system ['touch PWNED']", "!!python/name:os.system", "!!set {a, b}",
    "!!omap [a: 1]", "!!float 1", "!!int x", "!!str", "&x 1", "*x", "*undefined", "&a [1, *a]",
    '"' + "x" * 10_000 + '"', "0 days", "-5 days", "99999999999999999999 years", "1 fortnight",
    "5 GB", "1e3 TB", "-1 B", "99999999999999999999 TB", "0.0000000001", "1.1", '"*/0 * * * *"',
    '"60 * * * *"', '"@reboot"', '"0 7 * * mon-sun/0"', "\u202e", "\ufeff", "|\n  block",
    ">-\n  folded", "? complex", "- item", "[" * 3000 + "]" * 3000, "{a: " * 3000 + "}" * 3000,
    "/", ".", "..", "relative/path", "\\\\server\\share", "studio:..", "'{date} {customer'",
    "'{customer}/../{date}'", "'{date}{type}'", "localhost:25", "65536", "-25", "2**64",
]
LINES = [
    BOMB, "loop: &a [1, *a]", "<<: {state_dir: /x}", "<<: *undefined", "---", "...",
    "--- !!omap", "%YAML 1.1", "%TAG ! tag:evil.example,2000:", "? [complex, key]\n: value",
    "unknown_key: 1", "volumes: []", "state_dir: /", "- stray", "\t- tabbed", "  \tmixed: 1",
    "x" * 5000, "key: " + "[" * 5000, "\"unterminated", "'unterminated", "a: b: c", ": empty",
    "&anchor", "*alias", "!tag", "@reserved", "`reserved", "# comment \u202e\x1b[2J",
    "rules:\n  - {name: x, delete_after: 1 day, keep_for: 1 day}",
    "holds:\n  - {customer: '', kind: other, reason: x}",
    "shoots:\n  patterns: ['{date}', '{customer}/{customer}', '']",
]
CHARS = ["\t", "\0", "\x1b", "\x07", "\r", "\x85", "\u2028", "\u202e", "\ufeff", "\ufffe",
         "\U0001f600", "e\u0301", ":", "-", "#", "&", "*", "!", "|", ">", "%", "@", "`", "'",
         '"', "{", "}", "[", "]", ",", "?", " "]
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"\xef\xbb\xbf"]
VALUE_LINE = re.compile(r"^(\s*(?:- )?[\w-]+:[ ]+)([^#\n]*?)(\s*#.*)?$")


# --- mutations: each takes the lines (or bytes) and a Random --------------------------------


def delete_line(lines, rng):
    if lines:
        del lines[rng.randrange(len(lines))]


def duplicate_line(lines, rng):
    if lines:
        at = rng.randrange(len(lines))
        lines.insert(rng.randint(0, len(lines)), lines[at])


def swap_lines(lines, rng):
    if len(lines) > 1:
        a, b = rng.sample(range(len(lines)), 2)
        lines[a], lines[b] = lines[b], lines[a]


def move_line(lines, rng):
    if lines:
        lines.insert(rng.randint(0, len(lines) - 1), lines.pop(rng.randrange(len(lines))))


def reindent(lines, rng):
    if lines:
        at = rng.randrange(len(lines))
        shift = rng.choice([-4, -2, -1, 1, 2, 3, 8])
        body = lines[at].lstrip(" ")
        lines[at] = " " * max(0, len(lines[at]) - len(body) + shift) + body


def insert_tab(lines, rng):
    if lines:
        at = rng.randrange(len(lines))
        col = rng.randint(0, len(lines[at]))
        lines[at] = lines[at][:col] + "\t" + lines[at][col:]


def flip_value(lines, rng):
    """A `key: value` line given another value: another type, a tag, an alias, a huge number."""
    candidates = [i for i, line in enumerate(lines) if VALUE_LINE.match(line)]
    if candidates:
        at = rng.choice(candidates)
        found = VALUE_LINE.match(lines[at])
        lines[at] = found.group(1) + rng.choice(VALUES) + (found.group(3) or "")


def insert_line(lines, rng):
    lines.insert(rng.randint(0, len(lines)), rng.choice(LINES))


def insert_char(lines, rng):
    if lines:
        at = rng.randrange(len(lines))
        col = rng.randint(0, len(lines[at]))
        lines[at] = lines[at][:col] + rng.choice(CHARS) + lines[at][col:]


def alias_values(lines, rng):
    """An anchor on one value and an alias to it in place of another (or before it)."""
    candidates = [i for i, line in enumerate(lines) if VALUE_LINE.match(line)]
    if len(candidates) > 1:
        first, second = sorted(rng.sample(candidates, 2))
        if rng.random() < 0.3:
            first, second = second, first  # the alias before its anchor
        a, b = VALUE_LINE.match(lines[first]), VALUE_LINE.match(lines[second])
        lines[first] = a.group(1) + "&v " + a.group(2)
        lines[second] = b.group(1) + "*v"


LINE_MUTATIONS = {f.__name__: f for f in (delete_line, duplicate_line, swap_lines, move_line,
                                          reindent, insert_tab, flip_value, insert_line,
                                          insert_char, alias_values)}


def truncate(raw: bytes, rng) -> bytes:
    return raw[:rng.randrange(len(raw) + 1)]


def bad_bytes(raw: bytes, rng) -> bytes:
    at = rng.randrange(len(raw) + 1)
    return raw[:at] + rng.choice(BAD_BYTES) + raw[at:]


def crlf(raw: bytes, rng) -> bytes:
    return raw.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\x85"]))


def flip_byte(raw: bytes, rng) -> bytes:
    if not raw:
        return raw
    at = rng.randrange(len(raw))
    return raw[:at] + bytes([raw[at] ^ (1 << rng.randrange(8))]) + raw[at + 1:]


BYTE_MUTATIONS = {f.__name__: f for f in (truncate, bad_bytes, crlf, flip_byte)}
ALL = [*LINE_MUTATIONS, *BYTE_MUTATIONS]


def example(tmp_path: Path) -> str:
    """The example config with its folders moved under tmp_path (check-config looks for an index
    in state_dir)."""
    return (EXAMPLE.read_text(encoding="utf-8")
            .replace("/var/lib/archivekeeper", f"{tmp_path}/state")
            .replace("/srv/photos", f"{tmp_path}/photos")
            .replace("/media/studio/VARMUUSKOPIO1", f"{tmp_path}/usb"))


def mutated(text: str, names: list[str], rng: random.Random) -> bytes:
    lines = text.split("\n")
    for name in names:
        if name in LINE_MUTATIONS:
            LINE_MUTATIONS[name](lines, rng)
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    for name in names:
        if name in BYTE_MUTATIONS:
            raw = BYTE_MUTATIONS[name](raw, rng)
    return raw


def draw_names(rng: random.Random) -> list[str]:
    return rng.choices(ALL, k=rng.choice((1, 1, 2, 3, 5)))


def check_answer(path: Path, raw: bytes, code: int, stdout: str, stderr: str) -> None:
    """Exit 0 with the valid line, or 78 with every error as FILE:LINE: ... then one line that
    says nothing was done; never a traceback nor an internal error."""
    assert fuzzing.no_traceback(stderr), stderr[-2000:]
    assert code in (EXIT_OK, EXIT_CONFIG), (code, stdout, stderr)
    if code == EXIT_OK:
        assert stdout.startswith(f"{path}: configuration is valid ("), stdout
        return
    *errors, last = stderr.rstrip("\n").split("\n")
    assert last == f"archivekeeper: {path}: invalid configuration; nothing was done", stderr
    assert errors, stderr
    text = raw.decode("utf-8", "replace")
    lines = sum(text.count(brk) for brk in "\n\r\x85\u2028\u2029") + 2  # YAML's line breaks
    for error in errors:
        found = re.match(rf"{re.escape(str(path))}:(\d+): \S", error)
        assert found and 1 <= int(found.group(1)) <= lines, (error, stderr)


def check_in_process(path: Path, raw: bytes) -> tuple[int, float, str]:
    """Run check-config on raw in this process; return its exit code, the seconds taken and
    its stderr."""
    path.write_bytes(raw)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--config", str(path), "check-config"],
                                catch_exceptions=False)
    elapsed = time.monotonic() - started
    check_answer(path, raw, result.exit_code, result.stdout, result.stderr)
    return result.exit_code, elapsed, result.stderr


def run_mutations(tmp_path: Path, how_many: int, seed: int) -> None:
    text, rng = example(tmp_path), random.Random(seed)
    path = tmp_path / "archivekeeper.yaml"
    assert check_in_process(path, text.encode())[0] == EXIT_OK  # the example itself is valid
    codes, kinds, slowest = Counter(), Counter(), 0.0
    for _ in range(how_many):
        names = draw_names(rng)
        code, elapsed, _ = check_in_process(path, mutated(text, names, rng))
        codes[code] += 1
        kinds.update(names)
        slowest = max(slowest, elapsed)
    fuzzing.note(f"config fuzz (seed {seed}): {how_many} mutated configs in-process, exit codes "
                 f"{dict(codes)}, slowest {slowest:.2f} s; mutations {dict(kinds)}")
    assert codes[EXIT_OK] and codes[EXIT_CONFIG]  # both answers were reached


@pytest.mark.timeout(300)
def test_600_mutated_configs_exit_0_or_78_with_every_error_on_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a python/object tag would leave PWNED, if it ran
    run_mutations(tmp_path, fuzzing.count(600), fuzzing.seed())
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_6000_mutated_configs_slow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_mutations(tmp_path, fuzzing.count(600, slow=True), fuzzing.seed(slow=True))
    assert not (tmp_path / "PWNED").exists()


@pytest.fixture(scope="module")
def hypothesis_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config-hypothesis")


@pytest.mark.timeout(300)
@fuzzing.hypothesis_settings(150)
@given(names=st.lists(st.sampled_from(ALL), min_size=1, max_size=5),
       rng=st.randoms(use_true_random=False))
def test_any_mutation_sequence_exits_0_or_78(hypothesis_dir, names, rng):
    path = hypothesis_dir / "archivekeeper.yaml"
    check_in_process(path, mutated(example(hypothesis_dir), names, rng))


# Found by the mutations above: pyyaml's constructors raise ValueError, IndexError, KeyError,
# TypeError or AttributeError, not a YAMLError, on a value they cannot make into what its tag
# (or its look, for a 5,000-digit number, beyond int()'s limit) says it is; check-config said
# "internal error: ValueError: ..." and exited 1 (the daemon's reload met the same exception).
UNCONSTRUCTIBLE = {
    "int tag on a word": "!!int x", "empty int": "!!int ''", "float tag on a word": "!!float x",
    "bool tag on a word": "!!bool maybe", "timestamp tag on a word": "!!timestamp x",
    "map tag on a word": "!!map x", "set tag on a list": "!!set [1]",
    "5000-digit number": "9" * 5000, "5000-digit hex number": "0x" + "f" * 5000,
}


@pytest.mark.parametrize("value", UNCONSTRUCTIBLE.values(), ids=UNCONSTRUCTIBLE.keys())
def test_a_value_yaml_cannot_construct_is_an_error_on_its_line(tmp_path, value):
    text = example(tmp_path)
    line = text[:text.index("port: 25 ")].count("\n") + 1
    path = tmp_path / "archivekeeper.yaml"
    code, _, stderr = check_in_process(path, text.replace("port: 25 ", f"port: {value} ").encode())
    assert code == EXIT_CONFIG
    assert stderr.startswith(f"{path}:{line}: "), stderr


# Found by the long Hypothesis run: a valid config whose state_dir has a 10,000-character name;
# check-config printed "configuration is valid", then looked for the index there and died of
# the OSError (ENAMETOOLONG; EACCES too, for a user who may not enter another's state_dir).
def test_check_config_says_so_when_it_cannot_look_for_the_index(tmp_path):
    text = example(tmp_path).replace(f"{tmp_path}/state", f"{tmp_path}/" + "x" * 300, 1)
    path = tmp_path / "archivekeeper.yaml"
    code, _, stderr = check_in_process(path, text.encode())
    assert code == EXIT_OK
    assert re.search(r"^warning: cannot look for the index in .*: File name too long", stderr,
                     re.M), stderr


# --- as the installed command, memory capped -----------------------------------------------


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def check_as_command(path: Path, raw: bytes) -> int:
    path.write_bytes(raw)
    done = subprocess.run([str(BIN), "--config", str(path), "check-config"], capture_output=True,
                          text=True, errors="surrogateescape", timeout=60, cwd=path.parent,
                          preexec_fn=_cap_memory)
    check_answer(path, raw, done.returncode, done.stdout, done.stderr)
    return done.returncode


@pytest.mark.timeout(300)
def test_a_handful_as_the_installed_command_in_1_gib(tmp_path):
    text = example(tmp_path)
    path = tmp_path / "archivekeeper.yaml"
    fixed = {
        "valid": text.encode(),
        "alias bomb": (text + "\n" + BOMB + "\n").encode(),
        "alias bomb in a value": text.replace("state_dir: ", BOMB + "\nstate_dir: *l9 #", 1)
        .encode(),
        "alias inside itself": (text + "\nloop: &a [1, *a]\n").encode(),
        "python tag": text.replace("keep: 12 weeks", "keep: !!python/object/apply:os.system "
                                   "['touch PWNED']").encode(),
        "deep nesting": text.replace("port: 25", "port: " + "[" * 50_000 + "]" * 50_000)
        .encode(),
        "invalid UTF-8": text.encode().replace(b"Virtanen Matti", b"Virtanen \xff"),
        "tab": text.replace("  - name: studio", "\t- name: studio").encode(),
    }
    codes = {what: check_as_command(path, raw) for what, raw in fixed.items()}
    assert codes == {what: EXIT_CONFIG if what != "valid" else EXIT_OK for what in fixed}, codes
    assert not (tmp_path / "PWNED").exists()
    rng = random.Random(fuzzing.seed())
    for _ in range(fuzzing.count(8)):
        check_as_command(path, mutated(text, draw_names(rng), rng))
