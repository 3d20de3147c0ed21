"""Where the seed library and the shared verifier plug-ins live, decided here for every caller.

Order: an environment variable, then the config file's `[seeds]` table, then the copy bundled in the
installed wheel, then the source checkout. A domain is one folder (`domain.toml`, `seeds.jsonl`, and
optionally its own plug-in file); shared plug-ins live in a plug-in folder (`verifiers/` in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

from loong_env.settings import config_file, read_table

SEEDS_ENV = "LOONG_SEEDS_DIR"
PLUGINS_ENV = "LOONG_VERIFIERS_DIR"

_PACKAGE = Path(__file__).resolve().parent.parent  # loong_env/
BUNDLED = _PACKAGE / "_library"  # what a wheel ships: seeds/ and verifiers/ (see pyproject.toml)
CHECKOUT = _PACKAGE.parent


def _configured(key: str) -> Path | None:
    path = config_file()
    if path is None:
        return None
    value = read_table(path, "seeds").get(key)
    return (path.parent / Path(str(value)).expanduser()).resolve() if value else None


def _shipped(name: str) -> Path:
    bundled = BUNDLED / name
    return bundled if bundled.is_dir() else CHECKOUT / name


def seeds_root() -> Path:
    """The seed library: `$LOONG_SEEDS_DIR`, `[seeds] root` in loong.toml, else the shipped library."""
    if os.environ.get(SEEDS_ENV):
        return Path(os.environ[SEEDS_ENV]).expanduser()
    return _configured("root") or _shipped("seeds")


def plugin_roots() -> list[Path]:
    """Shared plug-in folders: `$LOONG_VERIFIERS_DIR` / `[seeds] plugins` first, then the shipped one."""
    roots: list[Path] = []
    if os.environ.get(PLUGINS_ENV):
        roots.append(Path(os.environ[PLUGINS_ENV]).expanduser())
    elif (configured := _configured("plugins")) is not None:
        roots.append(configured)
    shipped = _shipped("verifiers")
    if shipped not in roots:
        roots.append(shipped)
    return roots
