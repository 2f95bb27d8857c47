"""Read the YAML config with line numbers, validate it, and report every error at once.

YAML is read with safe_load semantics (a yaml.SafeLoader subclass only). The node tree is walked
first to map each dotted path ("volumes.1.path") to its line, so that pydantic's error locations
and the cross-section checks below can point at the line to fix.
"""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from archivekeeper.config.schema import Config, describe, resolve_path, split_hold_target

DEFAULT_CONFIG_PATH = Path("/etc/archivekeeper/archivekeeper.yaml")
ENV_VAR = "ARCHIVEKEEPER_CONFIG"
_MAX_BYTES = 1 << 20
# Aliases can make a tiny file expand into billions of values, or loop; a config needs a few
# hundred values, five levels deep.
_MAX_NODES = 100_000
_MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TOO_DEEP = "nested too deeply, or an alias inside itself (a config a few levels deep)"
_TOP = "(top level)"
_TOP_EXPECTED = "a mapping with state_dir, volumes and shoots"

_Path = tuple[str, ...]


class _Problem(NamedTuple):
    path: _Path
    what: str
    expected: str
    line: int | None = None  # None: the line recorded for path (or its nearest parent)


class ConfigError(Exception):
    """An invalid config. errors holds every problem, each as
    "FILE:LINE: dotted.path: what is wrong (what is expected)"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """Given --config (or None) and the environment, return the config file to read:
    --config, else $ARCHIVEKEEPER_CONFIG, else /etc/archivekeeper/archivekeeper.yaml."""
    if cli_value is not None:
        return Path(cli_value)
    from_env = environ.get(ENV_VAR, "")
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH


def load_config(path: Path) -> Config:
    """Given a config file, return the validated Config. Raise ConfigError listing every problem
    (unreadable file, YAML syntax, unknown keys, bad types and values, conflicting sections)."""
    name = str(path)
    try:
        # O_NONBLOCK: a FIFO left in the config's place must not make open() wait for a writer
        # that never comes (the daemon's reload hung); blocking again, it reads as empty when
        # no one writes, and a pipe given as --config is still read to its end
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.set_blocking(fd, True)
            with open(fd, "rb", closefd=False) as stream:
                raw = stream.read(_MAX_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as err:
        raise ConfigError([f"{name}: cannot read: {err.strerror or err}"]) from None
    if len(raw) > _MAX_BYTES:
        raise ConfigError([f"{name}:1: yaml: the file is over 1 MiB (a config of a few kB)"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError([
            f"{name}:{line}: yaml: byte 0x{raw[err.start]:02x} is not UTF-8 (a UTF-8 text file)"
        ]) from None

    data, lines, problems = _read_yaml(text, name)
    if not isinstance(data, dict):
        found = "the file holds no settings" if data is None else f"is {describe(data)}"
        raise ConfigError(_format(name, lines, [_Problem((), found, _TOP_EXPECTED)]))

    base_dir = Path(os.path.abspath(path)).parent
    problems.extend(_cross_checks(data, base_dir))
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        problems.extend(_pydantic_problem(e) for e in err.errors())
        raise ConfigError(_format(name, lines, problems)) from None
    if problems:
        raise ConfigError(_format(name, lines, problems))
    config._source = Path(path)
    config._config_hash = hashlib.sha256(raw).hexdigest()
    return config


class _YamlProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# What pyyaml's constructors raise, instead of a YAMLError, on a value they cannot make into
# what its tag says (`!!int x`, `!!set [1]`) or its look (a 5,000-digit number: int()'s limit).
_UNCONSTRUCTIBLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys, keeps impossible dates as text and reports a
    value it cannot construct as a YAML error at its line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # (mapping, first key node, repeated key node)
        self.duplicate_keys: list[tuple[yaml.MappingNode, yaml.Node, yaml.Node]] = []

    def construct_document(self, node: yaml.Node) -> Any:
        # Depth first, so that a value that cannot be built fails in its own construct_object
        # (pyyaml otherwise finishes lists and mappings later, away from their node).
        self.deep_construct = True
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except _UNCONSTRUCTIBLE:
            raise yaml.constructor.ConstructorError(
                None, None, _unconstructible(node), node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        explicit = [key for key, _ in node.value if key.tag != _MERGE_TAG]
        mapping = super().construct_mapping(node, deep=deep)
        first_nodes: dict[Any, yaml.Node] = {}
        for key_node in explicit:
            key = self.construct_object(key_node, deep=deep)
            if key in first_nodes:
                self.duplicate_keys.append((node, first_nodes[key], key_node))
            else:
                first_nodes[key] = key_node
        return mapping

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # A date-shaped value that is no date (2027-02-30) stays text, so that validation
        # reports it at its key along with every other problem.
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return node.value


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _unconstructible(node: yaml.Node) -> str:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    if isinstance(node, yaml.ScalarNode):
        shown = repr(node.value if len(node.value) <= 40 else node.value[:37] + "...")
    else:
        shown = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
    return f"{shown} cannot be read as {tag} (a plain value of a sensible size, without a !! tag)"


def _read_yaml(text: str, name: str) -> tuple[Any, dict[_Path, int], list[_Problem]]:
    """Return (data, dotted path -> line, problems); YAML errors are raised as ConfigError."""
    loader = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            return None, {}, []
        lines, node_paths = _line_map(root)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        raise ConfigError([f"{name}:{_mark_line(err)}: yaml: {_yaml_message(err)}"]) from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise ConfigError([  # from a str, pyyaml reports the character as its code point
            f"{name}:{line}: yaml: character U+{err.character:04X} is not allowed (printable text)"
        ]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{name}:1: yaml: {err}"]) from None
    except _YamlProblem as err:
        raise ConfigError([f"{name}:{err.line}: yaml: {err.message}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:1: yaml: {_TOO_DEEP}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    problems: list[_Problem] = []
    for mapping_node, first_node, key_node in loader.duplicate_keys:
        key_path = node_paths.get(id(mapping_node), ()) + (_key_text(key_node),)
        problems.append(_Problem(
            key_path, f"duplicate key, also on line {first_node.start_mark.line + 1}",
            "each key once", key_node.start_mark.line + 1,
        ))
    return data, lines, problems


def _mark_line(err: yaml.MarkedYAMLError) -> int:
    mark = err.problem_mark or err.context_mark
    return mark.line + 1 if mark is not None else 1


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    problem = err.problem or "malformed YAML"
    if "'\\t'" in problem:
        return "a tab character where YAML needs spaces (indent with spaces, not tabs)"
    if err.context and err.context_mark is not None:
        return f"{problem} ({err.context} that starts on line {err.context_mark.line + 1})"
    if err.context:
        return f"{problem} ({err.context})"
    return problem


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "?"


def _line_map(root: yaml.Node) -> tuple[dict[_Path, int], dict[int, _Path]]:
    """Walk the node tree; return (dotted path -> line, id(mapping node) -> its path)."""
    lines: dict[_Path, int] = {(): root.start_mark.line + 1}
    node_paths: dict[int, _Path] = {}
    stack: list[tuple[_Path, yaml.Node]] = [((), root)]
    visited = 0
    while stack:
        path, node = stack.pop()
        visited += 1
        if visited > _MAX_NODES:
            raise _YamlProblem(
                node.start_mark.line + 1,
                f"more than {_MAX_NODES} values after expanding aliases (a config of a few kB)",
            )
        if len(path) > _MAX_DEPTH:
            raise _YamlProblem(node.start_mark.line + 1, _TOO_DEEP)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault(path + (str(index),), item.start_mark.line + 1)
                stack.append((path + (str(index),), item))
        elif isinstance(node, yaml.MappingNode):
            node_paths.setdefault(id(node), path)
            for key_node, value_node in _mapping_pairs(node):
                child = path + (_key_text(key_node),)
                lines.setdefault(child, key_node.start_mark.line + 1)
                stack.append((child, value_node))
    return lines, node_paths


def _mapping_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """Yield a mapping's own pairs first, then those it merges in with `<<`."""
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode)
                          else [value_node])
        else:
            yield key_node, value_node
    for source in merged:
        if isinstance(source, yaml.MappingNode):
            yield from _mapping_pairs(source)


