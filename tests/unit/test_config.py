"""The config layer: every broken config gives exact FILE:LINE: path: message lines, all at once;
valid configs give values the rest of the program can use."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archivekeeper.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    load_config,
    resolve_config_path,
)
from archivekeeper.core import model
from archivekeeper.core.durations import Period

BROKEN = Path(__file__).parent / "broken_configs"
EXAMPLE = Path(__file__).parents[2] / "config" / "archivekeeper.yaml"

MINIMAL = """\
state_dir: /var/lib/archivekeeper
volumes:
  - {name: studio, path: /srv/photos}
shoots:
  patterns: ["{date} {customer}"]
"""

KINDS = "accounting, invoice, collection, legal-claim, restriction, other"
PERIOD = "a period like '14 days', '6 months' or '1 year'"
TOP = "a mapping with state_dir, volumes and shoots"
TOO_DEEP = "nested too deeply, or an alias inside itself (a config a few levels deep)"

BROKEN_EXPECTED = {
    "yaml_syntax_error.yaml": [
        "{file}:4: yaml: expected ',' or '}}', but got ':' "
        "(while parsing a flow mapping that starts on line 3)",
    ],
    "tab_indentation.yaml": [
        "{file}:5: yaml: a tab character where YAML needs spaces (indent with spaces, not tabs)",
    ],
    "duplicate_key.yaml": [
        "{file}:10: rules.0.delete_after: duplicate key, also on line 9 (each key once)",
    ],
    "unknown_top_level_key.yaml": [
        "{file}:6: reports: unknown key (did you mean 'report'? one of state_dir, volumes, "
        "shoots, rules, holds, safety, schedule, daemon, report)",
    ],
    "unknown_nested_key.yaml": [
        "{file}:9: rules.0.delete_afer: unknown key (did you mean 'delete_after'? one of name, "
        "match, exclude, keep_for, delete_after, since)",
    ],
    "bad_period.yaml": [
        f"{{file}}:8: rules.0.delete_after: '5 yeers': unit must be days, weeks, months or years "
        f"({PERIOD})",
    ],
    "both_periods.yaml": [
        "{file}:7: rules.0: has both keep_for and delete_after "
        "(exactly one of keep_for or delete_after)",
    ],
    "no_period.yaml": [
        "{file}:7: rules.0: has no period (exactly one of keep_for or delete_after)",
    ],
    "bad_since.yaml": [
        "{file}:9: rules.0.since: is text 'last_use' (shoot_date, last_used or modified)",
    ],
    "bad_hold_kind.yaml": [
        f"{{file}}:8: holds.0.kind: 'lawsuit' is not a hold kind (one of {KINDS})",
    ],
    "bad_date.yaml": [
        "{file}:10: holds.0.until: '2027-02-30' is not a calendar date "
        "(a date like 2027-01-31, the last day held)",
    ],
    "hold_path_outside_volumes.yaml": [
        "{file}:7: holds.0.path: '/home/owner/photos/2024-05-12 Virtanen Matti' is not inside "
        "any configured volume "
        "(VOLUME:relative/path, or an absolute path inside a configured volume)",
    ],
    "bad_cron_field.yaml": [
        "{file}:7: schedule.apply: hour '25': 25 is out of range (0-23)",
    ],
    "cron_day_of_week_8.yaml": [
        "{file}:7: schedule.report: day-of-week '8': 8 is out of range "
        "(0-7 or sun-sat, 0 and 7 both Sunday)",
    ],
    "bad_port_type.yaml": [
        "{file}:10: report.email.port: is text '25x' (a port number from 1 to 65535)",
    ],
    "removable_as_text.yaml": [
        "{file}:3: volumes.0.removable: is text 'yes' "
        "(true or false; true for a drive that is sometimes unplugged)",
    ],
    "safety_out_of_range.yaml": [
        "{file}:7: safety.max_fraction_per_volume: is the number 0, out of range "
        "(a number above 0 and at most 1, e.g. 0.10)",
        "{file}:8: safety.max_files_per_run: is the number -1, out of range "
        "(a whole number, 0 or more)",
        "{file}:9: safety.max_clock_jump: 0 days stops every run a day after the last one "
        "(a period of at least 1 day, e.g. '60 days')",
    ],
    "volume_at_root.yaml": [
        "{file}:4: volumes.1.path: a volume cannot be / itself (a folder below /, e.g. /srv/photos)",
    ],
    "overlapping_volumes.yaml": [
        "{file}:4: volumes.1.path: is inside volumes.0 (/srv/photos) "
        "(volume folders that do not overlap)",
    ],
    "state_dir_inside_volume.yaml": [
        "{file}:1: state_dir: is inside volume 'studio' (/srv/photos) "
        "(a folder outside every volume, e.g. /var/lib/archivekeeper)",
    ],
    "report_dir_inside_volume.yaml": [
        "{file}:7: report.dir: is inside volume 'studio' (/srv/photos) "
        "(a folder outside every volume, e.g. /var/lib/archivekeeper/reports)",
    ],
    "rule_unknown_volume.yaml": [
        "{file}:8: rules.0.match.volume: 'backup-2' is not a configured volume (one of 'studio')",
    ],
    "duplicate_volume_names.yaml": [
        "{file}:4: volumes.1.name: 'studio' is also the name of volumes.0 "
        "(a unique name per volume)",
    ],
    "duplicate_rule_names.yaml": [
        "{file}:8: rules.1.name: 'unused' is also the name of rules.0 (a unique name per rule)",
    ],
    "missing_required_key.yaml": [
        "{file}:1: shoots: is missing (a mapping with a list of patterns)",
    ],
    "empty.yaml": [f"{{file}}:1: (top level): the file holds no settings ({TOP})"],
    "only_comment.yaml": [f"{{file}}:1: (top level): the file holds no settings ({TOP})"],
    "top_level_list.yaml": [f"{{file}}:1: (top level): is a list ({TOP})"],
    "not_utf8.yaml": ["{file}:2: yaml: byte 0xe4 is not UTF-8 (a UTF-8 text file)"],
    "control_character.yaml": [
        "{file}:5: yaml: character U+0007 is not allowed (printable text)",
    ],
}


def write(tmp_path: Path, text: str, name: str = "archivekeeper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


def test_every_broken_config_in_the_corpus_has_expected_errors():
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(BROKEN_EXPECTED)


@pytest.mark.parametrize("name", sorted(BROKEN_EXPECTED))
def test_broken_config_reports_exact_lines(name):
    path = BROKEN / name
    expected = [line.format(file=path) for line in BROKEN_EXPECTED[name]]
    assert errors_of(path) == expected


def test_config_error_str_joins_all_errors_with_newlines():
    path = BROKEN / "safety_out_of_range.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == "\n".join(caught.value.errors)
    assert len(caught.value.errors) == 3


def test_several_mistakes_are_reported_at_once(tmp_path):
    path = write(tmp_path, """\
