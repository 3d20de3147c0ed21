"""Per-requirement-set Python environments, made once by uv and reused (offline) ever after.

An environment is keyed by the normalised requirement set and the interpreter version, lives in
`$LOONG_CACHE_DIR/envs/<key>/` (default `~/.cache/loong_env`), and is only used once its `ready.json`
marker exists. It is byte-compiled when made (and an older one lacking that, once, when next used), because
the jail mounts it read-only: otherwise every sandbox process compiles from source each module it imports.
Creation runs under an exclusive file lock, so two processes racing for the same set build it
once. An empty requirement set still gets its own minimal environment (the standard library only), so
snippets never see the host project's packages.

Every install in loong_env goes through `ensure_env` (validation, generation, the env's verifiers and the
reward server all reach it through `Sandbox`), under the operator's InstallPolicy (install_policy.py):
wheels only and no direct references unless loong.toml's `[sandbox]` table allows them. Its errors name no
host path (not uv's binary, not the caches), so a server may pass them on.
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

from loong_env.errors import ConfigError
from loong_env.sandbox.errors import EnvCreationError
from loong_env.sandbox.install_policy import InstallPolicy

MARKER = "ready.json"


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
            hint = ""
            if text.startswith("-") or "://" in text or "/" in text:
                hint = " (options, index URLs and bare URLs or paths are never taken from a requirement set)"
            raise ConfigError(f"invalid requirement {raw!r}{hint}: {exc}") from None
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


def _compiled(root: Path) -> bool:
    """Is the environment made and byte-compiled (its marker says both)?"""
    try:
        return bool(json.loads((root / MARKER).read_text()).get("bytecode"))
    except (OSError, ValueError, AttributeError):
        return False


def _byte_compile(root: Path) -> None:
    """Compile the environment's modules once, here, so no sandbox process compiles them from source.

    numpy, scipy, sympy and networkx import in 0.6 s instead of 2.7 s on our 2-core machine. The host's own
    interpreter does it with -I -S (no `site`: no startup code of the environment's packages runs), and
    compiling only parses; a file that does not compile is left as it is, to fail in the jail if imported.
    Packages' own test folders (half of what scipy, sympy and pandas ship) are left out.
    """
    compileall = [sys.executable, "-I", "-S", "-m", "compileall", "-q", "-j", "0", "-x", "/tests?/"]
    subprocess.run([*compileall, str(root / "lib")], capture_output=True, timeout=900, check=False)


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _run_uv(args: list[str], *, progress: bool, policy: InstallPolicy | None = None) -> None:
    """Run uv; a failure is an EnvCreationError (or the policy's refusal) carrying uv's output, scrubbed."""
    cmd = [_uv(), *args]
    env = {**os.environ, "UV_NO_CONFIG": "1"}
    # uv's output is always read (so a refusal can be recognised); with progress it is shown as it comes.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if progress:
            sys.stderr.write(line)
    if proc.wait() == 0:
        return
    output = scrub_paths("".join(lines).strip()[-4000:])
    refused = policy.refused_build(args[args.index("--") + 1 :], output) if policy and "--" in args else None
    if refused is not None:
        raise refused
    shown = " ".join(a for a in args[:2])
    raise EnvCreationError(
        f"`uv {shown}` failed with exit code {proc.returncode}" + (f":\n{output}" if output else "")
    )


def scrub_paths(text: str) -> str:
    """uv's output without this host's paths (the caches, uv's binary, the home directory)."""
    uv_cache = os.environ.get("UV_CACHE_DIR")
    places = [(str(cache_root()), "$LOONG_CACHE_DIR"), (_uv(), "uv")]
    places += [(uv_cache, "$UV_CACHE_DIR")] if uv_cache else []
    places += [(str(Path.home()), "~")] if str(Path.home()) not in ("/", "") else []
    for path, name in sorted(places, key=lambda p: -len(p[0])):
        text = text.replace(path, name)
    return text


def ensure_env(
    requirements: Iterable[str] = (), *, progress: bool = True, policy: InstallPolicy | None = None
) -> Path:
    """Python executable of the cached environment for `requirements`, creating it with uv the first time.

    The one installer of loong_env: `policy` (default: loong.toml's `[sandbox]` settings) decides whether
    source builds and direct references are allowed; a refusal is an InstallRefusedError.
    """
    reqs = normalize_requirements(requirements)
    policy = policy if policy is not None else InstallPolicy.from_settings()
    policy.check(reqs)
    root = env_dir(reqs)
    python = _python_of(root)
    if _compiled(root) and python.exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a racing process waits here, then finds the marker
        if (root / MARKER).is_file() and python.exists():
            if not _compiled(root):  # made before environments were compiled
                marker = json.loads((root / MARKER).read_text())
                _byte_compile(root)
                (root / MARKER).write_text(json.dumps({**marker, "bytecode": True}, indent=2))
            return python
        if root.exists():
            shutil.rmtree(root)  # a half-built env from a crashed run
        t0 = time.monotonic()
        if progress:
            shown = ", ".join(reqs) or "standard library only"
            print(f"loong_env: creating sandbox environment [{shown}] in {root}", file=sys.stderr, flush=True)
        try:
            _run_uv(["venv", "--quiet", "--python", sys.executable, str(root)], progress=progress)
            if reqs:
                install = ["pip", "install", "--python", str(python), *policy.uv_options(), "--", *reqs]
                _run_uv(install, progress=progress, policy=policy)
        except EnvCreationError:
            shutil.rmtree(root, ignore_errors=True)  # leave no half-made environment behind
            raise
        _byte_compile(root)
        marker = {
            "requirements": reqs,
            "python": _python_tag(),
            "created_s": round(time.monotonic() - t0, 2),
            "bytecode": True,
        }
        (root / MARKER).write_text(json.dumps(marker, indent=2))
        if progress:
            print(f"loong_env: environment ready in {marker['created_s']} s", file=sys.stderr, flush=True)
    return python
