"""Hostile snippets must be contained: each test is one attack, and after each the host is unaffected.

After every attack the autouse fixture checks the promises that hold for all of them: no process of the
run is left in the worker tree, the worker's scratch space is empty again, the worker holds no more memory
than before, and the sandbox still answers.

tests/test_sandbox_unprivileged.py runs this file a second time as an unprivileged user (RLIMIT_NPROC, and
no cgroups: the stated per-process fallback), so every attack here must hold in both modes.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from loong_env.sandbox import Sandbox
from loong_env.sandbox.cgroups import ALLOWANCE_MB
from loong_env.types import ExecutionStatus

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
MAX_PROCS = 16
MEMORY_MB = 256
SCRATCH_MB = 128  # below MEMORY_MB: files on the RAM-backed scratch count towards a run's memory too
MiB = 1 << 20
LIST_SCRATCH = "import os; print([os.path.join(d, n) for d in ('/tmp', '/dev/shm') for n in os.listdir(d)])"


LIMITS = {"memory_mb": MEMORY_MB, "scratch_mb": SCRATCH_MB, "max_processes": MAX_PROCS, "max_output_bytes": 100_000}


@pytest.fixture(scope="module")
def sb():
    with Sandbox([], timeout_s=3.0, workers=1, **LIMITS) as sandbox:
        sandbox.start_sync()
        yield sandbox


@pytest.fixture(scope="module")
def brief():
    """The same jail with a 1 s limit, for attacks that only the time limit ends (its length is not the point:
    each of them would burn CPU, on many processes, for as long as the limit allows)."""
    with Sandbox([], timeout_s=1.0, workers=1, **LIMITS) as sandbox:
        sandbox.start_sync()
        yield sandbox


def _held_bytes(sb: Sandbox) -> int:
    """Memory the worker holds: its cgroup's working set where there is one, else its processes' RSS."""
    stats = sb.stats()
    return sum(stats["memory_held_bytes"]) if stats["memory_held_bytes"] else sum(stats["rss_kb"]) * 1024


@pytest.fixture(autouse=True)
def host_unaffected(request):
    """Every attack: same worker and cgroups afterwards, no leftover processes or memory, scratch empty."""
    sb = request.getfixturevalue("brief" if "brief" in request.fixturenames else "sb")  # the one attacked
    before = sb.stats()
    held_before = _held_bytes(sb)
    yield
    after = sb.stats()
    assert after["processes"] == before["processes"], "a process of the run outlived it"
    assert after["cgroups"] == before["cgroups"], "the worker's cgroups changed (or it was replaced)"
    probe = sb.run_sync(LIST_SCRATCH)
    assert probe.status is ExecutionStatus.ok, probe
    found = eval(probe.stdout)
    own = [path for path in found if path.startswith("/tmp/run-")]
    assert len(own) == 1 and len(found) == 1, f"files or scratch dirs of earlier runs were left: {found}"
    assert _held_bytes(sb) - held_before < 32 * MiB, "the worker holds memory the run left behind"


def test_cannot_connect_to_a_server_on_the_hosts_loopback(sb):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
    res = sb.run_sync(code)
    server.close()
    assert res.status is ExecutionStatus.error
    assert "connected" not in res.stdout
    assert "Connection refused" in res.stderr
    assert accepted in ([], [None])


def _accept(server: socket.socket) -> object:
    try:
        return server.accept()
    except OSError:
        return None


def test_cannot_reach_an_outside_address(sb):
    res = sb.run_sync("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\nprint('reached')")
    assert res.status is ExecutionStatus.error
    assert "reached" not in res.stdout
    assert "Network is unreachable" in res.stderr


def test_parent_secrets_do_not_reach_the_code(monkeypatch):
    secret = "sk-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try: print(open(p, 'rb').read())\n"
        "    except OSError: pass\n"
    )
    with Sandbox([], timeout_s=5, workers=1) as fresh:  # started after the secret was set
        res = fresh.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    assert "PATH" in res.stdout
    assert secret not in res.stdout
    assert "OPENAI_API_KEY" not in res.stdout


def test_writes_outside_scratch_do_not_reach_the_host(sb):
    name = f"loong-probe-{uuid.uuid4().hex}"
    targets = [Path("/tmp") / name, Path.home() / name, REPO / name, Path("/var/tmp") / name]
    code = "import os\n" + "".join(
        f"try:\n    open({str(t)!r}, 'w').write('x'); print('wrote', {str(t)!r})\n"
        f"except OSError as e:\n    print('refused', e.errno)\n"
        for t in targets
    )
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    for target in targets:
        assert not target.exists(), f"the snippet created {target} on the host"
    # The host's read-only tree refuses outright; /tmp and $HOME are private in-sandbox copies (so a repo
    # checked out under /tmp or $HOME lands in the private copy, which the host never sees).
    private = (Path("/tmp"), Path.home())
    must_refuse = [t for t in targets if not any(t.is_relative_to(p) for p in private)]
    assert must_refuse, "at least /var/tmp is outside the private copies"
    for target in must_refuse:
        assert f"wrote {target}" not in res.stdout, res.stdout


def test_cannot_delete_files_outside_scratch(sb):
    place = REPO if os.access(REPO, os.W_OK) else Path.home()  # an unprivileged user may not own the checkout
    victim = place / f".loong-victim-{uuid.uuid4().hex}"
    victim.write_text("keep me")
    try:
        code = f"import os, shutil\ntry:\n    os.remove({str(victim)!r})\nexcept OSError as e:\n    print(e.errno)\n"
        code += "shutil.rmtree('/etc', ignore_errors=True)\n"
        res = sb.run_sync(code)
        assert res.status is ExecutionStatus.ok, res
        assert victim.read_text() == "keep me"
        assert Path("/etc/passwd").exists()
    finally:
        victim.unlink()


def test_scratch_made_unreadable_is_still_removed(sb):
    # Without CAP_DAC_OVERRIDE a plain rmtree cannot enter a chmod-0 directory; the fixture checks the dir is gone.
    code = (
        "import os\n"
        "os.makedirs('a/b/c')\n"
        "open('a/b/c/f', 'w').write('x' * 1000)\n"
        "os.symlink('/tmp', 'a/to-tmp')\n"  # never followed by the clean-up's chmod
        "for d in ('a/b/c', 'a/b', 'a'):\n"
        "    os.chmod(d, 0)\n"
        "os.chmod('.', 0o500)\n"
        "print('locked')\n"
    )
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    assert res.stdout == "locked\n"
    probe = sb.run_sync("import os, stat\nprint(oct(stat.S_IMODE(os.stat('/tmp').st_mode)))")
    assert probe.stdout.strip() in ("0o755", "0o1777"), "the clean-up changed a symlink's target"


def test_fork_bomb_is_bounded(sb):
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print(n, e.errno)\n"
    )
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    forked = int(res.stdout.split()[0])
    assert 0 < forked <= MAX_PROCS


def test_classic_fork_bomb_ends_with_its_run(brief):
    res = brief.run_sync("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n")
    assert res.status is ExecutionStatus.timeout


def test_memory_bomb_hits_the_memory_limit(sb):
    res = sb.run_sync("x = bytearray(8 * 2**30)")
    assert res.status is ExecutionStatus.memory_limit
    res = sb.run_sync("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))")
    assert res.status is ExecutionStatus.memory_limit


def test_infinite_loop_times_out(brief):
    res = brief.run_sync("while True:\n    pass")
    assert res.status is ExecutionStatus.timeout
    assert res.duration_s < brief.limits.timeout_s + 2


def test_daemonised_grandchildren_do_not_outlive_the_run(sb):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True: pass\n"  # a busy, daemonised grandchild
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok
    assert res.stdout.strip() == "parent done"


def test_busy_children_that_ignore_sigterm_are_killed_with_a_timed_out_run(brief):
    code = (
        "import os, signal\n"
        "for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "for _ in range(2):  # stays below the unprivileged fallback's 4 processes per run\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        break\n"
        "while True:\n"
        "    pass\n"
    )
    res = brief.run_sync(code)
    assert res.status is ExecutionStatus.timeout  # the fixture checks that none of them is left


HOG_CHILDREN = """
import os, time
pids = []
for _ in range(6):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            block = b"x" * (100 << 20)  # written, so resident: 100 MiB, well under the per-process limit
        except MemoryError:
            os._exit(3)
        time.sleep(1)
        os._exit(0)
    pids.append(pid)
