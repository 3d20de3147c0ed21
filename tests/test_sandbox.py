"""The Sandbox's promises to its callers: results not exceptions, input order, lazy start, cached envs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loong_env.sandbox import Sandbox, SandboxUnavailableError, ensure_env, normalize_requirements
from loong_env.sandbox.envs import MARKER, env_dir
from loong_env.types import ExecutionStatus

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sb():
    with Sandbox([], timeout_s=3.0, workers=2) as sandbox:
        yield sandbox


def test_creating_a_sandbox_starts_nothing():
    sandbox = Sandbox(["sympy==1.14.0"])
    assert sandbox.stats()["workers"] == 0
    sandbox.close_sync()


async def test_run_returns_printed_output(sb):
    res = await sb.run("print(6 * 7)")
    assert res.status is ExecutionStatus.ok
    assert res.stdout == "42\n"
    assert res.exit_code == 0


async def test_stdin_is_passed_to_the_code(sb):
    res = await sb.run("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3\n")
    assert res.stdout.strip() == "6"


async def test_an_exception_is_an_error_result_with_the_traceback(sb):
    res = await sb.run("def f():\n    raise KeyError('nope')\nf()")
    assert res.status is ExecutionStatus.error
    assert res.exit_code == 1
    assert "KeyError: 'nope'" in res.stderr
    assert 'File "<snippet>", line 2' in res.stderr


async def test_syntax_error_and_sys_exit_are_results(sb):
    bad, exit3, exit0 = await sb.run_many(["def (:", "import sys; sys.exit(3)", "raise SystemExit"])
    assert bad.status is ExecutionStatus.error and "SyntaxError" in bad.stderr
    assert exit3.status is ExecutionStatus.error and exit3.exit_code == 3
    assert exit0.status is ExecutionStatus.ok


async def test_run_many_keeps_input_order_and_one_failure_does_not_touch_others(sb):
    codes = [f"print({i})" if i != 5 else "while True: pass" for i in range(12)]
    results = await sb.run_many(codes, concurrency=3)
    assert [r.stdout.strip() for i, r in enumerate(results) if i != 5] == [
        str(i) for i in range(12) if i != 5
    ]
    assert results[5].status is ExecutionStatus.timeout


def test_runs_do_not_see_each_others_state(sb):
    first = sb.run_sync(
        "import builtins, os\nbuiltins.LEAK = 1\nopen('left.txt', 'w').write('x')\nprint(os.getcwd())"
    )
    second = sb.run_sync("import builtins, os\nprint(hasattr(builtins, 'LEAK'), os.path.exists('left.txt'))")
    assert first.status is ExecutionStatus.ok
    assert second.stdout.strip() == "False False"


def test_sync_wrappers_work_without_an_event_loop(sb):
    assert sb.run_sync("print('hi')").stdout == "hi\n"
    assert [r.stdout for r in sb.run_many_sync(["print(1)", "print(2)"])] == ["1\n", "2\n"]


def test_the_same_sandbox_serves_several_event_loops(sb):
    pids_before = asyncio.run(sb.run("print(1)")) and sb.stats()["worker_pids"]
    assert asyncio.run(sb.run("print(2)")).stdout == "2\n"
    assert sb.stats()["worker_pids"] == pids_before  # warm workers reused, not restarted


def test_a_killed_worker_is_replaced_transparently():
    with Sandbox([], timeout_s=3.0, workers=1) as sandbox:
        sandbox.start_sync()
        (pid,) = sandbox.stats()["worker_pids"]
        os.killpg(pid, 9)
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{pid}/status").read_text() and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker is observably dead (a zombie) before the next run asks for it
        res = sandbox.run_sync("print('after')")
        assert res.stdout == "after\n"
        assert sandbox.stats()["worker_pids"] != [pid]


async def test_async_context_manager_closes_workers():
    async with Sandbox([], workers=1) as sandbox:
        await sandbox.run("print(1)")
        (pid,) = sandbox.stats()["worker_pids"]
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_shared_returns_one_sandbox_per_requirement_set():
    a = Sandbox.shared(["SymPy==1.14.0"])
    b = Sandbox.shared(["sympy==1.14.0"])
    c = Sandbox.shared([])
    assert a is b
    assert a is not c


def test_missing_bubblewrap_is_refused_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox = Sandbox([], python=sys.executable)
    with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap"):
        sandbox.run_sync("print(1)")
    sandbox.close_sync()


def test_running_without_isolation_is_loud():
    with pytest.warns(RuntimeWarning, match="WITHOUT a jail"):
        sandbox = Sandbox([], isolation="none")
    sandbox.close_sync()


def test_requirements_are_normalised():
    assert normalize_requirements(["SymPy==1.14.0", " sympy==1.14.0", "", "Py_Thing>=1"]) == [
        "py-thing>=1",
        "sympy==1.14.0",
    ]
    with pytest.raises(ValueError, match="invalid requirement"):
        normalize_requirements(["not a requirement !!"])


def test_empty_requirement_set_gets_an_isolated_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LOONG_CACHE_DIR", str(tmp_path))
    python = ensure_env([], progress=False)
    assert python.exists() and (env_dir([]) / MARKER).is_file()
    probe = subprocess.run([python, "-c", "import pydantic"], capture_output=True, text=True, check=False)
    assert probe.returncode != 0, "the project's own packages leaked into the sandbox environment"
    marker_mtime = (env_dir([]) / MARKER).stat().st_mtime_ns
    assert ensure_env([], progress=False) == python
    assert (env_dir([]) / MARKER).stat().st_mtime_ns == marker_mtime  # reused, not rebuilt


def test_two_processes_racing_build_the_env_once(tmp_path):
    script = textwrap.dedent(
        """
        from loong_env.sandbox import ensure_env
        print(ensure_env([], progress=True))
        """
    )
    env = {**os.environ, "LOONG_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    assert sum(err.count("creating sandbox environment") for _, err in outs) == 1