state_dir: /srv/photos/state
volumes:
  - {name: studio, path: /srv/photos}
  - {name: studio, path: /media/studio/BACKUP1, removable: "yes"}
shoots:
  patterns: ["{date} {customer}", 5]
rules:
  - {name: raws, match: {volume: backup-9}, delete_after: 1 year}
  - {name: old, delete_afer: 5 years}
holds:
  - {customer: Virtanen Matti, kind: lawsuit, reason: open invoice}
safety:
  notice_period: 2 fortnights
  require_approval: true
  require_approval: false
schedule:
  report: "0 7 * * 8"
report:
  email: {to: [], from: archivekeeper@studio.example, port: 70000}
""")
    errors = errors_of(path)
    assert [e.split(": ", 2)[:2] for e in errors] == [
        [f"{path}:1", "state_dir"],
        [f"{path}:4", "volumes.1.name"],
        [f"{path}:4", "volumes.1.removable"],
        [f"{path}:6", "shoots.patterns.1"],
        [f"{path}:8", "rules.0.match.volume"],
        [f"{path}:9", "rules.1.delete_afer"],
        [f"{path}:11", "holds.0.kind"],
        [f"{path}:13", "safety.notice_period"],
        [f"{path}:15", "safety.require_approval"],
        [f"{path}:17", "schedule.report"],
        [f"{path}:19", "report.email.port"],
        [f"{path}:19", "report.email.to"],
    ]


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, MINIMAL + "#" * (1 << 20))
    assert errors_of(path) == [f"{path}:1: yaml: the file is over 1 MiB (a config of a few kB)"]


def test_missing_nested_key_points_at_the_parent_mapping(tmp_path):
    path = write(tmp_path, MINIMAL + "holds:\n  - kind: invoice\n    reason: open invoice\n")
    assert errors_of(path) == [
        f"{path}:7: holds.0: names nothing to hold (exactly one of customer, shoot or path)"
    ]
    path = write(tmp_path, MINIMAL.replace("{name: studio, path: /srv/photos}", "{name: studio}"))
    assert errors_of(path) == [
        f"{path}:3: volumes.0.path: is missing (the volume's root folder, e.g. /srv/photos)"
    ]


def test_unreadable_file_is_reported_without_a_line(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert errors_of(missing) == [f"{missing}: cannot read: No such file or directory"]
    assert errors_of(tmp_path) == [f"{tmp_path}: cannot read: Is a directory"]


def test_alias_bomb_is_refused_without_expanding_it(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:")
    assert "yaml: more than 100000 values after expanding aliases" in error


def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path):
    path = write(tmp_path, "state_dir: " + "[" * 5000 + "]" * 5000 + "\n")
    assert errors_of(path) == [f"{path}:1: yaml: {TOO_DEEP}"]


def test_an_alias_inside_itself_is_an_error_not_a_hang(tmp_path):
    path = write(tmp_path, "state_dir: /x\nloop: &a [1, *a]\n")
    assert errors_of(path) == [f"{path}:2: yaml: {TOO_DEEP}"]


def test_duplicate_keys_are_found_by_value_not_spelling(tmp_path):
    path = write(tmp_path, MINIMAL + "safety:\n  max_files_per_run: 10\n  'max_files_per_run': 0\n")
    assert errors_of(path) == [
        f"{path}:8: safety.max_files_per_run: duplicate key, also on line 7 (each key once)"
    ]


def test_unsafe_yaml_tags_are_refused(tmp_path):
    path = write(tmp_path, "state_dir: !!python/object/apply:os.system [echo hi]\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:1: yaml: could not determine a constructor")


def test_example_config_loads_with_its_documented_values():
    config = load_config(EXAMPLE)
    assert config.source == EXAMPLE
    assert config.config_hash == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert [v.name for v in config.volumes] == ["studio", "varmuuskopio-1"]
    assert config.volume("varmuuskopio-1").removable is True
    assert config.volume("nope") is None
    assert config.safety.notice_period == Period(14, "days")
    assert config.safety.max_bytes_per_run == 500 * 10**9
    assert config.daemon.debounce == 30
    assert config.report.email.from_ == "archivekeeper@valokuvaamo-virtanen.example"
    assert config.holds[0].until == date(2027, 1, 31)


def test_minimal_config_gets_the_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.rules == [] and config.holds == []
    assert config.safety.notice_period == Period(14, "days")
    assert config.safety.trash_retention == Period(30, "days")
    assert config.limits() == model.Limits(20000, 500 * 10**9, 0.10)
    assert config.safety.require_approval is False
    assert (config.schedule.scan, config.schedule.full_scan) == ("15 * * * *", "0 2 * * *")
    assert (config.schedule.apply, config.schedule.report) == ("30 4 * * *", "0 7 * * mon")
    assert config.daemon.debounce == 30
    assert config.report.keep == Period(12, "weeks")
    assert config.report.email is None
    assert config.report_dir == Path("/var/lib/archivekeeper/reports")


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path):
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc", """\
state_dir: ../state
volumes:
  - {name: studio, path: photos}
