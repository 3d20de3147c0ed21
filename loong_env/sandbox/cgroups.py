"""Per-worker cgroups (memory without swap, and pids), v1 or v2: the kernel bounds a run's processes as one.

Each worker tree (bubblewrap, the warm interpreter, and the one run it serves at a time) lives in its own
cgroup. Once the worker is warm, its memory limit is set to what it holds then (its working set) plus the
run's `memory_mb` plus ALLOWANCE_MB. So all processes of a run together, and the files they write to the
worker's RAM-backed scratch mounts, stay under that limit. A run that goes over is stopped by the kernel's OOM
killer. Each run raises its own `oom_score_adj`, so the killer picks a process of the run, never the worker.
The host then sees the cgroup's `oom_kill` count go up and reports `memory_limit`.

The cgroups are made below this process's own cgroup in each hierarchy, so any limit that holds for us
still holds for them. On cgroup v1 each controller has its own hierarchy (so one directory per controller);
on cgroup v2 one directory holds both, once our cgroup's `cgroup.subtree_control` enables them.

When neither version gives us a writable memory controller (not root, and no subtree delegated to us), a
run's processes are bounded by `fallback_limits` instead: fewer processes, each with a share of the budget.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
ALLOWANCE_MB = 64  # the run's kernel memory (page tables, pipes) and the file cache it keeps warm
FALLBACK_PROCESSES = 4  # without a memory cgroup: processes per run, each with 1/4 of memory_mb
PREFIX = "loong-"
CONTROLLERS = ("memory", "pids")
PROC = Path("/proc/self")


@dataclass(frozen=True)
class Hierarchy:
    """Where we make worker cgroups for some controllers: our own cgroup in a v1 or v2 hierarchy."""

    version: int
    path: Path
    controllers: tuple[str, ...]


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, text: str) -> None:
    """One write() of the whole value, as cgroup files expect."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mkdir(path: Path) -> None:
    """Make a cgroup (the kernel fills it with its interface files); tests swap in a fake kernel."""
    path.mkdir(exist_ok=True)


def _rmdir(path: Path) -> None:
    """Remove an empty cgroup (its interface files go with it)."""
    path.rmdir()


