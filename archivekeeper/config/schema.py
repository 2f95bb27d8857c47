"""The configuration schema: pydantic models, one per YAML section, every value checked.

Each field's description says what is expected; the loader prints it after the error. Relative
paths are resolved against the directory given as validation context "base_dir" (the config
file's directory). Errors that need to see several sections at once (overlapping volumes, unknown
volume names) are checked by the loader, which knows their lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from archivekeeper.core import model
from archivekeeper.core.cron import parse_cron
from archivekeeper.core.durations import Period, parse_interval, parse_period, parse_size
from archivekeeper.core.naming import compile_pattern, normalize_customer

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD_EXPECTED = "a period like '14 days', '6 months' or '1 year'"
_CRON_EXPECTED = "a crontab(5) schedule like '0 7 * * mon'"
_HOLD_TARGET = "VOLUME:relative/path, or an absolute path inside a configured volume"


def config_error(what: str, expected: str) -> PydanticCustomError:
    """Given what is wrong and what is expected, return an error the loader prints as is."""
    return PydanticCustomError("config", "{what} ({expected})", {"what": what, "expected": expected})


def _from_parser(err: ValueError, expected: str) -> PydanticCustomError:
    """Given a parser's ValueError, return a config error; parser messages that already end
    with what is expected in parentheses are kept as they are."""
    message = str(err)
    if message.endswith(")"):
        return PydanticCustomError("config_complete", "{message}", {"message": message})
    return config_error(message, expected)


def describe(value: object) -> str:
    """Given a YAML value, return a short phrase naming it for an error message."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"text {shown!r}"
    if isinstance(value, int) and abs(value) >= 10**60:  # str() refuses over 4,300 digits
        return "a number over 60 digits long"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def resolve_path(value: object, base_dir: Path | None) -> Path:
    """Given a path from the config, return it absolute (relative ones against base_dir) and
    normalised. Raise ValueError if it is not usable text."""
    if not isinstance(value, str):
        raise ValueError(f"is {describe(value)}")
    if not value.strip():
        raise ValueError("is empty")
    if "\0" in value:
        raise ValueError("contains a NUL character")
    path = Path(value)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return Path(os.path.normpath(path))


def _to_path(value: object, info: ValidationInfo) -> Path:
    base_dir = (info.context or {}).get("base_dir")
    return resolve_path(value, base_dir)


def _to_period(value: object) -> Period:
    if not isinstance(value, str):
        raise ValueError(f"is {describe(value)}")
    return parse_period(value)


def _to_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"is {describe(value)}")
    return parse_size(value)