def _cross_checks(data: dict, base_dir: Path) -> list[_Problem]:
    """Given the raw YAML mapping, return the problems that involve several sections: volume
    names and folders, state_dir, and volumes named by rules and holds. Values of the wrong type
    are skipped here: validation reports them."""
    volumes = _raw_volumes(data.get("volumes"), base_dir)
    problems = _volume_problems(volumes)
    names = {name for _, name, _ in volumes if name is not None}
    # Checking names against a half-broken volume list would only add confusing errors.
    every_entry = isinstance(data.get("volumes"), list) and len(volumes) == len(data["volumes"])
    names_known = every_entry and all(name is not None for _, name, _ in volumes)
    paths_known = names_known and all(path is not None for _, _, path in volumes)

    state_dir = _try_resolve(data.get("state_dir"), base_dir)
    report = data.get("report")
    report_dir = _try_resolve(report.get("dir"), base_dir) if isinstance(report, dict) else None
    # nothing is written on a volume outside its .archivekeeper/ folder (promise 1)
    for where, folder, example in (
            (("state_dir",), state_dir, "/var/lib/archivekeeper"),
            (("report", "dir"), report_dir, "/var/lib/archivekeeper/reports")):
        for _, name, path in volumes:
            if folder is not None and path is not None and _within(folder, path):
                problems.append(_Problem(
                    where, f"is inside volume {name!r} ({path})",
                    f"a folder outside every volume, e.g. {example}",
                ))

    for index, rule in _items(data.get("rules")):
        for block in ("match", "exclude"):
            volume = rule.get(block).get("volume") if isinstance(rule.get(block), dict) else None
            if names_known and isinstance(volume, str) and volume not in names:
                problems.append(_Problem(
                    ("rules", index, block, "volume"), f"{volume!r} is not a configured volume",
                    "one of " + ", ".join(repr(n) for n in sorted(names)),
                ))
    problems.extend(_duplicate_rule_names(data.get("rules")))

    if paths_known:
        configured = [(name, path) for _, name, path in volumes]
        for index, hold in _items(data.get("holds")):
            for key in ("shoot", "path"):
                target = hold.get(key)
                if isinstance(target, str) and target.strip():
                    try:
                        split_hold_target(target, configured)
                    except ValueError as err:
                        problems.append(_Problem(
                            ("holds", index, key), str(err),
                            "VOLUME:relative/path, or an absolute path inside a configured volume",
                        ))
    return problems


