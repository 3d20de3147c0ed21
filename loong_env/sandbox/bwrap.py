"""How a worker is jailed: the bubblewrap command line and, when we run as root, a pids cgroup.

Root is special: the kernel does not enforce RLIMIT_NPROC for uid 0, and bubblewrap maps root to root, so
a fork bomb is bounded by a per-worker pids cgroup instead (`pids.max`). Normal users get RLIMIT_NPROC,
which the kernel does enforce for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from loong_env.errors import LoongError

INSTALL_HINT = "install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`"
CGROUP_V1_PIDS = Path("/sys/fs/cgroup/pids")

# Thread pools in numeric libraries would only fight the other workers for the same cores.
SANDBOX_ENV = {
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


class SandboxUnavailableError(LoongError, RuntimeError):
    """The requested isolation cannot be provided on this machine; the message says how to fix it."""


class SandboxClosedError(LoongError, RuntimeError):
    """The Sandbox was closed; its workers are gone and it takes no more runs."""


def find_bwrap() -> str:
    """Path of the bubblewrap binary, or a SandboxUnavailableError that says how to install it."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailableError(
            f"the sandbox needs bubblewrap (`bwrap`), which is not on PATH; {INSTALL_HINT}. "
            "To run untrusted code WITHOUT isolation anyway, pass isolation='none' (not recommended)."
        )
    return path


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def bwrap_argv(bwrap: str, python: Path, worker_script: Path, *, scratch_mb: int) -> list[str]:
    """The bubblewrap command for one worker: read-only host, private /tmp, no network, empty environment."""
    real_python = Path(os.path.realpath(python))
    env_root = Path(os.path.abspath(python)).parent.parent
    needed = [env_root, real_python.parent.parent, worker_script.parent]
    home = Path.home().resolve()
    hidden = [Path("/tmp")] + ([home] if home != Path("/") else [])
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Hide the user's home (dotfiles, tokens) and the host's /tmp; bind back only what the interpreter needs.
    size = ["--size", str(scratch_mb * 1024 * 1024)]  # every writable tmpfs is capped: no filling RAM via /dev/shm
    if home != Path("/"):
        argv += [*size, "--tmpfs", str(home)]
    argv += [*size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    for path in needed:
        resolved = path.resolve()
        if any(_under(resolved, h) for h in hidden):
            argv += ["--ro-bind", str(resolved), str(resolved)]
    argv += ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    # CAP_SYS_ADMIN (inside bubblewrap's own user namespace only) lets the worker give each run a fresh
    # PID namespace; each run drops it, and every other capability, before the snippet starts.
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    argv += ["--clearenv", "--setenv", "PATH", f"{env_root / 'bin'}:/usr/local/bin:/usr/bin:/bin"]
    argv += ["--setenv", "HOME", "/tmp"]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", "/tmp", "--", str(python), "-I", "-B", str(worker_script)]
    return argv


def plain_argv(python: Path, worker_script: Path) -> list[str]:
    """The unisolated worker command (isolation='none'): only the environment is scrubbed."""
    return [str(python), "-I", "-B", str(worker_script)]


def plain_env(python: Path) -> dict[str, str]:
    env_root = Path(os.path.abspath(python)).parent.parent
    return {"PATH": f"{env_root / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **SANDBOX_ENV}


def needs_pids_cgroup() -> bool:
    """True when RLIMIT_NPROC would be ignored (uid 0), so processes must be bounded another way."""
    return os.geteuid() == 0


def pids_cgroup_base() -> Path | None:
    """A writable cgroup-v1 pids directory for our workers, or None."""
    if not (CGROUP_V1_PIDS / "cgroup.procs").exists() or not os.access(CGROUP_V1_PIDS, os.W_OK):
        return None
    base = CGROUP_V1_PIDS / "loong_env"
    try:
        base.mkdir(exist_ok=True)
    except OSError:
        return None
    _remove_stale(base)
    return base


def _remove_stale(base: Path) -> None:
    """Remove cgroups left by processes that died without cleaning up (empty ones only)."""
    for child in base.iterdir():
        owner = child.name.split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                child.rmdir()


def make_pids_cgroup(base: Path, name: str, max_pids: int) -> Path:
    path = base / f"{os.getpid()}-{name}"
    path.mkdir(exist_ok=True)
    (path / "pids.max").write_text(str(max_pids))
    return path


def in_cgroup_argv(cgroup: Path, argv: list[str]) -> list[str]:
    """Wrap argv so the process joins the cgroup before it execs, taking all its descendants along."""
    script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
    return ["/bin/sh", "-c", script, "sh", str(cgroup), *argv]


def remove_cgroup(cgroup: Path, *, wait_s: float = 2.0) -> None:
    """rmdir the cgroup once its processes are gone (the kernel refuses while any remain)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