def _to_interval(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError(f"is {describe(value)}")
    return parse_interval(value)


def _to_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a calendar date") from None
    raise ValueError(f"is {describe(value)}")


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value


def _volume_name(value: str) -> str:
    if not value:
        raise ValueError("is empty")
    bad = next((c for c in value if c in "/:" or c.isspace()), None)
    if bad is not None:
        raise ValueError(f"{value!r} contains {bad!r}")
    return value


def _not_root(path: Path) -> Path:
    if os.path.realpath(path) == "/":
        raise config_error("a volume cannot be / itself", "a folder below /, e.g. /srv/photos")
    return path


def _email_address(value: str) -> str:
    local, at, domain = value.partition("@")
    if not (local and at and domain) or any(c.isspace() for c in value):
        raise config_error(
            f"{value!r} is not an e-mail address", "an address like owner@studio.example"
        )
    return value


def _layout_pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except ValueError as err:
        raise _from_parser(err, "a layout pattern like '{date} {customer}'") from None
    return value


def _cron(value: str) -> str:
    try:
        parse_cron(value)
    except ValueError as err:
        raise _from_parser(err, _CRON_EXPECTED) from None
    return value


def _hold_kind(value: str) -> str:
    if value not in model.HOLD_KINDS:
        raise config_error(f"{value!r} is not a hold kind", "one of " + ", ".join(model.HOLD_KINDS))
    return value


def _a_day_or_more(period: Period) -> Period:
    # a jump of 0 days would distrust every clock a day after the last run: nothing ever acts
    if period.count == 0:
        raise config_error(f"{period} stops every run a day after the last one",
                           "a period of at least 1 day, e.g. '60 days'")
    return period


FolderPath = Annotated[Path, BeforeValidator(_to_path)]
PeriodValue = Annotated[Period, PlainValidator(_to_period)]
NonEmptyText = Annotated[str, AfterValidator(_non_empty)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
CronText = Annotated[str, AfterValidator(_cron)]
CalendarDate = Annotated[date, BeforeValidator(_to_date)]


def split_hold_target(
    target: str, volumes: Sequence[tuple[str, str | Path]]
) -> tuple[str, str]:
    """Given a hold's shoot/path ("VOLUME:relative/path" or an absolute path) and the configured
    (name, path) volumes, return (volume name, "/"-separated path relative to it).
    Raise ValueError if it names no configured volume or leaves it."""
    if target.startswith("/"):
        for name, root in volumes:
            relative = _relative_inside(target, root)
            if relative is not None:
                return name, _clean_relative(relative)
        raise ValueError(f"{target!r} is not inside any configured volume")
    name, colon, relative = target.partition(":")
    if not colon:
        raise ValueError(f"{target!r} names no volume")
    if name not in {n for n, _ in volumes}:
        raise ValueError(f"{name!r} is not a configured volume")
    return name, _clean_relative(relative)


def _relative_inside(target: str, root: str | Path) -> str | None:
    for candidate, base in (
        (os.path.normpath(target), os.path.normpath(root)),
        (os.path.realpath(target), os.path.realpath(root)),
    ):
        if candidate != base and candidate.startswith(base.rstrip("/") + "/"):
            return candidate[len(base.rstrip("/")) + 1 :]
    return None


def _clean_relative(relative: str) -> str:
    parts = PurePosixPath(relative.strip("/")).parts
    if ".." in parts:
        raise ValueError(f"{relative!r} leaves the volume with '..'")
    if not parts:
        raise ValueError("names the whole volume, not a folder in it")
    return "/".join(parts)


class VolumeConfig(BaseModel):
    model_config = _STRICT

    name: Annotated[str, AfterValidator(_volume_name)] = Field(
        description="a short name without '/', ':' or spaces, e.g. studio or backup-1"
    )
    path: Annotated[FolderPath, AfterValidator(_not_root)] = Field(
        description="the volume's root folder, e.g. /srv/photos"
    )
    removable: bool = Field(
        False, description="true or false; true for a drive that is sometimes unplugged"
    )


class ShootsConfig(BaseModel):
    model_config = _STRICT

    patterns: list[Annotated[str, AfterValidator(_layout_pattern)]] = Field(
        min_length=1,
        description="a list of layout patterns like '{date} {customer}', tried in order",
    )


class MatchConfig(BaseModel):
    model_config = _STRICT

    customer: str | None = Field(None, description="a customer name")
    type: str | None = Field(None, description="a shoot type like passport or wedding")
    volume: str | None = Field(None, description="the name of a configured volume")
    path: str | None = Field(None, description="a glob on the shoot's path, e.g. 'weddings/**'")
    files: str | None = Field(None, description="a glob on file names, e.g. '*.{cr2,nef}'")


class RuleConfig(BaseModel):
    model_config = _STRICT

    name: NonEmptyText = Field(description="a unique name for the rule")
    match: MatchConfig | None = Field(
        None, description="a mapping of customer, type, volume, path, files"
    )
    exclude: MatchConfig | None = Field(
        None, description="a mapping of customer, type, volume, path, files"
    )
    keep_for: PeriodValue | None = Field(None, description=_PERIOD_EXPECTED)
    delete_after: PeriodValue | None = Field(None, description=_PERIOD_EXPECTED)
    since: Literal["shoot_date", "last_used", "modified"] = Field(
        "shoot_date", description="shoot_date, last_used or modified"
    )

    @model_validator(mode="after")
    def _one_period(self) -> RuleConfig:
        if (self.keep_for is None) == (self.delete_after is None):
            both = self.keep_for is not None
            found = "has both keep_for and delete_after" if both else "has no period"
            raise config_error(found, "exactly one of keep_for or delete_after")
        return self


class HoldConfig(BaseModel):
    model_config = _STRICT

    customer: NonEmptyText | None = Field(None, description="a customer name as in folder names")
    shoot: NonEmptyText | None = Field(None, description=_HOLD_TARGET)
    path: NonEmptyText | None = Field(None, description=_HOLD_TARGET)
    kind: Annotated[str, AfterValidator(_hold_kind)] = Field(
        description="one of " + ", ".join(model.HOLD_KINDS)
    )
    reason: NonEmptyText = Field(description="why the data is held, e.g. 'open invoice 2024-113'")
    until: CalendarDate | None = Field(None, description="a date like 2027-01-31, the last day held")

    @model_validator(mode="after")
    def _one_target(self) -> HoldConfig:
        given = [k for k in ("customer", "shoot", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            found = "has " + " and ".join(given) if given else "names nothing to hold"
            raise config_error(found, "exactly one of customer, shoot or path")
        return self


class SafetyConfig(BaseModel):
    model_config = _STRICT

    notice_period: PeriodValue = Field(Period(14, "days"), description=_PERIOD_EXPECTED)
    trash_retention: PeriodValue = Field(Period(30, "days"), description=_PERIOD_EXPECTED)
    max_files_per_run: int = Field(20000, ge=0, description="a whole number, 0 or more")
    max_bytes_per_run: Annotated[int, PlainValidator(_to_size)] = Field(
        parse_size("500 GB"), description="a size like '500 GB' or '2 TiB', or bytes"
    )
    max_fraction_per_volume: float = Field(
        0.10, gt=0, le=1, description="a number above 0 and at most 1, e.g. 0.10"
    )
    max_clock_jump: Annotated[Period, PlainValidator(_to_period), AfterValidator(_a_day_or_more)
                              ] = Field(Period(60, "days"), description=_PERIOD_EXPECTED)
    require_approval: bool = Field(False, description="true or false")


class ScheduleConfig(BaseModel):
    model_config = _STRICT

    scan: CronText = Field("15 * * * *", description=_CRON_EXPECTED)
    full_scan: CronText = Field("0 2 * * *", description=_CRON_EXPECTED)
    apply: CronText = Field("30 4 * * *", description=_CRON_EXPECTED)
    report: CronText = Field("0 7 * * mon", description=_CRON_EXPECTED)


class DaemonConfig(BaseModel):
    model_config = _STRICT

    debounce: Annotated[int, PlainValidator(_to_interval)] = Field(
        30, description="an interval like '30 seconds' or '2 minutes'"
    )


class EmailConfig(BaseModel):
    model_config = _STRICT

    to: list[EmailAddress] = Field(min_length=1, description="a list of e-mail addresses")
    from_: EmailAddress = Field(alias="from", description="the sender's e-mail address")
    host: NonEmptyText = Field("localhost", description="the SMTP server's host name")
    port: int = Field(25, ge=1, le=65535, description="a port number from 1 to 65535")
    starttls: bool = Field(False, description="true or false")
    username: NonEmptyText | None = Field(None, description="the SMTP user name, or null")
    password_file: FolderPath | None = Field(
        None, description="a file holding the SMTP password, or null"
    )


class ReportConfig(BaseModel):
    model_config = _STRICT

    dir: FolderPath | None = Field(None, description="a folder for stored reports")
    keep: PeriodValue = Field(Period(12, "weeks"), description=_PERIOD_EXPECTED)
    thumbnails: bool = Field(
        False, description="true or false; true shows a small picture of each upcoming shoot"
    )
    email: EmailConfig | None = Field(
        None, description="a mapping of to, from, host, port, starttls, username, password_file"
    )


class Config(BaseModel):
    """A validated configuration. Build it with archivekeeper.config.load_config."""

    model_config = _STRICT

    state_dir: FolderPath = Field(
        description="a folder for the index and audit log, outside every volume"
    )
    volumes: list[VolumeConfig] = Field(
        min_length=1, description="a list of volumes, each with a name and a path"
    )
    shoots: ShootsConfig = Field(description="a mapping with a list of patterns")
    # Plain defaults, no default_factory: pydantic inspects a factory's signature (~2 ms at start).
    # The default sections are frozen, so every Config may share them.
    rules: list[RuleConfig] = Field([], description="a list of rules")
    holds: list[HoldConfig] = Field([], description="a list of holds")
    safety: SafetyConfig = Field(SafetyConfig(), description="a mapping")
    schedule: ScheduleConfig = Field(ScheduleConfig(), description="a mapping")
    daemon: DaemonConfig = Field(DaemonConfig(), description="a mapping")
    report: ReportConfig = Field(ReportConfig(), description="a mapping")

    _source: Path = PrivateAttr()
    _config_hash: str = PrivateAttr()

    @property
    def source(self) -> Path:
        """The file this config was loaded from."""
        return self._source

    @property
    def config_hash(self) -> str:
        """SHA-256 (hex) of the file's bytes, to record which config a run used."""
        return self._config_hash

    @property
    def report_dir(self) -> Path:
        return self.report.dir if self.report.dir is not None else self.state_dir / "reports"

    def volume(self, name: str) -> VolumeConfig | None:
        """Given a volume name, return its config, or None if no volume has that name."""
        return next((v for v in self.volumes if v.name == name), None)

    def model_rules(self) -> tuple[model.Rule, ...]:
        """Return the rules as the decision core's values, in config order."""
        return tuple(
            model.Rule(
                name=rule.name,
                kind="keep" if rule.keep_for is not None else "delete",
                period=rule.keep_for if rule.keep_for is not None else rule.delete_after,
                since=rule.since,
                match=_model_match(rule.match),
                exclude=_model_match(rule.exclude),
            )
            for rule in self.rules
        )

    def model_holds(self) -> tuple[model.Hold, ...]:
        """Return the config's holds as core values with ids cfg-1, cfg-2, ... in config order;
        shoot and path holds are stored by volume and path relative to it."""
        volumes = [(v.name, v.path) for v in self.volumes]
        holds = []
        for number, hold in enumerate(self.holds, start=1):
            common: dict[str, Any] = {
                "id": f"cfg-{number}", "kind": hold.kind, "reason": hold.reason,
                "until": hold.until, "source": "config",
            }
            if hold.customer is not None:
                holds.append(model.Hold(
                    **common, customer_key=normalize_customer(hold.customer), scope="customer"
                ))
            else:
                scope = "shoot" if hold.shoot is not None else "path"
                volume, relative = split_hold_target(hold.shoot or hold.path or "", volumes)
                holds.append(model.Hold(**common, volume=volume, path=relative, scope=scope))
        return tuple(holds)

    def limits(self) -> model.Limits:
        return model.Limits(
            max_files_per_run=self.safety.max_files_per_run,
            max_bytes_per_run=self.safety.max_bytes_per_run,
            max_fraction_per_volume=self.safety.max_fraction_per_volume,
        )


def _model_match(match: MatchConfig | None) -> model.Match | None:
    return None if match is None else model.Match(**match.model_dump())