def _items(value: object) -> Iterator[tuple[str, dict]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield str(index), item


def _raw_volumes(value: object, base_dir: Path) -> list[tuple[str, str | None, str | None]]:
    """Return (index, name, real path) per volume entry; None where the value is unusable."""
    volumes = []
    for index, entry in _items(value):
        name = entry.get("name")
        path = _try_resolve(entry.get("path"), base_dir)
        real = os.path.realpath(path) if path is not None else None
        volumes.append((index, name if isinstance(name, str) and name else None,
                        real if real != "/" else None))
    return volumes


def _try_resolve(value: object, base_dir: Path) -> str | None:
    try:
        return str(resolve_path(value, base_dir))
    except ValueError:
        return None


def _within(inner: str, outer: str) -> bool:
    real = os.path.realpath(inner)
    return real == outer or real.startswith(outer.rstrip("/") + "/")


def _volume_problems(volumes: list[tuple[str, str | None, str | None]]) -> list[_Problem]:
    problems = []
    for later, (index, name, path) in enumerate(volumes):
        for other_index, other_name, other_path in volumes[:later]:
            if name is not None and name == other_name:
                problems.append(_Problem(
                    ("volumes", index, "name"), f"{name!r} is also the name of volumes.{other_index}",
                    "a unique name per volume",
                ))
            if path is None or other_path is None:
                continue
            if path == other_path:
                what = f"is the same folder as volumes.{other_index} ({other_path})"
            elif _within(path, other_path):
                what = f"is inside volumes.{other_index} ({other_path})"
            elif _within(other_path, path):
                what = f"contains volumes.{other_index} ({other_path})"
            else:
                continue
            problems.append(_Problem(
                ("volumes", index, "path"), what, "volume folders that do not overlap"
            ))
    return problems


def _duplicate_rule_names(rules: object) -> list[_Problem]:
    problems = []
    first_index: dict[str, str] = {}
    for index, rule in _items(rules):
        name = rule.get("name")
        if not isinstance(name, str):
            continue
        if name in first_index:
            problems.append(_Problem(
                ("rules", index, "name"), f"{name!r} is also the name of rules.{first_index[name]}",
                "a unique name per rule",
            ))
        else:
            first_index[name] = index
    return problems


_TYPE_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "float_type": "a number",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
}
_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number")