def _mounts(proc: Path) -> tuple[tuple[Path, str] | None, dict[str, tuple[Path, str]]]:
    """The cgroup2 mount and each v1 controller's mount, as (mount point, root within the hierarchy)."""
    v2: tuple[Path, str] | None = None
    v1: dict[str, tuple[Path, str]] = {}
    for line in _read(proc / "mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2" and v2 is None:
            v2 = (point, fields[3])
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in CONTROLLERS:
                    v1.setdefault(option, (point, fields[3]))
    return v2, v1


def _membership(proc: Path) -> tuple[str | None, dict[str, str]]:
    """Our cgroup path in the v2 hierarchy and in each v1 controller's hierarchy (from /proc/self/cgroup)."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in _read(proc / "cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2 = path
        for name in controllers.split(","):
            v1[name] = path
    return v2, v1


def _own_dir(mount: tuple[Path, str], cgroup_path: str) -> Path:
    point, root = mount
    rel = os.path.relpath(cgroup_path, root) if cgroup_path.startswith(root) else cgroup_path.lstrip("/")
    return point if rel in (".", "") else point / rel


def _probe(directory: Path, files: Iterable[str]) -> str | None:
    """None if we can make a child cgroup here with the given interface files; else why not."""
    probe = directory / f"{PREFIX}{os.getpid()}-probe"
    try:
        _mkdir(probe)
    except OSError as exc:
        return f"cannot create a cgroup in {directory} ({exc.strerror}) as uid {os.geteuid()}"
    try:
        missing = [f for f in files if not (probe / f).exists()]
        if missing:
            return f"{directory} gives new cgroups no {', '.join(missing)}"
        bad = [f for f in files if not os.access(probe / f, os.W_OK)]
        return f"cannot write {', '.join(bad)} in cgroups made in {directory}" if bad else None
    finally:
        with contextlib.suppress(OSError):
            _rmdir(probe)


def _enable_v2(own: Path, controllers: tuple[str, ...]) -> str | None:
    """Enable the controllers for our cgroup's children; None on success, else why not.

    cgroup v2 refuses this while our cgroup holds processes ("no internal processes"). If the only process
    in it is this one, we move into a leaf child first, the way nsjail and container runtimes do.
    """
    enabled = set(_read(own / "cgroup.subtree_control").split())
    todo = [c for c in controllers if c not in enabled]
    if not todo:
        return None
    request = " ".join(f"+{c}" for c in todo)
    try:
        _write(own / "cgroup.subtree_control", request)
        return None
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return f"cannot enable {request} in {own}/cgroup.subtree_control ({exc.strerror})"
    others = set(_read(own / "cgroup.procs").split()) - {str(os.getpid())}
    if others:
        return (
            f"{own} holds other processes ({len(others)}), so cgroup v2 cannot enable {request} for its "
            "children; start Python in a cgroup of its own (`systemd-run --user --scope -p Delegate=yes`)"
        )
    try:
        leaf = own / f"{PREFIX}host-{os.getpid()}"
        _mkdir(leaf)
        _write(leaf / "cgroup.procs", str(os.getpid()))
        _write(own / "cgroup.subtree_control", request)
        return None
    except OSError as exc:
        return f"cannot move into a leaf cgroup to enable {request} in {own} ({exc.strerror})"


def remove_stale(directory: Path) -> None:
    """Remove worker cgroups left by processes that died without cleaning up (empty ones only)."""
    with contextlib.suppress(OSError):
        for child in directory.iterdir():
            owner = next((t for t in child.name.removeprefix(PREFIX).split("-") if t.isdigit()), "")
            if child.name.startswith(PREFIX) and owner and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    _rmdir(child)


def discover(proc: Path = PROC) -> tuple[list[Hierarchy], dict[str, str]]:
    """Where this process can make memory and pids cgroups, and, for each controller it cannot, why not."""
    hierarchies: list[Hierarchy] = []
    why_not: dict[str, str] = {}
    try:
        v2_mount, v1_mounts = _mounts(proc)
        v2_path, v1_paths = _membership(proc)
    except (OSError, ValueError) as exc:
        return [], {c: f"cannot read {proc}/mountinfo or {proc}/cgroup ({exc})" for c in CONTROLLERS}
    v2_wanted: list[str] = []
    v2_dir = _own_dir(v2_mount, v2_path) if v2_mount and v2_path is not None else None
    if v2_dir is not None and v2_dir.name == f"{PREFIX}host-{os.getpid()}":
        v2_dir = v2_dir.parent  # the leaf we moved into earlier (see _enable_v2): workers go beside it
    if v2_dir is not None:
        with contextlib.suppress(OSError):
            available = _read(v2_dir / "cgroup.controllers").split()
            v2_wanted = [c for c in CONTROLLERS if c in available]
    if v2_dir is not None and v2_wanted:
        reason = _enable_v2(v2_dir, tuple(v2_wanted))
        files = [f for c in v2_wanted for f in {"memory": ["memory.max"], "pids": ["pids.max"]}[c]]
        reason = reason or _probe(v2_dir, ["cgroup.procs", *files])
        if reason is None:
            hierarchies.append(Hierarchy(2, v2_dir, tuple(v2_wanted)))
            remove_stale(v2_dir)
        else:
            why_not.update(dict.fromkeys(v2_wanted, f"cgroup v2: {reason}"))
    for controller in CONTROLLERS:
        if controller in v2_wanted and controller not in why_not:
            continue
        if controller not in v1_mounts or controller not in v1_paths:
            why_not.setdefault(controller, f"no {controller} controller is mounted (cgroup v1 or v2)")
            continue
        own = _own_dir(v1_mounts[controller], v1_paths[controller])
        files = {"memory": ["memory.limit_in_bytes", "memory.oom_control"], "pids": ["pids.max"]}[controller]
        reason = _probe(own, ["cgroup.procs", *files])
        if reason is None:
            hierarchies.append(Hierarchy(1, own, (controller,)))
            why_not.pop(controller, None)
            remove_stale(own)
        else:
            why_not[controller] = f"cgroup v1: {reason}" + (
                f"; {why_not[controller]}" if controller in why_not else ""
            )
    return hierarchies, why_not


def fallback_limits(memory_mb: int, max_processes: int) -> tuple[int, int]:
    """(MiB of address space per process, processes) for a run when no memory cgroup bounds it.

    The run's budget is split between at most FALLBACK_PROCESSES processes, so together they can add at most
    `memory_mb` to the warm worker (plus any of the worker's pages they copy by writing to them).
    """
    processes = max(1, min(max_processes, FALLBACK_PROCESSES))
    return max(1, memory_mb // processes), processes


class WorkerCgroup:
    """The cgroup(s) of one worker tree: made before it starts, limited once it is warm, removed with it."""

    def __init__(self, hierarchies: list[Hierarchy], name: str, max_pids: int) -> None:
        self.dirs: list[Path] = []
        self._memory: tuple[int, Path] | None = None
        self._oom_fd = -1
        try:
            for h in hierarchies:
                path = h.path / f"{PREFIX}{os.getpid()}-{name}"
                _mkdir(path)
                self.dirs.append(path)
                if "pids" in h.controllers:
                    _write(path / "pids.max", str(max_pids))
                if "memory" in h.controllers:
                    self._memory = (h.version, path)
                    self._no_swap()
                    events = "memory.oom_control" if h.version == 1 else "memory.events"
                    self._oom_fd = os.open(path / events, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.remove()
            raise

    @property
    def bounds_memory(self) -> bool:
        return self._memory is not None

    def _no_swap(self) -> None:
        assert self._memory is not None
        version, path = self._memory
        if version == 1:
            _write(path / "memory.swappiness", "0")  # memsw, where swap is accounted, is set with the limit
        elif (path / "memory.swap.max").exists():
            _write(path / "memory.swap.max", "0")

    def wrap(self, argv: list[str]) -> list[str]:
        """argv that first moves itself into every cgroup here, then execs (its descendants follow)."""
        script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *(str(d / "cgroup.procs") for d in self.dirs), "--", *argv]

    def _stat(self) -> dict[str, int]:
        assert self._memory is not None
        out: dict[str, int] = {}
        for line in _read(self._memory[1] / "memory.stat").splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    def working_set(self) -> int:
        """Bytes charged to the cgroup that the kernel cannot simply drop (all but the file cache)."""
        assert self._memory is not None
        version, path = self._memory
        usage = int(_read(path / ("memory.usage_in_bytes" if version == 1 else "memory.current")))
        stat = self._stat()
        keys = ("total_inactive_file", "total_active_file")  # v1 (hierarchical); v2 has no total_ prefix
        cache = sum(stat.get(k, stat.get(k.removeprefix("total_"), 0)) for k in keys)
        return max(0, usage - cache)

    def limit_memory(self, memory_mb: int) -> int:
        """Cap the tree at its working set now + memory_mb + ALLOWANCE_MB, swap included; the limit."""
        assert self._memory is not None
        version, path = self._memory
        limit = self.working_set() + (memory_mb + ALLOWANCE_MB) * MiB
        if version == 1:
            _write(path / "memory.limit_in_bytes", str(limit))
            if (path / "memory.memsw.limit_in_bytes").exists():
                _write(path / "memory.memsw.limit_in_bytes", str(limit))  # memory + swap = memory: no swap
        else:
            _write(path / "memory.max", str(limit))
        return limit

    def limit(self) -> int | None:
        if self._memory is None:
            return None
        version, path = self._memory
        text = _read(path / ("memory.limit_in_bytes" if version == 1 else "memory.max")).strip()
        return None if text == "max" else int(text)

    def peak(self) -> int | None:
        """Most memory the tree ever held (None where the kernel does not say)."""
        if self._memory is None:
            return None
        version, path = self._memory
        with contextlib.suppress(OSError, ValueError):
            return int(_read(path / ("memory.max_usage_in_bytes" if version == 1 else "memory.peak")))
        return None

    def oom_kills(self) -> int:
        """Processes the kernel has killed in this tree for going over the memory limit, so far."""
        if self._oom_fd < 0:
            return 0
        with contextlib.suppress(OSError, ValueError):  # a cgroup removed under us counts nothing
            for line in os.pread(self._oom_fd, 4096, 0).decode().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0

    def remove(self, *, wait_s: float = 2.0) -> None:
        """rmdir every cgroup once its processes are gone (the kernel refuses while any remain)."""
        if self._oom_fd >= 0:
            os.close(self._oom_fd)
            self._oom_fd = -1
        deadline = time.monotonic() + wait_s
        for path in self.dirs:
            while True:
                try:
                    _rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)


def describe(
    hierarchies: list[Hierarchy], why_not: dict[str, str], memory_mb: int, max_processes: int
) -> str:
    """One paragraph for Sandbox.stats(): how a run's memory and processes are bounded here, and why."""
    parts = []
    memory = [h for h in hierarchies if "memory" in h.controllers]
    if memory:
        parts.append(
            f"memory: a cgroup v{memory[0].version} per worker below {memory[0].path}, limited to the warm "
            f"worker's working set + memory_mb ({memory_mb} MiB) + {ALLOWANCE_MB} MiB, no swap; it holds all "
            "processes of the run and the files they write to the scratch mounts"
        )
    else:
        per_process, processes = fallback_limits(memory_mb, max_processes)
        parts.append(
            f"memory: NO memory cgroup ({why_not.get('memory', 'unknown reason')}); fallback: at most "
            f"{processes} processes per run, each with {per_process} MiB of address space beyond the warm "
            f"worker's, so together they add at most ~{processes * per_process} MiB (plus worker pages "
            "they copy, plus files on the scratch mounts)"
        )
    pids = [h for h in hierarchies if "pids" in h.controllers]
    if pids:
        parts.append(f"processes: a cgroup v{pids[0].version} pids.max per worker below {pids[0].path}")
    elif os.geteuid() != 0:
        parts.append("processes: RLIMIT_NPROC in each run (the kernel enforces it for a non-root uid)")
    else:
        parts.append(f"processes: UNBOUNDED (root, and {why_not.get('pids', 'no pids cgroup')})")
    return "; ".join(parts)


@dataclass(frozen=True)
class Bounds:
    """How a Sandbox's runs are bounded here: the worker cgroups to make, and each run's own rlimits."""

    memory_mb: int  # address space each process of a run may add to the warm worker (RLIMIT_AS)
    max_processes: int  # processes of a run at once (RLIMIT_NPROC, pids.max)
    description: str
    hierarchies: tuple[Hierarchy, ...] = ()
    why_not: dict[str, str] = field(default_factory=dict)

    @property
    def memory_cgroup(self) -> bool:
        return any("memory" in h.controllers for h in self.hierarchies)

    @property
    def pids_cgroup(self) -> bool:
        return any("pids" in h.controllers for h in self.hierarchies)


_said: set[str] = set()


def bounds(memory_mb: int, max_processes: int) -> Bounds:
    """The bounds this process can give a jailed run: cgroups where it may make them, else the fallback.

    Without a memory cgroup the fallback is logged (once per process and reason), and stated in the result.
    """
    hierarchies, why_not = discover()
    description = describe(hierarchies, why_not, memory_mb, max_processes)
    if "memory" in why_not:
        memory_mb, max_processes = fallback_limits(memory_mb, max_processes)
        if description not in _said:
            _said.add(description)
            logging.getLogger("loong_env.sandbox").warning("%s", description)
    return Bounds(memory_mb, max_processes, description, tuple(hierarchies), why_not)