print(sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids))
"""


def test_children_together_cannot_hold_more_than_the_runs_memory(sb):
    (worker,) = sb.stats()["worker_pids"]
    res = sb.run_sync(HOG_CHILDREN)
    held = int(res.stdout) if res.stdout.strip() else 0  # children that got and kept their 100 MiB
    if sb.stats()["memory_bound"] == "cgroup":
        assert res.status is ExecutionStatus.memory_limit, res
        assert "went over memory_mb" in res.stderr
        assert held * 100 <= MEMORY_MB + ALLOWANCE_MB
    else:  # the fallback: each process gets a quarter of the run's memory, which 100 MiB exceeds
        assert res.status is ExecutionStatus.ok, res
        assert held == 0, res
    assert sb.stats()["worker_pids"] == [worker], "the worker was killed instead of the run"


def test_a_run_over_its_memory_does_not_disturb_a_run_on_another_worker():
    with Sandbox([], timeout_s=5.0, memory_mb=MEMORY_MB, workers=2) as two:
        two.start_sync()
        hog, calm = two.run_many_sync([HOG_CHILDREN, "import time; time.sleep(1.5); print('fine')"])
        assert calm.status is ExecutionStatus.ok and calm.stdout == "fine\n", calm
        if two.stats()["memory_bound"] == "cgroup":
            assert hog.status is ExecutionStatus.memory_limit, hog
        assert two.stats()["workers"] == 2


def test_children_writing_to_the_scratch_mounts_stop_at_their_size(sb):
    code = """
