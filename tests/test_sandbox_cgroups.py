"""Per-worker cgroups on v1 and v2: where they are made, what is written, and when we fall back.

This machine's memory controller is on cgroup v1, so v2 is checked against a fake kernel: a directory tree
whose new cgroups get the kernel's interface files, and whose cgroup.subtree_control refuses controllers
while the cgroup holds processes (cgroup v2's "no internal processes" rule). The real v1 kernel is used by
the last test and by tests/test_sandbox_adversarial.py.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from loong_env.sandbox import Sandbox, cgroups

MiB = 1 << 20
PID = str(os.getpid())
V1_FILES = {
    "cgroup.procs": "",
    "pids.max": "max",
    "memory.limit_in_bytes": "9223372036854771712",
    "memory.memsw.limit_in_bytes": "9223372036854771712",
    "memory.swappiness": "60",
    "memory.usage_in_bytes": str(50 * MiB),
    "memory.max_usage_in_bytes": str(60 * MiB),
    "memory.stat": f"total_inactive_file {8 * MiB}\ntotal_active_file {12 * MiB}\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
}
V2_FILES = {
    "cgroup.procs": "",
    "cgroup.controllers": "memory pids",
    "cgroup.subtree_control": "",
    "pids.max": "max",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.current": str(50 * MiB),
    "memory.peak": str(60 * MiB),
    "memory.stat": f"inactive_file {8 * MiB}\nactive_file {12 * MiB}\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
}


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A fake cgroup filesystem under tmp_path; returns a function that makes a cgroup directory."""
    files_for: dict[Path, dict[str, str]] = {}

    def make(path: Path, files: dict[str, str]) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (path / name).write_text(text)
        files_for[path] = files
        return path

    def mkdir(path: Path) -> None:
        make(path, files_for[path.parent] | {"cgroup.procs": "", "cgroup.subtree_control": ""})

    def rmdir(path: Path) -> None:
        if (path / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "busy")
        shutil.rmtree(path)

    real_write = cgroups._write

    def write(path: Path, text: str) -> None:
        if path.name == "cgroup.subtree_control" and (path.parent / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "no internal processes")
        if path.name == "cgroup.procs":  # a move: out of every other cgroup of this fake hierarchy
            for other in files_for:
                procs = other / "cgroup.procs"
                if procs.exists():
                    procs.write_text(" ".join(p for p in procs.read_text().split() if p != text))
            text = f"{(path.read_text() + ' ') if path.exists() else ''}{text}".strip()
        real_write(path, text)

    monkeypatch.setattr(cgroups, "_mkdir", mkdir)
    monkeypatch.setattr(cgroups, "_rmdir", rmdir)
    monkeypatch.setattr(cgroups, "_write", write)
    return make


