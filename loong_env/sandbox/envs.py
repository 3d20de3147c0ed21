"""Per-requirement-set Python environments, made once by uv and reused (offline) ever after.

An environment is keyed by the normalised requirement set and the interpreter version, lives in
`$LOONG_CACHE_DIR/envs/<key>/` (default `~/.cache/loong_env`), and is only used once its `ready.json`
marker exists. Creation runs under an exclusive file lock, so two processes racing for the same set build it
once. An empty requirement set still gets its own minimal environment (the standard library only), so
snippets never see the host project's packages.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from loong_env.errors import ConfigError, LoongError

MARKER = "ready.json"


class EnvCreationError(LoongError, RuntimeError):
    """uv could not create the environment; the message carries uv's own output."""


def cache_root() -> Path:
    """Where environments live: $LOONG_CACHE_DIR, else ~/.cache/loong_env."""
    env = os.environ.get("LOONG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "loong_env"


def normalize_requirements(requirements: Iterable[str]) -> list[str]:
    """Canonical, sorted, unique requirement strings, so `SymPy==1.14` and `sympy==1.14` share an env."""
    out: set[str] = set()
    for raw in requirements:
        text = raw.strip()
        if not text:
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"invalid requirement {raw!r}: {exc}") from None
        req.name = canonicalize_name(req.name)
        out.add(str(req))
    return sorted(out)


def requirement_names(requirements: Iterable[str]) -> list[str]:
    """Distribution names only (what the worker pre-imports)."""
    return [Requirement(r).name for r in normalize_requirements(requirements)]


def env_key(requirements: Iterable[str]) -> str:
    """Stable id of a requirement set on this interpreter version."""
    payload = json.dumps({"requirements": normalize_requirements(requirements), "python": _python_tag()})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _python_tag() -> str:
    return f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}"


def env_dir(requirements: Iterable[str]) -> Path:
    return cache_root() / "envs" / env_key(requirements)


def _python_of(root: Path) -> Path:
    return root / "bin" / "python"


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _run_uv(args: list[str], *, progress: bool) -> None:
    cmd = [_uv(), *args]
    env = {**os.environ, "UV_NO_CONFIG": "1"}
    proc = subprocess.run(
        cmd,
        env=env,
        stdout=None if progress else subprocess.PIPE,
        stderr=None if progress else subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        output = (proc.stdout or "").strip()[-4000:]
        raise EnvCreationError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode}"
            + (f":\n{output}" if output else " (its output is above)")
        )


def ensure_env(requirements: Iterable[str] = (), *, progress: bool = True) -> Path:
    """Python executable of the cached environment for `requirements`, creating it with uv the first time."""
    reqs = normalize_requirements(requirements)
    root = env_dir(reqs)
    python = _python_of(root)
    if (root / MARKER).is_file() and python.exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a racing process waits here, then finds the marker
        if (root / MARKER).is_file() and python.exists():
            return python
        if root.exists():
            shutil.rmtree(root)  # a half-built env from a crashed run
        t0 = time.monotonic()
        if progress:
            shown = ", ".join(reqs) or "standard library only"
            print(f"loong_env: creating sandbox environment [{shown}] in {root}", file=sys.stderr, flush=True)
        _run_uv(["venv", "--quiet", "--python", sys.executable, str(root)], progress=progress)
        if reqs:
            _run_uv(["pip", "install", "--python", str(python), *reqs], progress=progress)
        marker = {"requirements": reqs, "python": _python_tag(), "created_s": round(time.monotonic() - t0, 2)}
        (root / MARKER).write_text(json.dumps(marker, indent=2))
        if progress:
            print(f"loong_env: environment ready in {marker['created_s']} s", file=sys.stderr, flush=True)
    return python
