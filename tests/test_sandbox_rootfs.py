"""A run sees only what it needs: the interpreter, its environment and the few system files they load.

tests/test_sandbox_unprivileged.py runs this file a second time as an unprivileged user, with a different
interpreter (the distribution's python), so nothing here may assume pyenv, root or this checkout's layout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from loong_env.sandbox import Sandbox, SandboxUnavailableError, cache_root, ensure_env, rootfs
from loong_env.seeds.dataset import load_seeds
from loong_env.seeds.validation import validate_seeds
from loong_env.types import ExecutionStatus

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[1]
IMPORTS_DOMAIN = Path(__file__).parent / "data" / "sandbox_imports"  # prepared by `make setup`
JAIL_MOUNTS = {"/dev", "/proc", "/tmp", "/loong"}  # fresh in every jail, none from the host
ETC_ALLOWED = {
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
}


@pytest.fixture(scope="module")
def python() -> Path:
    return ensure_env([], progress=False)


@pytest.fixture(scope="module")
def sb():
    with Sandbox([], timeout_s=10.0, workers=1) as sandbox:
        sandbox.start_sync()
        yield sandbox


def _stdout(sb: Sandbox, code: str) -> str:
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    return res.stdout


def _plant(path: Path, text: str) -> bool:
    try:
        path.write_text(text)
        return True
    except OSError:
        return False


def test_canary_secrets_on_the_host_cannot_be_read_from_a_run(sb):
    token = f"canary-{uuid.uuid4().hex}"
    places = [
        REPO / f".loong-{token}.env",  # a project checkout keeps loong.toml and .env files
        Path.home() / f".loong-{token}",
        cache_root() / f"loong-{token}",
        Path("/etc") / f"loong-{token}",
        Path("/var/tmp") / f"loong-{token}",
    ]
    planted = [p for p in places if _plant(p, token)]
    try:
        assert Path.home() / f".loong-{token}" in planted, "the user's home must be writable for this test"
        targets = [*map(str, planted), "/etc/shadow", "/etc/gshadow", str(REPO / "pyproject.toml")]
        code = (
            "import json\nout = {}\n"
            f"for path in {targets!r}:\n"
            "    try:\n        out[path] = open(path).read()\n"
            "    except OSError as exc:\n        out[path] = type(exc).__name__\n"
            "print(json.dumps(out))\n"
        )
        seen = json.loads(_stdout(sb, code))
    finally:
        for path in planted:
            path.unlink()
    assert seen == dict.fromkeys(targets, "FileNotFoundError"), seen


def test_the_jail_holds_only_the_planned_paths_and_what_leads_to_them(sb, python):
    plan = rootfs.plan_for(python)
    planned = [*plan.binds, *(where for where, _ in plan.symlinks)]
    code = (
        "import json, os\n"
        f"planned, ours, extra = {planned!r}, {sorted(JAIL_MOUNTS)!r}, []\n"
        "def walk(d):\n"
        "    for e in os.scandir(d):\n"
        "        if e.path in planned or e.path in ours:\n"
        "            continue\n"
        "        if e.is_dir(follow_symlinks=False) and any(p.startswith(e.path + '/') for p in planned):\n"
        "            walk(e.path)\n"
        "        else:\n"
        "            extra.append(e.path)\n"
        "walk('/')\n"
        "print(json.dumps([extra, sorted(os.listdir('/'))]))\n"
    )
    extra, top = json.loads(_stdout(sb, code))
    assert extra == [], f"in the jail but not planned: {extra}"
    assert {"dev", "proc", "tmp"} <= set(top)
    for forbidden in ("home", "srv", "mnt", "boot", "sys", "run", "media"):
        assert forbidden not in top or any(p.startswith(f"/{forbidden}/") for p in planned), top


def test_the_plan_binds_nothing_of_the_checkout_the_home_or_etc_beyond_the_needed_files(python):
    plan = rootfs.plan_for(python)
    home = Path.home().resolve()
    envs = (cache_root() / "envs").resolve()
    base_prefix = subprocess.check_output([str(python), "-I", "-c", "import sys; print(sys.base_prefix)"])
    interpreter = Path(base_prefix.decode().strip()).resolve()
    for bind in map(Path, plan.binds):
        assert not bind.is_relative_to(REPO), bind
        if bind.is_relative_to(home) and home != Path("/"):
            assert bind.is_relative_to(envs) or bind.is_relative_to(interpreter), bind
        if bind.is_relative_to("/etc"):
            assert str(bind) in ETC_ALLOWED, bind
        assert bind.resolve() == bind, "binds are real paths; symlinks are recreated, not bound"
        assert plan.reasons[str(bind)]


def test_standard_library_modules_that_need_system_files_work_in_the_jail(sb):
    code = """