def _proc(tmp_path: Path, mountinfo: str, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text(mountinfo)
    (proc / "cgroup").write_text(cgroup)
    return proc


def _v2_host(tmp_path: Path, kernel, procs: str) -> tuple[Path, Path]:
    root = tmp_path / "unified"
    kernel(root, V2_FILES)
    own = kernel(root / "user.slice" / "me.scope", V2_FILES | {"cgroup.procs": procs})
    proc = _proc(
        tmp_path, f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n", "0::/user.slice/me.scope\n"
    )
    return proc, own


def test_v1_cgroups_are_made_below_our_own_cgroup_of_each_controller(tmp_path, kernel):
    memory, pids = tmp_path / "memory", tmp_path / "pids"
    own_memory = kernel(memory / "session" / "42", V1_FILES)
    kernel(pids, V1_FILES)
    mountinfo = (
        f"35 31 0:32 / {memory} rw,relatime - cgroup cgroup rw,memory\n"
        f"39 31 0:36 / {pids} rw,relatime - cgroup cgroup rw,pids\n"
        f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw\n"  # no controllers there
    )
    kernel(tmp_path / "unified", {"cgroup.controllers": "hugetlb", "cgroup.procs": ""})
    proc = _proc(tmp_path, mountinfo, "8:pids:/\n4:memory:/session/42\n0::/\n")
    hierarchies, why_not = cgroups.discover(proc)
    assert why_not == {}
    assert {(h.version, h.path, h.controllers) for h in hierarchies} == {
        (1, own_memory, ("memory",)),
        (1, pids, ("pids",)),
    }
    assert not list(own_memory.glob("loong-*")), "the probe cgroup was left behind"


def test_v2_controllers_are_enabled_for_the_worker_cgroups_below_ours(tmp_path, kernel):
    proc, own = _v2_host(tmp_path, kernel, procs="")
    hierarchies, why_not = cgroups.discover(proc)
    assert why_not == {}
    assert hierarchies == [cgroups.Hierarchy(2, own, ("memory", "pids"))]
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_v2_with_only_us_in_our_cgroup_moves_us_into_a_leaf_to_enable_the_controllers(tmp_path, kernel):
    proc, own = _v2_host(tmp_path, kernel, procs=PID)
    hierarchies, why_not = cgroups.discover(proc)
    assert why_not == {} and hierarchies == [cgroups.Hierarchy(2, own, ("memory", "pids"))]
    assert (own / f"loong-host-{PID}" / "cgroup.procs").read_text() == PID
    assert (own / "cgroup.procs").read_text() == ""
    (proc / "cgroup").write_text(f"0::/user.slice/me.scope/loong-host-{PID}\n")  # where we are now
    assert cgroups.discover(proc) == (hierarchies, {}), "a second Sandbox must not nest another leaf"


def test_v2_with_other_processes_in_our_cgroup_falls_back_and_says_how_to_fix_it(tmp_path, kernel):
    proc, own = _v2_host(tmp_path, kernel, procs=f"{PID} 1")
    hierarchies, why_not = cgroups.discover(proc)
    assert hierarchies == [] and not list(own.glob("loong-*")), "someone else's processes were moved"
    assert "holds other processes" in why_not["memory"] and "Delegate=yes" in why_not["memory"]
    text = cgroups.describe(hierarchies, why_not, memory_mb=1024, max_processes=64)
    assert "NO memory cgroup" in text and "at most 4 processes" in text and "256 MiB" in text


def test_a_v2_worker_cgroup_gets_pids_no_swap_a_memory_limit_and_counts_oom_kills(tmp_path, kernel):
    own = kernel(tmp_path / "me", V2_FILES)
    worker = cgroups.WorkerCgroup([cgroups.Hierarchy(2, own, ("memory", "pids"))], "w1", max_pids=68)
    (path,) = worker.dirs
    assert (path / "pids.max").read_text() == "68"
    assert (path / "memory.swap.max").read_text() == "0"
    assert worker.wrap(["python"])[-2:] == ["--", "python"] and str(path / "cgroup.procs") in worker.wrap([])
    limit = worker.limit_memory(256)
    assert limit == (50 - 8 - 12) * MiB + (256 + cgroups.ALLOWANCE_MB) * MiB  # working set + run + allowance
    assert (path / "memory.max").read_text() == str(limit) and worker.limit() == limit
    assert worker.peak() == 60 * MiB
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert worker.oom_kills() == 2
    worker.remove()
    assert not path.exists()


def test_a_v1_worker_cgroup_limits_memory_and_memory_plus_swap_alike(tmp_path, kernel):
    memory, pids = kernel(tmp_path / "memory", V1_FILES), kernel(tmp_path / "pids", V1_FILES)
    hierarchies = [cgroups.Hierarchy(1, memory, ("memory",)), cgroups.Hierarchy(1, pids, ("pids",))]
    worker = cgroups.WorkerCgroup(hierarchies, "w1", max_pids=20)
    mem_dir, pids_dir = worker.dirs
    assert (pids_dir / "pids.max").read_text() == "20"
    assert (mem_dir / "memory.swappiness").read_text() == "0"
    limit = worker.limit_memory(100)
    assert (mem_dir / "memory.limit_in_bytes").read_text() == str(limit)
    assert (mem_dir / "memory.memsw.limit_in_bytes").read_text() == str(limit)  # no room left for swap
    (mem_dir / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    assert worker.oom_kills() == 5
    worker.remove()
    assert not mem_dir.exists() and not pids_dir.exists()


def test_the_fallback_splits_a_runs_memory_between_at_most_four_processes():
    assert cgroups.fallback_limits(memory_mb=1024, max_processes=64) == (256, 4)
    assert cgroups.fallback_limits(memory_mb=1024, max_processes=2) == (512, 2)
    assert cgroups.fallback_limits(memory_mb=2, max_processes=64) == (1, 4)


def test_on_this_kernel_a_workers_limit_is_its_working_set_plus_the_runs_memory():
    with Sandbox([], memory_mb=300, workers=1) as sandbox:
        sandbox.start_sync()
        stats = sandbox.stats()
        if stats["memory_bound"] != "cgroup":
            pytest.skip(f"no memory cgroup here: {stats['diagnostics']}")
        (limit,), (held,) = stats["memory_limit_bytes"], stats["memory_held_bytes"]
        # The working set moves a little between the limit being set and now (kernel stacks, page tables).
        assert abs(limit - held - (300 + cgroups.ALLOWANCE_MB) * MiB) < 16 * MiB
        assert "cgroup v" in stats["diagnostics"] and "no swap" in stats["diagnostics"]
