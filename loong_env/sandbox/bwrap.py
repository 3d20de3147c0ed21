"""How a worker is jailed: the bubblewrap command line (its cgroups are in cgroups.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from loong_env.sandbox.errors import SandboxUnavailableError
from loong_env.sandbox.rootfs import RootPlan

INSTALL_HINT = "install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`"
JAIL_WORKER = "/loong/worker.py"  # where the worker script is bound in the jail (not the checkout's path)
# Each run's uid and gid, whatever the parent's (root included): the worker gives each run a user namespace
# of its own that maps this id to the worker's (worker.py). On the host it stays the parent's uid.
JAIL_UID = 1000
# Replaced by WorkerHandle with the descriptor it opens on seccomp.jail_program() for each worker.
SECCOMP_FD = "{seccomp_fd}"

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


def find_bwrap() -> str:
    """Path of the bubblewrap binary, or a SandboxUnavailableError that says how to install it."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailableError(
            f"the sandbox needs bubblewrap (`bwrap`), which is not on PATH; {INSTALL_HINT}. "
            "To run untrusted code WITHOUT isolation anyway, pass isolation='none' (not recommended)."
        )
    return path


def bwrap_argv(
    bwrap: str, python: Path, worker_script: Path, *, scratch_mb: int, root: RootPlan
) -> list[str]:
    """The bubblewrap command for one worker: a minimal read-only root, private /tmp, no network, no env."""
    env_root = Path(os.path.abspath(python)).parent.parent
    # Fresh /dev, /proc and size-capped scratch mounts, then only what the interpreter and its environment
    # need (rootfs.py; after /tmp, so an environment kept under /tmp stays visible), then the root goes
    # read-only.
    size = ["--size", str(scratch_mb * 1024 * 1024)]
    argv = [bwrap, "--dev", "/dev", "--proc", "/proc", *size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    argv += [*root.bwrap_args(), "--ro-bind", str(worker_script), JAIL_WORKER, "--remount-ro", "/"]
    argv += ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    argv += ["--seccomp", SECCOMP_FD]  # seccomp.jail_program(), for the worker and every run
    # CAP_SYS_ADMIN (inside bubblewrap's own user namespace only) lets the worker give each run a fresh
    # PID namespace; CAP_SETFCAP lets a run map its uid onto the worker's when that is 0 (the kernel asks it
    # of whoever maps root into a new user namespace). Each run drops these, and every other capability,
    # before the snippet starts.
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    argv += ["--cap-add", "CAP_SETFCAP"]
    argv += ["--clearenv", "--setenv", "PATH", f"{env_root / 'bin'}:/usr/local/bin:/usr/bin:/bin"]
    # No passwd entry is bound: getpass.getuser() reads $USER, and ~ is $HOME.
    argv += ["--setenv", "HOME", "/tmp", "--setenv", "USER", "sandbox", "--setenv", "LOGNAME", "sandbox"]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", "/tmp", "--", str(python), "-I", "-B", JAIL_WORKER]
    return argv


def plain_argv(python: Path, worker_script: Path) -> list[str]:
    """The unisolated worker command (isolation='none'): only the environment is scrubbed."""
    return [str(python), "-I", "-B", str(worker_script)]


def plain_env(python: Path) -> dict[str, str]:
    env_root = Path(os.path.abspath(python)).parent.parent
    return {"PATH": f"{env_root / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **SANDBOX_ENV}
