"""Domain verifier plug-ins: one Python file per plug-in in the top-level `verifiers/` folder.

A domain whose answers need a judge of their own (physics with units, chemistry formulas, ...) names a
plug-in in its `domain.toml` (`verifier = "physics_units"`). The plug-in is the file
`verifiers/physics_units.py`, and all it must do is define::

    def make_verifier() -> loong_env.verifiers.base.Verifier: ...

The env calls `load_plugin(name)` once per name and reuses the verifier for every datapoint of that domain.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
from pathlib import Path
from types import ModuleType

from loong_env.errors import PluginError
from loong_env.verifiers.base import Verifier

PLUGIN_FACTORY = "make_verifier"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_cache: dict[tuple[str, Path], Verifier] = {}
_lock = threading.Lock()


def default_plugin_dir() -> Path:
    """Where plug-ins live: $LOONG_VERIFIERS_DIR, else the repository's top-level verifiers/ folder."""
    env = os.environ.get("LOONG_VERIFIERS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "verifiers"


def available_plugins(root: Path | str | None = None) -> list[str]:
    """Names of the plug-ins found in `root`, so an error can say what could have been meant."""
    folder = Path(root) if root is not None else default_plugin_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if _NAME.match(p.stem) and not p.stem.startswith("_"))


def _import_file(name: str, path: Path) -> ModuleType:
    """Import one plug-in file under a private module name, so plug-ins never shadow real packages."""
    module_name = f"loong_env_plugins.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"verifier plug-in {name!r}: cannot import {path} (not a Python source file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(
            f"verifier plug-in {name!r}: importing {path} failed with {type(exc).__name__}: {exc}"
        ) from exc
    return module


def load_plugin(name: str, *, root: Path | str | None = None) -> Verifier:
    """The verifier of plug-in `name` (from `<root>/<name>.py`), built once and cached per file."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"verifier plug-in name must be a Python identifier like 'physics_units', got {name!r}"
        )
    folder = Path(root) if root is not None else default_plugin_dir()
    path = (folder / f"{name}.py").resolve()
    key = (name, path)
    with _lock:
        if key in _cache:
            return _cache[key]
        if not path.is_file():
            found = available_plugins(folder)
            raise PluginError(
                f"verifier plug-in {name!r}: expected the file {path}, which does not exist "
                f"(plug-ins found in {folder}: {', '.join(found) or 'none'})"
            )
        module = _import_file(name, path)
        factory = getattr(module, PLUGIN_FACTORY, None)
        if not callable(factory):
            raise PluginError(
                f"verifier plug-in {name!r}: {path} must define a function `{PLUGIN_FACTORY}() -> Verifier`, "
                f"found {type(factory).__name__ if factory is not None else 'nothing'} under that name"
            )
        try:
            verifier = factory()
        except Exception as exc:
            raise PluginError(
                f"verifier plug-in {name!r}: {path}: {PLUGIN_FACTORY}() raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(verifier, Verifier):
            raise PluginError(
                f"verifier plug-in {name!r}: {path}: {PLUGIN_FACTORY}() must return a "
                f"loong_env.verifiers.base.Verifier, got {type(verifier).__name__}"
            )
        _cache[key] = verifier
        return verifier
