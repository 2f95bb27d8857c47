"""The YAML configuration: find it, read it with line numbers, validate every value at once."""

from __future__ import annotations

from archivekeeper.config.load import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    load_config,
    resolve_config_path,
)
from archivekeeper.config.schema import Config

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "ConfigError", "load_config", "resolve_config_path"]
