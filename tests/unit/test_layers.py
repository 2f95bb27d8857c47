"""The layers hold: the import contracts (pyproject's [tool.importlinter]) pass and catch a
violation, every call in the package that renames, unlinks or removes a file is on an
allow-list that says why it is there, so a later change cannot slip one in unseen, and SQL is
written only in the store."""

from __future__ import annotations

import ast
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "archivekeeper"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

OS_CALLS = {"rename", "replace", "unlink", "remove", "rmdir", "removedirs", "renames",
            "truncate"}
SHUTIL_CALLS = {"rmtree", "move"}
METHODS = {"unlink", "rmdir", "rename"}  # pathlib; Path.replace takes one argument

# (module, enclosing function, call) -> why it may change files there
ALLOWED = {
    ("act/fsops.py", "_rename_noreplace", "os.rename"):
        "the file module: moves a user file to trash or back (fd-relative, re-verified)",
    ("act/fsops.py", "_rename_noreplace", "os.unlink"):
        "the file module: second half of link-then-unlink where renameat2 is missing",
    ("act/fsops.py", "VolumeRoot._finish_half_done", "os.unlink"):
        "the file module: finishes a link-then-unlink a crash cut short",
    ("act/fsops.py", "VolumeRoot._unlink", "os.unlink"):
        "the file module: purge and erasure, after re-verifying the file",
    ("act/fsops.py", "VolumeRoot._prune", "os.rmdir"):
        "the file module: removes folders a move, purge or erasure emptied, up to a given stop",
    ("act/executor.py", "Executor.erase_files", ".unlink()"):
        "calls the file module's VolumeRoot.unlink: an erasure (art. 17), re-verified there",
    ("act/fsops.py", "write_marker", "os.rename"):
        "the file module: the volume marker, renamed into place inside .archivekeeper/",
    ("act/fsops.py", "write_marker", "os.unlink"):
        "the file module: a stale marker temp file (or a symlink planted there) in .archivekeeper/",
    ("act/audit.py", "AuditLog._write_head", "os.replace"):
        "state dir: audit.head replaced atomically",
    ("act/audit.py", "AuditLog._load_key", ".unlink()"):
        "state dir: a half-written audit.key temp file",
    ("report/files.py", "write_reports", "os.replace"):
        "report dir: a stored report renamed into place (dir fd, never through a symlink)",
    ("report/files.py", "write_reports", "os.unlink"):
        "report dir: the temp file of a report that failed to write",
    ("report/files.py", "remove_report", "os.unlink"):
        "report dir: a stored report naming an erased customer that cannot be rewritten",
    ("report/files.py", "prune_reports", "os.unlink"):
        "report dir: a stored report older than report.keep (named like one, dir fd)",
}


def changing_calls(source: str, module: str) -> set[tuple[str, str, str]]:
    """Given a module's source, return (module, enclosing function, call) for every reference
    to a call that renames, unlinks or removes (passing os.unlink as a value counts too)."""
    found: set[tuple[str, str, str]] = set()
    scope: list[str] = []

    class Finder(ast.NodeVisitor):
        def visit_FunctionDef(self, node):
            scope.append(node.name)
            self.generic_visit(node)
            scope.pop()

        visit_AsyncFunctionDef = visit_FunctionDef
        visit_ClassDef = visit_FunctionDef

        def visit_Attribute(self, node):
            if isinstance(node.value, ast.Name) and (
                    (node.value.id == "os" and node.attr in OS_CALLS)
                    or (node.value.id == "shutil" and node.attr in SHUTIL_CALLS)):
                found.add((module, ".".join(scope), f"{node.value.id}.{node.attr}"))
            self.generic_visit(node)

        def visit_Call(self, node):
            func = node.func
            if isinstance(func, ast.Attribute) and not (
                    isinstance(func.value, ast.Name) and func.value.id in ("os", "shutil")):
                if func.attr in METHODS or (func.attr == "replace" and len(node.args) == 1):
                    found.add((module, ".".join(scope), f".{func.attr}()"))
            self.generic_visit(node)

        def visit_ImportFrom(self, node):
            names = {a.name for a in node.names}
            if (node.module == "os" and names & OS_CALLS) or (
                    node.module == "shutil" and names & SHUTIL_CALLS):
                found.add((module, ".".join(scope), f"from {node.module} import"))

    Finder().visit(ast.parse(source))
    return found


def test_every_call_that_renames_or_removes_is_on_the_allow_list():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        found |= changing_calls(path.read_text(encoding="utf-8"),
                                path.relative_to(PACKAGE).as_posix())
    assert sorted(found - set(ALLOWED)) == [], "a new rename/unlink: allow it here, say why"
    assert sorted(set(ALLOWED) - found) == [], "gone from the code: drop it from ALLOWED"


