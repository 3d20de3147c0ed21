"""How a worker is jailed: the bubblewrap command line (its cgroups are in cgroups.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

INSTALL_HINT = "install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`"

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


class SandboxUnavailableError(RuntimeError):
    """The requested isolation cannot be provided on this machine; the message says how to fix it."""


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
