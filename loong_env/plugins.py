"""Domain verifier plug-ins: one Python file that defines `make_verifier() -> Verifier`.

A domain whose answers need a judge of their own (physics with units, chemistry formulas, ...) names a
plug-in in its `domain.toml` (`verifier = "physics_units"`). The file `physics_units.py` is looked up in
the domain's own folder first (a domain is one folder), then in the shared plug-in folders
(`$LOONG_VERIFIERS_DIR`, the repository's `verifiers/`; see loong_env.seeds.library).
All it must do is define::

    def make_verifier() -> loong_env.verifiers.base.Verifier: ...

`load_plugin` builds each plug-in file's verifier once and reuses it for every datapoint of that domain.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from loong_env.errors import PluginError
from loong_env.seeds.library import plugin_roots
from loong_env.verifiers.base import Verifier

PLUGIN_FACTORY = "make_verifier"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_cache: dict[Path, Verifier] = {}
_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it at fork time


os.register_at_fork(after_in_child=_reset_lock_in_child)


def available_plugins(root: Path | str | None = None) -> list[str]:
    """Names of the plug-ins found in `root` (default: every shared folder), so errors can list them."""
    folders = [Path(root)] if root is not None else plugin_roots()
    return sorted(
        {
            p.stem
            for f in folders
            if f.is_dir()
            for p in f.glob("*.py")
            if _NAME.match(p.stem) and p.stem[0] != "_"
        }
    )


def find_plugin(
    name: str, *, domain_dir: Path | str | None = None, roots: Sequence[Path] | None = None
) -> Path:
    """The file of plug-in `name`: `<domain_dir>/<name>.py` first, then each shared plug-in folder."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"verifier plug-in name must be a Python identifier like 'physics_units', got {name!r}"
        )
    folders = ([Path(domain_dir)] if domain_dir is not None else []) + list(roots or plugin_roots())
    for folder in folders:
        path = folder / f"{name}.py"
        if path.is_file():
            return path.resolve()
    found = sorted({n for f in folders for n in available_plugins(f)})
    raise PluginError(
        f"verifier plug-in {name!r}: no file {name}.py in {', '.join(map(str, folders))} "
        f"(plug-ins found there: {', '.join(found) or 'none'})"
    )


def _import_file(name: str, path: Path) -> ModuleType:
    """Import one plug-in file under a private module name, so plug-ins never shadow real packages."""
    module_name = f"loong_env_plugins.{name}_{abs(hash(str(path))):x}"
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


def _build(name: str, path: Path) -> Verifier:
    module = _import_file(name, path)
    factory = getattr(module, PLUGIN_FACTORY, None)
    if not callable(factory):
        found = type(factory).__name__ if factory is not None else "nothing"
        raise PluginError(
            f"verifier plug-in {name!r}: {path} must define a function `{PLUGIN_FACTORY}() -> Verifier`, "
            f"found {found} under that name"
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
    return verifier


def load_plugin(
    name: str, *, domain_dir: Path | str | None = None, root: Path | str | None = None
) -> Verifier:
    """The verifier of plug-in `name` (domain folder first, then `root` or the shared folders), built once."""
    path = find_plugin(name, domain_dir=domain_dir, roots=[Path(root)] if root is not None else None)
    with _lock:
        if path not in _cache:
            _cache[path] = _build(name, path)
        return _cache[path]