import json
import os
pids = []
for i in range(6):
    try:
        pid = os.fork()
    except OSError:  # past the process limit: the ones already started write on
        break
    if pid == 0:
        d, n = ("/tmp", "/dev/shm")[i % 2], 0
        try:
            while True:
                with open(f"{d}/fill-{i}-{n}", "wb") as f:
                    f.write(b"x" * (8 << 20))
                n += 1
        except OSError:
            os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
print([sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("fill-")) >> 20
       for d in ("/tmp", "/dev/shm")])
"""
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok, res
    tmp_mb, shm_mb = eval(res.stdout)
    assert 0 < tmp_mb <= SCRATCH_MB and 0 < shm_mb <= SCRATCH_MB, res.stdout  # the fixture: all removed after


def test_closing_a_sandbox_removes_its_cgroups():
    sandbox = Sandbox([], workers=2)
    sandbox.start_sync()
    stats = sandbox.stats()
    sandbox.close_sync()
    if stats["memory_bound"] == "cgroup" or stats["pids_cgroup"]:
        assert len(stats["cgroups"]) >= 2, stats["cgroups"]  # one (or one per controller) per worker
        assert [p for p in stats["cgroups"] if Path(p).exists()] == []
    else:
        assert stats["cgroups"] == []
        assert "NO memory cgroup" in stats["diagnostics"], stats["diagnostics"]


def test_output_flood_is_capped(sb):
    res = sb.run_sync("while True:\n    print('x' * 10000)")
    assert res.status is ExecutionStatus.output_limit
    assert len(res.stdout.encode()) <= sb.limits.max_output_bytes


def test_killing_the_parent_and_everyone_else_hurts_nobody(sb):
    worker_pids = sb.stats()["worker_pids"]
    code = (
        "import os, signal\n"
        "for pid in [os.getppid(), 1, -1] + [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try: os.kill(pid, signal.SIGKILL)\n"
        "    except OSError: pass\n"
        "print('still here')\n"
    )
    res = sb.run_sync(code)
    assert res.status in (ExecutionStatus.ok, ExecutionStatus.killed)
    assert sb.stats()["worker_pids"] == worker_pids, "the worker was killed and had to be replaced"
    assert os.getppid() > 1


def test_reading_stdin_gets_end_of_file_instead_of_hanging(brief):
    res = brief.run_sync("import sys\ndata = sys.stdin.read()\nprint(len(data))")
    assert res.status is ExecutionStatus.ok
    assert res.stdout.strip() == "0"
    res = brief.run_sync("import sys\nwhile True:\n    sys.stdin.read()")
    assert res.status is ExecutionStatus.timeout


def test_huge_integer_arithmetic_is_stopped(brief):
    res = brief.run_sync("x = 10 ** (10 ** 10)\nprint(x)")
    assert res.status in (ExecutionStatus.timeout, ExecutionStatus.memory_limit)
    res = brief.run_sync("print(10 ** 100000)")  # Python's own digit limit for int -> str
    assert res.status is ExecutionStatus.error
    assert "ValueError" in res.stderr


def test_deep_recursion_is_a_result_not_a_crash_of_the_host(brief):
    code = "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)"
    res = brief.run_sync(code)
    # Python 3.11 keeps Python frames off the C stack, so this ends by memory, time or a RecursionError.
    assert res.status is not ExecutionStatus.ok


def test_files_left_on_private_mounts_never_reach_the_next_run(sb):
    """Runs on one worker share its private /tmp, $HOME and /dev/shm; what one leaves there is removed."""
    name = f"loong-leftover-{uuid.uuid4().hex}"
    places = ["/tmp", "/dev/shm", str(Path.home()), str(Path.home() / ".cache")]
    write = "import os\n" + "".join(
        f"try:\n    os.makedirs({p!r}, exist_ok=True); open(os.path.join({p!r}, {name!r}), 'w').write('x')\n"
        f"    print('wrote', {p!r})\nexcept OSError as e:\n    print('refused', {p!r}, e.errno)\n"
        for p in places
    )
    first = sb.run_sync(write)
    assert first.status is ExecutionStatus.ok, first
    assert first.stdout.count("wrote") >= 2, first.stdout  # /tmp and /dev/shm at least are writable in-jail
    look = "import os\n" + "".join(f"print(os.path.exists(os.path.join({p!r}, {name!r})))\n" for p in places)
    second = sb.run_sync(look)
    assert second.stdout.split() == ["False"] * len(places), second.stdout


def test_a_run_that_fills_tmp_does_not_fail_the_next_one(sb):
    fill = (
        "import os\n"
        "os.makedirs('/tmp/fill', exist_ok=True)\n"
        "i = 0\n"
        "try:\n"
        "    while i < 10_000:\n"
        "        with open(f'/tmp/fill/{i}', 'wb') as f:\n"
        "            f.write(b'x' * (32 << 20))\n"
        "        i += 1\n"
        "except OSError as e:\n"
        "    print('full after', i, e.errno)\n"
    )
    first = sb.run_sync(fill)
    assert "full after" in first.stdout, first
    second = sb.run_sync("open('/tmp/probe', 'wb').write(b'y' * (1 << 20)); print('ok')")
    assert second.status is ExecutionStatus.ok and second.stdout.strip() == "ok", second


SYSCALL_PROBE = """
import ctypes, errno, json, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"x86_64": {"ptrace": 101, "mount": 165, "keyctl": 250, "bpf": 321, "userfaultfd": 323,
                 "init_module": 175, "unshare": 272, "setns": 308, "perf_event_open": 298, "personality": 135},
      "aarch64": {"ptrace": 117, "mount": 40, "keyctl": 219, "bpf": 280, "userfaultfd": 282,
                  "init_module": 105, "unshare": 97, "setns": 268, "perf_event_open": 241, "personality": 92}}
