"""The project's config file (`loong.toml`): found in one place, read one table at a time.

The file is `$LOONG_CONFIG` when set, else `./loong.toml` when it exists. Each part reads its own table
(`[llm]`, `[seeds]`); a missing file is an empty config, a broken one is a `ConfigError` naming the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loong_env.errors import ConfigError

CONFIG_ENV = "LOONG_CONFIG"
CONFIG_FILE = "loong.toml"


def config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file in use: `$LOONG_CONFIG`, else `./loong.toml` if present, else None."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def read_table(path: Path, table: str, *, whole_file_fallback: bool = False) -> dict[str, Any]:
    """The `[table]` of a TOML file ({} when absent); with `whole_file_fallback`, a file without tables."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = raw.get(table, raw if whole_file_fallback else {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: expected a [{table}] table, found {type(section).__name__}")
    return dict(section)