shoots:
  patterns: ["{date} {customer}"]
report:
  dir: ./reports
  email: {to: [a@b.example], from: c@d.example, password_file: secret}
""")
    config = load_config(path)
    assert config.state_dir == tmp_path / "state"
    assert config.volumes[0].path == tmp_path / "etc" / "photos"
    assert config.report_dir == tmp_path / "etc" / "reports"
    assert config.report.email.password_file == tmp_path / "etc" / "secret"


def test_volumes_overlapping_through_a_symlink_are_refused(tmp_path):
    (tmp_path / "photos" / "backup").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "photos" / "backup")
    path = write(tmp_path, f"""\
state_dir: {tmp_path}/state
volumes:
  - {{name: studio, path: {tmp_path}/photos}}
  - {{name: backup-1, path: {tmp_path}/link}}
shoots:
  patterns: ["{{date}} {{customer}}"]
""")
    assert errors_of(path) == [
        f"{path}:4: volumes.1.path: is inside volumes.0 ({tmp_path}/photos) "
        "(volume folders that do not overlap)"
    ]


def test_a_volume_containing_an_earlier_one_and_a_same_folder_are_refused(tmp_path):
    path = write(tmp_path, """\
state_dir: /var/lib/archivekeeper
volumes:
  - {name: studio, path: /srv/photos/studio}
  - {name: all, path: /srv/photos}
  - {name: again, path: /srv/photos/studio/}