def _pydantic_problem(error: Mapping[str, Any]) -> _Problem:
    """Given one pydantic error, return it as a problem with plain words."""
    loc = tuple(error["loc"])
    path = tuple(str(part) for part in loc)
    kind = error["type"]
    context = error.get("ctx") or {}
    value = error.get("input")
    _, field = _schema_at(loc)
    expected = field.description if field is not None and field.description else ""
    if kind == "config":
        return _Problem(path, context["what"], context["expected"])
    if kind == "config_complete":
        return _Problem(path, context["message"], "")
    if kind == "missing":
        return _Problem(path, "is missing", expected or "a required key")
    if kind == "extra_forbidden":
        return _Problem(path, *_unknown_key(loc))
    if kind == "invalid_key":
        return _Problem(path, f"key {describe(value)} is not text", "keys are names like rules")
    if kind == "value_error":
        return _Problem(path, str(context.get("error", error["msg"])), expected or "see the example")
    if kind == "too_short":
        return _Problem(path, "is empty", expected or "at least one entry")
    if kind in _RANGE_ERRORS:
        return _Problem(path, f"is {describe(value)}, out of range", expected)
    if kind in _TYPE_EXPECTED or kind == "literal_error":
        return _Problem(path, f"is {describe(value)}", expected or _TYPE_EXPECTED.get(kind, ""))
    return _Problem(path, error["msg"], expected or "see the example config")


def _unknown_key(loc: tuple[Any, ...]) -> tuple[str, str]:
    parent, _ = _schema_at(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return "unknown key", "see the example config"
    import difflib  # only for a misspelt key

    allowed = list(_fields(parent))
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return "unknown key", f"{hint}one of {', '.join(allowed)}"


def _fields(model_class: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info for name, info in model_class.model_fields.items()}


def _schema_at(loc: tuple[Any, ...]) -> tuple[Any, Any]:
    """Given a pydantic error location, return (annotation there, FieldInfo of its last key);
    (None, None) where the location leaves the schema, FieldInfo None after a list index."""
    annotation: Any = Config
    field = None
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, str) and isinstance(annotation, type) and issubclass(
            annotation, BaseModel
        ):
            field = _fields(annotation).get(part)
            if field is None:
                return None, None
            annotation = field.annotation
        elif isinstance(part, int) and get_origin(annotation) is list:
            field = None
            annotation = get_args(annotation)[0]
        else:
            return None, None
    return _unwrap(annotation), field


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _format(name: str, lines: dict[_Path, int], problems: list[_Problem]) -> list[str]:
    """Return each problem as FILE:LINE: dotted.path: what (expected), sorted by line."""
    rendered = set()
    for problem in problems:
        line = problem.line if problem.line is not None else _line_of(lines, problem.path)
        dotted = ".".join(problem.path) or _TOP
        text = f"{problem.what} ({problem.expected})" if problem.expected else problem.what
        rendered.add((line, dotted, f"{name}:{line}: {dotted}: {text}"))
    return [message for _, _, message in sorted(rendered)]


def _line_of(lines: dict[_Path, int], path: _Path) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
