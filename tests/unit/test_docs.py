"""The documentation stays true to the repository: every relative link in README.md and
docs/*.md names a file (and heading) that exists inside the repository, no page points outside
it, and every test function docs/safety.md names exists in the test file it is listed under,
so renaming a test or a page cannot leave the docs pointing at nothing."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
SAFETY = ROOT / "docs" / "safety.md"

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
# a relative path that climbs out of the page's folder, in a link, a code span or plain text
PARENT_PATH = re.compile(r"(?<![\w./-])\.\./[^\s)`'\"<>\]]*")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
TEST_NAME = re.compile(r"\btest_\w+\b(?!\.py)")
TEST_FILE = re.compile(r"\btests/[\w/]+\.py\b")
TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)", re.M)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """Given a heading's text, return its anchor as GitHub makes it."""
    text = unicodedata.normalize("NFC", heading.replace("`", "")).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Given Markdown text, return the anchors of its headings."""
    return {slug(h) for h in HEADING.findall(FENCE.sub("", text))}


def inside(path: Path) -> bool:
    return path == ROOT or ROOT in path.parents


def link_problems(page: Path, text: str) -> list[str]:
    """Given a page (its place decides what its links resolve against) and its Markdown text,
    return what is wrong with its relative links: a file or heading that does not exist, a link
    or a `../` path that leaves the repository, an absolute path."""
    problems = []
    for target in PARENT_PATH.findall(text):
        if not inside((page.parent / target).resolve()):
            problems.append(f"{target}: points outside the repository")
    prose = FENCE.sub("", text)
    for target in INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose):
        if SCHEME.match(target):
            continue
        path_part, _, anchor = unquote(target).partition("#")
        if path_part.startswith("/"):
            problems.append(f"{target}: an absolute path, not a link into the repository")
            continue
        if not path_part:
            if anchor not in anchors(text):
                problems.append(f"{target}: no such heading on this page")
            continue
        resolved = (page.parent / path_part).resolve()
        if not inside(resolved):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(
                resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


def defined_tests() -> dict[str, set[str]]:
    """Every test function defined in tests/, by file path relative to the repository."""
    return {
        path.relative_to(ROOT).as_posix(): set(TEST_DEF.findall(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "tests").rglob("*.py"))
    }


def blocks(text: str) -> list[str]:
    """Split Markdown into blocks: a list item with its indented continuation lines, or a
    paragraph."""
    found: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            found.append([])
        elif line.startswith(" ") and found and found[-1]:
            found[-1].append(line)
        elif line.lstrip().startswith("- ") or not found or not found[-1]:
            found.append([line])
        else:
            found[-1].append(line)
    return ["\n".join(block) for block in found if block]


def unknown_tests(text: str, defined: dict[str, set[str]]) -> list[str]:
    """Given a page naming tests and the tests defined per file, return every named test that
    does not exist: in the one test file its block names, or anywhere in tests/ if the block
    names none or several."""
    everywhere = set().union(*defined.values())
    problems = []
    for block in blocks(text):
        files = set(TEST_FILE.findall(block))
        only = files.pop() if len(files) == 1 else None
        for name in TEST_NAME.findall(block):
            if only is not None and name not in defined.get(only, set()):
                problems.append(f"{name}: not defined in {only}")
            elif only is None and name not in everywhere:
                problems.append(f"{name}: not defined in tests/")
    return problems


def test_every_relative_link_in_the_docs_names_a_file_of_the_repository():
    problems = [f"{page.relative_to(ROOT)}: {problem}" for page in pages()
                for problem in link_problems(page, page.read_text(encoding="utf-8"))]
    assert problems == []


def test_the_readme_links_every_page_of_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {(ROOT / unquote(t).partition("#")[0]).resolve()
              for t in INLINE_LINK.findall(FENCE.sub("", readme))}
    unlinked = [p.name for p in pages()[1:] if p.resolve() not in linked]
    assert len(pages()) > 1 and unlinked == []


def test_every_test_safety_md_names_exists_where_it_is_listed():
    text = SAFETY.read_text(encoding="utf-8")
    assert len(TEST_NAME.findall(text)) > 50  # the page still lists the tests of each promise
    assert unknown_tests(text, defined_tests()) == []


def test_the_link_check_sees_missing_files_headings_and_paths_leaving_the_repository():
    page = ROOT / "docs" / "example.md"
    text = ("# Local\n[a](missing.md) [b](../../outside.md) [c](concepts.md#no-such-heading)\n"
            "[d](/etc/passwd) see `../../shared/SPEC.md`\n[e]: ../nowhere.txt\n"
            "fine: [f](concepts.md) [g](concepts.md#clock-guard) [h](../README.md) "
            "[i](https://example.org/x) [j](#local) [k](#elsewhere)\n")
    problems = link_problems(page, text)
    assert [p.split(":")[0] for p in problems] == [
        "../../outside.md", "../../shared/SPEC.md", "missing.md", "../../outside.md",
        "concepts.md#no-such-heading", "/etc/passwd", "#elsewhere", "../nowhere.txt"]


def test_the_test_name_check_sees_an_unknown_test_and_one_listed_under_the_wrong_file():
    defined = {"tests/unit/test_a.py": {"test_one"}, "tests/unit/test_b.py": {"test_two"}}
    text = ("- [tests/unit/test_a.py](x): `test_one`,\n  `test_two`\n"
            "- tests/unit/test_b.py: `test_two`, `test_one`\n\n"
            "Prose naming `test_one` and `test_gone`\nover two lines.\n")
    assert unknown_tests(text, defined) == [
        "test_two: not defined in tests/unit/test_a.py",
        "test_one: not defined in tests/unit/test_b.py", "test_gone: not defined in tests/"]


def test_headings_become_anchors_as_github_makes_them():
    assert slug("Clock guard") == "clock-guard"
    assert slug("1. Nothing outside the volumes, no symlink") == (
        "1-nothing-outside-the-volumes-no-symlink")
    assert slug("`audit.head` and the index") == "audithead-and-the-index"