shoots:
  patterns: ["{date} {customer}"]
""")
    assert errors_of(path) == [
        f"{path}:4: volumes.1.path: contains volumes.0 (/srv/photos/studio) "
        "(volume folders that do not overlap)",
        f"{path}:5: volumes.2.path: is inside volumes.1 (/srv/photos) "
        "(volume folders that do not overlap)",
        f"{path}:5: volumes.2.path: is the same folder as volumes.0 (/srv/photos/studio) "
        "(volume folders that do not overlap)",
    ]


def test_model_rules_and_holds_are_core_values(tmp_path):
    path = write(tmp_path, """\
state_dir: /var/lib/archivekeeper
volumes:
  - {name: studio, path: /srv/photos}
  - {name: backup-1, path: /media/studio/BACKUP1}
shoots:
  patterns: ["{date} {customer}"]
rules:
  - {name: passport, match: {type: passport}, exclude: {volume: backup-1}, delete_after: 6 months}
  - {name: keep-year, keep_for: 1 year, since: last_used}
holds:
  - {customer: "Mäkinen_Anna", kind: invoice, reason: open invoice, until: "2027-01-31"}
  - {shoot: "backup-1:/2024/2024-05-12 Virtanen Matti/", kind: legal-claim, reason: claim}
  - {path: "/srv/photos/2024-06-01 Korhonen Liisa/RAW", kind: other, reason: asked to keep}
""")
    config = load_config(path)
    assert config.model_rules() == (
        model.Rule("passport", "delete", Period(6, "months"), "shoot_date",
                   match=model.Match(type="passport"), exclude=model.Match(volume="backup-1")),
        model.Rule("keep-year", "keep", Period(1, "years"), "last_used"),
    )
    assert config.model_holds() == (
        model.Hold("cfg-1", "invoice", "open invoice", date(2027, 1, 31),
                   customer_key="mäkinen anna", scope="customer", source="config"),
        model.Hold("cfg-2", "legal-claim", "claim", volume="backup-1",
                   path="2024/2024-05-12 Virtanen Matti", scope="shoot", source="config"),
        model.Hold("cfg-3", "other", "asked to keep", volume="studio",
                   path="2024-06-01 Korhonen Liisa/RAW", scope="path", source="config"),
    )


@pytest.mark.parametrize(("target", "problem"), [
    ("studio:../elsewhere", "'../elsewhere' leaves the volume with '..'"),
    ("studio:", "names the whole volume, not a folder in it"),
    ("backup-9:2024", "'backup-9' is not a configured volume"),
    ("2024-05-12 Virtanen Matti", "'2024-05-12 Virtanen Matti' names no volume"),
])
def test_hold_targets_must_lie_inside_a_configured_volume(tmp_path, target, problem):
    path = write(tmp_path, MINIMAL + f"holds:\n  - {{shoot: '{target}', kind: other, reason: r}}\n")
    assert errors_of(path) == [
        f"{path}:7: holds.0.shoot: {problem} "
        "(VOLUME:relative/path, or an absolute path inside a configured volume)"
    ]


@pytest.mark.parametrize(("line", "error"), [
    ("state_dir: 5", "state_dir: is the number 5 (a folder for the index and audit log, "
                     "outside every volume)"),
    ("state_dir: ''", "state_dir: is empty (a folder for the index and audit log, "
                      "outside every volume)"),
    ("volumes: []", "volumes: is empty (a list of volumes, each with a name and a path)"),
    ("volumes: [{name: 'a/b', path: /srv/x}]",
     "volumes.0.name: 'a/b' contains '/' (a short name without '/', ':' or spaces, "
     "e.g. studio or backup-1)"),
    ("shoots: {patterns: ['{date}']}",
     "shoots.patterns.0: pattern '{date}' has no {customer} "
     "(a layout pattern like '{date} {customer}')"),
    ("holds: [{customer: X, path: 'studio:a', kind: other, reason: r}]",
     "holds.0: has customer and path (exactly one of customer, shoot or path)"),
    ("holds: [{customer: X, kind: other, reason: r, until: 2027-01-31 10:00:00}]",
     "holds.0.until: is the date and time 2027-01-31T10:00:00 "
     "(a date like 2027-01-31, the last day held)"),
    ("safety: {max_bytes_per_run: lots}",
     "safety.max_bytes_per_run: 'lots' is not a size like '500 GB' or '2 TiB' "
     "(a size like '500 GB' or '2 TiB', or bytes)"),
    ("safety: {require_approval: 1}",
     "safety.require_approval: is the number 1 (true or false)"),
    ("daemon: {debounce: 30}",
     "daemon.debounce: is the number 30 (an interval like '30 seconds' or '2 minutes')"),
    ("report: {email: {to: [not-an-address], from: a@b.example}}",
     "report.email.to.0: 'not-an-address' is not an e-mail address "
     "(an address like owner@studio.example)"),
    ("report: {email: {to: [a@b.example]}}",
     "report.email.from: is missing (the sender's e-mail address)"),
    ("schedule: {apply: '@reboot'}",
     "schedule.apply: unknown shortcut '@reboot' "
     "(one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually)"),
    ("7: seven", "7: key the number 7 is not text (keys are names like rules)"),
])
def test_bad_values_name_their_key_and_what_is_expected(tmp_path, line, error):
    blocks = {
        "state_dir": "state_dir: /var/lib/archivekeeper",
        "volumes": "volumes:\n  - {name: studio, path: /srv/photos}",
        "shoots": 'shoots:\n  patterns: ["{date} {customer}"]',
    }
    blocks[line.split(":")[0]] = line
    text = "\n".join(blocks.values()) + "\n"
    path = write(tmp_path, text)
    lineno = text.splitlines().index(line) + 1
    assert errors_of(path) == [f"{path}:{lineno}: {error}"]


def test_yaml_merge_keys_work_and_are_not_duplicates(tmp_path):
    path = write(tmp_path, MINIMAL + """\