ARGS = {"ptrace": (0, 0, 0, 0), "mount": (b"none", b"/tmp", b"tmpfs", 0, None), "keyctl": (0, 0, 0, 0, 0),
        "bpf": (0, None, 0), "userfaultfd": (0,), "init_module": (None, 0, b""),
        "unshare": (0x10000000,), "setns": (os.open("/proc/self/ns/uts", os.O_RDONLY), 0),
        "perf_event_open": (None, 0, -1, -1, 0),
        "personality": (0xFFFFFFFF,)}
out = {}
for name, nr in NR[platform.machine()].items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *ARGS[name])
    out[name] = errno.errorcode.get(ctypes.get_errno(), "0") if rc == -1 else f"returned {rc}"
print(json.dumps(out))
"""


def test_runs_are_an_unprivileged_uid_whatever_the_parents(sb):
    res = sb.run_sync(
        "import os; print(os.getuid(), os.geteuid(), os.getgid(), open('/proc/self/uid_map').read().split())"
    )
    assert res.status is ExecutionStatus.ok, res
    uid, euid, gid, mapping = res.stdout.split(" ", 3)
    assert int(uid) == int(euid) != 0 and int(gid) != 0, res.stdout
    inside, outside, count = eval(mapping)
    assert inside == uid and count == "1" and int(outside) == os.getuid(), mapping  # one id: the parent's


def test_system_calls_numeric_code_never_needs_are_denied(sb):
    res = sb.run_sync(SYSCALL_PROBE)
    assert res.status is ExecutionStatus.ok, res
    denied = json.loads(res.stdout)
    assert denied == dict.fromkeys(denied, "EPERM") and len(denied) == 10, denied


def test_threads_processes_and_subprocesses_still_work_under_the_filters(sb):
    code = (
        "import subprocess, sys, threading, os\n"
        "from concurrent.futures import ThreadPoolExecutor, ProcessPoolExecutor\n"
        "with ThreadPoolExecutor(4) as ex: a = sum(ex.map(abs, range(-10, 10)))\n"
        "with ProcessPoolExecutor(2) as ex: b = sum(ex.map(abs, range(-10, 10)))\n"
        "c = subprocess.run([sys.executable, '-c', 'print(6*7)'], capture_output=True, text=True).stdout\n"
        "print(a, b, c.strip())\n"
    )
    res = sb.run_sync(code)
    assert res.status is ExecutionStatus.ok and res.stdout.split() == ["100", "100", "42"], res
