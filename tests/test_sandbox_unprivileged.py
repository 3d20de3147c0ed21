"""The sandbox's promises hold for an unprivileged user too: the adversarial and root-fs suites, run as one.

As root, this module picks a uid that no account and no process uses, gives it a home, a temp dir and a
LOONG_CACHE_DIR of its own under /var/tmp, builds that cache's environments (as root, offline, from the uv
cache) with an interpreter the user can execute, and runs tests/test_sandbox_adversarial.py and
tests/test_sandbox_rootfs.py as that uid. There the kernel enforces RLIMIT_NPROC and no cgroup can be made,
so the runs are bounded by the stated per-process fallback. Everything it creates is removed afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: the other modules cover this path"),
    pytest.mark.timeout(300),
    # slow by nature: makes a user, builds and compiles its environments, and runs two whole suites again as
    # that user (~25 s of one worker); `make test` and CI run it, `make test-fast` leaves it out
    pytest.mark.slow,
]

REPO = Path(__file__).resolve().parents[1]
SUITES = ["tests/test_sandbox_adversarial.py", "tests/test_sandbox_rootfs.py"]
IMPORTS_DOMAIN = REPO / "tests" / "data" / "sandbox_imports"


@dataclass
class User:
    uid: int
    python: str
    env: dict[str, str]

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        options = {"cwd": REPO, "env": self.env, "capture_output": True, "text": True, "timeout": timeout}
        return subprocess.run(argv, check=False, **options, **_as_user(self.uid))


def _as_user(uid: int) -> dict:
    """subprocess arguments that run a child as `uid`, in its own group, with no supplementary groups."""
    return {"user": uid, "group": uid, "extra_groups": []}


def _processes_of(uid: int) -> list[int]:
    """Live processes of a uid (not zombies: a killed worker's orphans wait for the host's init to reap)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    entry.stat().st_uid == uid
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
                ):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _unused_uid() -> int:
    taken = {p.pw_uid for p in pwd.getpwall()}
    return next(uid for uid in range(61000, 62000) if uid not in taken and not _processes_of(uid))


def _others_can_run(path: str) -> bool:
    """Can a uid with no groups, owning nothing, execute this file (every directory on the way searchable)?"""
    real = Path(os.path.realpath(path))
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)


def _interpreter_for_others() -> str | None:
    """This Python's version, installed where an unprivileged user can run it (the host's pyenv may not)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}", shutil.which(f"python{version}")):
        if candidate and _others_can_run(candidate):
            probe = [candidate, "-c", "import sys; print(sys.version_info[:2])"]
            out = subprocess.run(probe, capture_output=True, text=True, check=False)
            if out.stdout.strip() == str(sys.version_info[:2]):
                return candidate
    return None


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    python = _interpreter_for_others()
    if python is None:
        pytest.skip("no interpreter of this Python version that an unprivileged user may execute")
    uid = _unused_uid()
    try_jail = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]
    jail = subprocess.run(try_jail, capture_output=True, text=True, check=False, **_as_user(uid))
    if jail.returncode != 0:  # e.g. Ubuntu's AppArmor rule against unprivileged user namespaces
        pytest.skip(f"bubblewrap cannot make a user namespace for an unprivileged user here: {jail.stderr}")
    base = Path(tempfile.mkdtemp(prefix="loong-unprivileged-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        home, tmp, cache = base / "home", base / "tmp", base / "cache"
        for d in (home, tmp, cache):
            d.mkdir()
            os.chown(d, uid, uid)
        shared = {
            "LOONG_CACHE_DIR": str(cache),
            "UV_OFFLINE": "1",
            "PYTHONPATH": f"{REPO}:{sysconfig.get_paths()['purelib']}",  # loong_env and its dependencies
        }
        env = {**shared, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp)}
        env |= {"PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        # The environments the suites use, made by root (whose uv cache this uid cannot read), with the
        # user's interpreter; uv leaves them world-readable, and ensure_env only reads them afterwards.
        imports = tomllib.loads((IMPORTS_DOMAIN / "domain.toml").read_text())["requirements"]
        prepare = "from loong_env.sandbox import ensure_env\nimport sys, json\n"
        prepare += "for r in json.loads(sys.argv[1]):\n    ensure_env(r, progress=False)\n"
        sets = json.dumps([[], imports])
        made = subprocess.run(
            [python, "-c", prepare, sets],
            env={**os.environ, **shared},
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr[-3000:]
        yield User(uid, python, env)
        assert _processes_of(uid) == [], "a process of the unprivileged runs outlived them"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_adversarial_and_rootfs_suites_pass_as_an_unprivileged_user(user: User) -> None:
    proc = user.run(
        [user.python, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider", "-W", "ignore"], 280
    )
    summary = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    assert proc.returncode == 0, f"{summary}\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert "skipped" not in summary[0] and "passed" in summary[0], summary


def test_without_cgroup_access_the_fallback_bound_is_stated_and_enforced(user: User) -> None:
    script = textwrap.dedent(
        """
        import json, logging
        from loong_env.sandbox import Sandbox
        logging.basicConfig(level=logging.WARNING, format="logged: %(message)s")
        with Sandbox([], memory_mb=256, max_processes=64, workers=1) as sb:
            res = sb.run_sync("import resource; print(resource.getrlimit(resource.RLIMIT_NPROC)[0])")
            print(json.dumps({"stats": sb.stats(), "nproc": res.stdout.strip()}))
        """
    )
    proc = user.run([user.python, "-c", script], 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    stats = out["stats"]
    assert stats["memory_bound"] == "per-process" and stats["cgroups"] == [] and not stats["pids_cgroup"]
    assert "NO memory cgroup" in stats["diagnostics"] and "at most 4 processes" in stats["diagnostics"]
    assert "64 MiB of address space" in stats["diagnostics"]  # 256 MiB split four ways
    assert "RLIMIT_NPROC" in stats["diagnostics"]
    assert out["nproc"] == str(4 + 2), (
        "RLIMIT_NPROC: the fallback's 4 processes + the worker and bwrap's init"
    )
    assert proc.stderr.count("logged: memory: NO memory cgroup") == 1, proc.stderr  # said once