import ctypes, getpass, locale, lzma, sqlite3, ssl, subprocess, sys, threading, zoneinfo
context = ssl.create_default_context()
assert context.cert_store_stats()["x509_ca"] > 0, "no CA certificates"
print(zoneinfo.ZoneInfo("Europe/Paris").utcoffset(__import__("datetime").datetime(2024, 1, 1)))
print(locale.setlocale(locale.LC_ALL, ""), getpass.getuser())
thread = threading.Thread(target=lambda: None)
thread.start()
thread.join()
print(subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout.strip())
print(sqlite3.connect(":memory:").execute("select 6 * 7").fetchone()[0], len(lzma.compress(b"x")) > 0)
print(ctypes.CDLL(None).getpid() == __import__("os").getpid())
"""
    assert _stdout(sb, code).split("\n")[:-1] == ["1:00:00", "C.UTF-8 sandbox", "child", "42 True", "True"]


def test_sympy_numpy_scipy_networkx_and_pandas_work_in_their_environment(monkeypatch):
    monkeypatch.setenv("UV_OFFLINE", "1")  # set-up made this environment; a test must not download it
    report = asyncio.run(validate_seeds(load_seeds(IMPORTS_DOMAIN)))
    assert [f"{c.origin}: {c.reason}" for c in report.failures] == []
    assert sum(d.passed for d in report.domains) == 1


def test_library_resolution_agrees_with_the_dynamic_loader(python):
    executable = os.path.realpath(python)
    elf = rootfs.read_elf(executable)
    assert elf is not None and elf.interp
    listed = subprocess.run([elf.interp, "--list", executable], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip(f"{elf.interp} has no --list (not glibc's loader)")
    loader = {}
    for line in listed.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if arrow and rest.startswith("/"):
            loader[name] = os.path.realpath(rest.split(" (", 1)[0])
    ours = {n: rootfs.find_library(n, elf, os.path.dirname(executable), [], "") for n in elf.needed}
    assert {n: os.path.realpath(p) for n, p in ours.items() if p} == {n: loader[n] for n in elf.needed}


def test_an_interpreter_that_cannot_be_bound_is_refused_with_its_path():
    sandbox = Sandbox([], python="/nonexistent/loong/bin/python")
    with pytest.raises(SandboxUnavailableError, match="/nonexistent/loong/bin/python"):
        sandbox.run_sync("print(1)")
    sandbox.close_sync()


def test_a_run_that_moves_an_environment_kept_under_tmp_does_not_break_the_next_run(monkeypatch):
    """An environment under /tmp is bound inside the jail's writable /tmp, where a run can rename it."""
    base = Path(tempfile.mkdtemp(prefix="loong-env-in-tmp-", dir="/tmp"))
    monkeypatch.setenv("LOONG_CACHE_DIR", str(base))
    monkeypatch.setenv("UV_OFFLINE", "1")
    try:
        python = ensure_env([], progress=False)
        with Sandbox([], python=python, workers=1) as sandbox:
            moved = sandbox.run_sync(f"import os; os.rename({str(base)!r}, '/tmp/moved'); print('moved')")
            assert moved.stdout == "moved\n", moved
            after = sandbox.run_sync("import os, sys; print(os.path.exists(sys.executable))")
            assert after.stdout == "True\n", after
    finally:
        shutil.rmtree(base)