rules:
  - &base {name: passport, match: {type: passport}, delete_after: 6 months}
  - <<: *base
    name: passport-backup
    match: {type: passport, volume: studio}
""")
    config = load_config(path)
    assert [r.name for r in config.rules] == ["passport", "passport-backup"]
    assert config.rules[1].delete_after == Period(6, "months")


def test_resolve_config_path_prefers_flag_then_environment_then_default():
    env = {"ARCHIVEKEEPER_CONFIG": "/etc/from-env.yaml"}
    assert resolve_config_path("/tmp/flag.yaml", env) == Path("/tmp/flag.yaml")
    assert resolve_config_path(None, env) == Path("/etc/from-env.yaml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, {"ARCHIVEKEEPER_CONFIG": ""}) == DEFAULT_CONFIG_PATH
    assert DEFAULT_CONFIG_PATH == Path("/etc/archivekeeper/archivekeeper.yaml")


def test_config_values_are_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        config.state_dir = Path("/tmp")  # type: ignore[misc]


def _load_or_config_error(path: Path) -> None:
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as err:
        assert err.errors and all(isinstance(e, str) and e.startswith(str(path)) for e in err.errors)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_gives_a_config_or_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load_or_config_error(path)


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_give_a_config_or_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_bytes(data)
    _load_or_config_error(path)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 70000), st.floats(allow_nan=True),
    st.dates(), st.text(max_size=12),
    st.sampled_from(["1 year", "0 days", "5 yeers", "500 GB", "30 seconds", "0 7 * * mon",
                     "*/15 * * * 8", "/srv/photos", "/", "studio", "studio:a/b", "passport",
                     "invoice", "last_used", "{date} {customer}", "a@b.example"]),
)
_KEYS = st.sampled_from([
    "state_dir", "volumes", "shoots", "patterns", "rules", "holds", "safety", "schedule",
    "daemon", "report", "name", "path", "removable", "match", "exclude", "keep_for",
    "delete_after", "since", "customer", "shoot", "kind", "reason", "until", "volume", "type",
    "files", "notice_period", "max_bytes_per_run", "max_fraction_per_volume", "apply", "email",
    "to", "from", "port", "debounce", "dir", "keep", "password_file", "typo",
])
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_arbitrary_config_shaped_yaml_gives_a_config_or_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _load_or_config_error(path)