def test_the_finder_sees_every_form_of_such_a_call():
    source = '''
import os, shutil
from os import remove
from pathlib import Path
def a(p): os.unlink(p)
def b(p): shutil.rmtree(p)
def c(p): Path(p).unlink()
def d(p, q): Path(p).replace(q)
def e(p): run(os.rename, p)
def f(s): return s.replace("a", "b")
'''
    assert changing_calls(source, "m.py") == {
        ("m.py", "", "from os import"), ("m.py", "a", "os.unlink"),
        ("m.py", "b", "shutil.rmtree"), ("m.py", "c", ".unlink()"),
        ("m.py", "d", ".replace()"), ("m.py", "e", "os.rename")}


# Only the store speaks SQL. Elsewhere, `sqlite3` may name its exception classes (to catch
# them, as cli.main catches OperationalError) and Row (the type of the rows store methods
# return, to annotate them): neither reaches the database without a connection, and connect,
# cursors and every other name of the module are refused.
SQL_MODULE = "index/store.py"
SQL_CALLS = {"execute", "executemany", "executescript"}
SQLITE_NAMES = {"Row"} | {n for n, v in vars(sqlite3).items()
                          if isinstance(v, type) and issubclass(v, Exception)}


def sql_uses(source: str, module: str) -> set[tuple[str, str, str]]:
    """Given a module's source, return (module, enclosing function, use) for every call of
    .execute/.executemany/.executescript on anything, and every use of the sqlite3 module
    beyond SQLITE_NAMES (under any name it is imported as)."""
    found: set[tuple[str, str, str]] = set()
    scope: list[str] = []
    aliases: set[str] = set()

    class Finder(ast.NodeVisitor):
        def visit_FunctionDef(self, node):
            scope.append(node.name)
            self.generic_visit(node)
            scope.pop()

        visit_AsyncFunctionDef = visit_FunctionDef
        visit_ClassDef = visit_FunctionDef

        def visit_Import(self, node):
            aliases.update(a.asname or a.name for a in node.names if a.name == "sqlite3")

        def visit_ImportFrom(self, node):
            if node.module == "sqlite3":
                for a in node.names:
                    if a.name not in SQLITE_NAMES:
                        found.add((module, ".".join(scope), f"from sqlite3 import {a.name}"))

        def visit_Call(self, node):
            if isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                found.add((module, ".".join(scope), f".{node.func.attr}()"))
            self.generic_visit(node)

        def visit_Attribute(self, node):
            if isinstance(node.value, ast.Name) and node.value.id in aliases:
                if node.attr not in SQLITE_NAMES:
                    found.add((module, ".".join(scope), f"sqlite3.{node.attr}"))
                return
            self.generic_visit(node)

        def visit_Name(self, node):
            if node.id in aliases:  # the module itself passed on or called through
                found.add((module, ".".join(scope), "sqlite3"))

    Finder().visit(ast.parse(source))
    return found


def test_sql_is_written_only_in_the_store():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module != SQL_MODULE:
            found |= sql_uses(path.read_text(encoding="utf-8"), module)
    assert sorted(found) == [], "SQL outside the store: give the store a method that says why"


def test_the_sql_finder_sees_every_form_of_such_a_use():
    source = '''
import sqlite3
import sqlite3 as lite
from sqlite3 import OperationalError, connect
def a(store): store.db.execute("SELECT 1")
def b(db): db.executemany("INSERT", [])
def c(conn): conn.executescript("")
def d(path): return lite.connect(path)
def e(row: sqlite3.Row) -> None:
    try:
        pass
    except (sqlite3.OperationalError, sqlite3.IntegrityError, OperationalError):
        pass
def f(): return run(sqlite3)
'''
    assert sql_uses(source, "m.py") == {
        ("m.py", "", "from sqlite3 import connect"), ("m.py", "a", ".execute()"),
        ("m.py", "b", ".executemany()"), ("m.py", "c", ".executescript()"),
        ("m.py", "d", "sqlite3.connect"), ("m.py", "f", "sqlite3")}


def lint_imports(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_import_contracts_catch_a_core_module_reaching_into_the_shell(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(PACKAGE, copy / "archivekeeper",
                    ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "archivekeeper" / "core" / "model.py"
    model.write_text(model.read_text() + "\nfrom archivekeeper.index import store  # noqa\n")
    result = lint_imports(copy, env={**os.environ, "PYTHONPATH": str(copy)})
    assert result.returncode != 0
    assert "core is pure" in result.stdout and "BROKEN" in result.stdout
    assert "archivekeeper.core.model -> archivekeeper.index.store" in result.stdout
