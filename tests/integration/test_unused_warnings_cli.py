"""`check-config` and `plan` warn about a rule or config hold that matches no indexed shoot (a
typo protects nothing), and stay quiet about those that match."""

from __future__ import annotations

import pytest
from conftest import OLD

CONFIG = """\
rules:
  - {name: passport-photos, match: {type: passport}, delete_after: 6 months}
  - {name: raw-files, match: {files: "*.cr2"}, delete_after: 1 year}
  - {name: %(typo_rule)s, match: {type: pasport}, delete_after: 6 months}
  - {name: nef-files, match: {files: "*.nef"}, delete_after: 1 year}
holds:
  - {customer: "mäkinen_anna", kind: invoice, reason: "open invoice 7"}
  - {shoot: "studio:Virtanen Matti/01.02.2016 passport", kind: other, reason: "asked to wait"}
  - {path: "backup-1:2015-03-01 Mäkinen Anna/RAW", kind: legal-claim, reason: "dispute"}
  - {customer: "Mäkinen Ana", kind: collection, reason: "typo in the name"}
  - {path: "studio:2015-03-01 Mäkinen Anna/EXPORT", kind: other, reason: "no such folder"}
  - {shoot: "backup-1:Virtanen Matti/01.02.2016 passport", kind: other, reason: "no copy there"}
"""
TYPO_RULE = "passport-typo"
UNUSED = [
    f"rule '{TYPO_RULE}' matches no indexed shoot (a typo protects nothing)",
    "rule 'nef-files' matches no indexed shoot (a typo protects nothing)",
    "hold cfg-4 (collection: typo in the name) matches no indexed shoot (a typo protects nothing)",
    "hold cfg-5 (other: no such folder) matches no indexed shoot (a typo protects nothing)",
    "hold cfg-6 (other: no copy there) matches no indexed shoot (a typo protects nothing)",
]


@pytest.fixture
def archive(studio):
    studio.write_config(CONFIG % {"typo_rule": TYPO_RULE})
    studio.shoot("studio", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.shoot("studio", "Virtanen Matti/01.02.2016 passport", mtime=OLD)
    studio.shoot("backup-1", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.ok("scan")
    return studio


def test_check_config_warns_about_each_rule_and_hold_that_matches_nothing_only(archive):
    result = archive.ok("check-config")
    assert "configuration is valid (2 volumes, 4 rules, 6 holds)" in result.stdout
    assert result.stderr.splitlines() == [f"warning: {w}" for w in UNUSED]


def test_plan_lists_the_same_warnings(archive):
    assert archive.json("plan")["warnings"] == UNUSED


def test_the_warnings_follow_the_index(archive):
    # a NEF appears in a shoot: the rule for NEFs now covers a file and is no longer warned about
    archive.shoot("studio", "2015-03-01 Mäkinen Anna", {"RAW/IMG_9.NEF": b"n"}, mtime=OLD)
    archive.ok("scan", "--full")
    assert archive.json("plan")["warnings"] == [w for w in UNUSED if "nef-files" not in w]
    assert archive.ok("check-config").stderr.splitlines() == [
        f"warning: {w}" for w in UNUSED if "nef-files" not in w]


def test_a_config_that_matches_everything_gives_no_warning(studio):
    studio.write_config("""\
rules:
  - {name: everything, delete_after: 5 years}
holds:
  - {customer: "Mäkinen Anna", kind: invoice, reason: "open invoice 7"}
""")
    studio.shoot("studio", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.ok("scan")
    assert studio.ok("check-config").stderr == ""
    assert studio.json("plan")["warnings"] == []
