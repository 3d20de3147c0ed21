"""The warm worker that runs inside bubblewrap: pays imports once, forks a fresh jailed child per snippet.

This file is executed as a script by the environment's own interpreter (which may not have loong_env or
any of its dependencies installed), so it imports nothing but the standard library.

Protocol on stdin/stdout: frames of a 4-byte big-endian length followed by UTF-8 JSON.
  1. host -> worker: {"preload": [dist names], "warmup": [code], "scratch": "/tmp", "isolate": bool,
                      "seccomp": the worker's seccomp program in hex (seccomp.py), "uid": each run's uid}
     worker -> host: {"ready": true, "preloaded": [...], "warmup_ok": n, "rss_kb": n}
  2. host -> worker: {"code", "stdin", "timeout_s", "memory_mb", "max_output_bytes", "max_processes",
                      "max_open_files", "max_file_mb"}
     worker -> host: one ACK byte at once, then {"status", "stdout", "stderr", "exit_code", "duration_s"}

Per run, the worker unshares a fresh PID namespace for its next child and forks G, which is PID 1 there,
so killing G makes the kernel kill everything the snippet spawned (setsid'd daemons included); then it
setns()es back so the namespace is used once. This needs CAP_SYS_ADMIN inside bubblewrap's user
namespace; G drops every capability (bounding set included) before the snippet runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time
import traceback

CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522

ACK = b"\x06"

_libc = ctypes.CDLL(None, use_errno=True)
_proto_in = sys.stdin.buffer
_proto_out = sys.stdout.buffer


def _read_frame() -> dict | None:
    head = _proto_in.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    return json.loads(_proto_in.read(n).decode("utf-8"))


def _write_frame(obj: dict) -> None:
    data = json.dumps(obj).encode("utf-8")
    _proto_out.write(struct.pack(">I", len(data)) + data)
    _proto_out.flush()


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}) failed: {os.strerror(err)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _CapPlan:
    """Everything dropping capabilities needs, prepared once in the worker so each run only does syscalls."""

    def __init__(self) -> None:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
        # All of them: a run's own user namespace (_become_run_user) starts with a full bounding set.
        self.bounding = list(range(last + 1))
        self.header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
        self.data = (_CapData * 2)()


_caps: _CapPlan | None = None


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _install_filter(program_hex: str) -> None:
    """Add the host's seccomp program (seccomp.namespace_program) to this process and all it will fork.

    Once per worker: the kernel compiles a filter when it is added, which costs a millisecond or more here;
    runs inherit it for free."""
    program = bytes.fromhex(program_hex)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"adding the seccomp filter failed: {os.strerror(err)}")


def _make_run_userns(uid: int) -> int:
    """A user namespace, child of ours, in which our uid and gid are `uid`: never root, whatever the worker's
    (on the host it stays the worker's). Made once, by a helper child; each run enters it with setns(),
    which costs microseconds where making a namespace per run would cost a millisecond or more."""
    outer_uid, outer_gid = os.getuid(), os.getgid()
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(hold_w)
            if _libc.unshare(CLONE_NEWUSER) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWUSER) failed: {os.strerror(err)}")
            maps = (
                ("setgroups", "deny"),
                ("uid_map", f"{uid} {outer_uid} 1"),
                ("gid_map", f"{uid} {outer_gid} 1"),
            )
            for name, text in maps:
                fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
            os.write(ready_w, b"ok")
            os.read(hold_r, 1)  # until the worker holds the namespace
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported to the worker below
            with contextlib.suppress(BaseException):
                os.write(ready_w, f"{exc}".encode()[:2000])
            os._exit(1)
    os.close(ready_w)
    os.close(hold_r)
    try:
        answer = os.read(ready_r, 4096)
        if answer != b"ok":
            why = answer.decode(errors="replace") or "the helper died"
            raise OSError(f"the runs' user namespace (one inside bubblewrap's) could not be made: {why}")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def _enter_run_userns() -> None:
    """Become the run's uid (see _make_run_userns), with every capability there until they are dropped."""
    if _run_userns is not None and _libc.setns(_run_userns, CLONE_NEWUSER) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into the runs' user namespace failed: {os.strerror(err)}")


def _drop_capabilities() -> None:
    """Drop every capability for good (bounding set too, so exec'ing a binary as uid 0 regains none)."""
    assert _caps is not None
    for cap in _caps.bounding:
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"dropping capability {cap} from the bounding set failed: {os.strerror(err)}")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if _libc.capset(ctypes.byref(_caps.header), _caps.data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset failed: {os.strerror(err)}")


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


_statm_fd = -1
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _vsize_bytes() -> int:
    """Our address-space size; a raw pread on a kept fd, as it runs before every fork (no file objects)."""
    global _statm_fd
    if _statm_fd < 0:
        _statm_fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    return int(os.pread(_statm_fd, 128, 0).split()[0]) * _PAGE


def _top_level_modules(dist_names: list[str]) -> list[str]:
    """Import names provided by the requested distributions (sympy -> sympy; not their dependencies)."""
    import importlib.metadata as md

    wanted = {n.lower().replace("_", "-") for n in dist_names}
    found: list[str] = []
    for module, dists in md.packages_distributions().items():
        if module.startswith("_") or "." in module:
            continue
        if any(d.lower().replace("_", "-") in wanted for d in dists):
            found.append(module)
    return sorted(found)


# Run first, always: the first compile() in a process builds the interpreter's AST types (~1 ms), which a
# worker with no seeds to warm up with would otherwise leave to every forked run.
_BASE_WARMUP = (
    "import sys\nprint(sum(i * i for i in range(10)), [str(x) for x in (1, 2.5)], file=sys.stderr)\n"
)


def _exec_quietly(code: str) -> bool:
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        exec(compile(code, "<warmup>", "exec"), {"__name__": "__warmup__"})  # noqa: S102 - our own code
        return True
    except BaseException:  # noqa: BLE001 - warm-up failures only cost speed
        return False
    finally:
        sys.stdout, sys.stderr = real_out, real_err


def _setup(hello: dict) -> dict:
    """Import the requirement set's packages and run warm-up code once, so every fork starts warm."""
    preloaded: list[str] = []
    # Only when there is something to preload: importlib.metadata pulls in threading and random, whose
    # at-fork hooks then run (and copy-on-write fault ~150 pages) in every forked run.
    for module in _top_level_modules(hello["preload"]) if hello.get("preload") else []:
        try:
            importlib.import_module(module)
            preloaded.append(module)
        except Exception:  # noqa: BLE001, S110 - a package without an importable top level costs only speed
            pass
    _exec_quietly(_BASE_WARMUP)
    warm_ok = sum(_exec_quietly(code) for code in hello.get("warmup", []))
    gc.collect()
    gc.freeze()  # keep the collector from touching (and copying) the warm heap in every fork
    return {"ready": True, "preloaded": preloaded, "warmup_ok": warm_ok, "rss_kb": _rss_kb()}


def _prefer_us_when_out_of_memory() -> None:
    """Make this run's processes the OOM killer's first choice (raising is unprivileged), never the worker."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)


def _snippet_main(req: dict, scratch: str, stdin_fd: int, out_w: int, err_w: int) -> None:
    """Runs as PID 1 of the run's namespace: apply limits, jail, exec the snippet; never returns."""
    rc = 70
    try:
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if _ISOLATE:
            _enter_run_userns()  # before the descriptor that holds it is closed
        os.closerange(3, 1 << 16)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in a normal `python snippet.py`
        _prefer_us_when_out_of_memory()
        if _ISOLATE:
            _drop_capabilities()
            _prctl(PR_SET_DUMPABLE, 1)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        mem = int(req["memory_mb"]) * 1024 * 1024
        cpu = int(req["timeout_s"]) + 1
        limits = {
            resource.RLIMIT_CPU: (cpu, cpu + 1),
            resource.RLIMIT_AS: (int(req["_vsize"]) + mem,) * 2,
            resource.RLIMIT_NOFILE: (int(req["max_open_files"]),) * 2,
            resource.RLIMIT_FSIZE: (int(req["max_file_mb"]) * 1024 * 1024,) * 2,
            # Counted per uid in bubblewrap's user namespace: the worker and bubblewrap's init are two of
            # them.
            resource.RLIMIT_NPROC: (int(req["max_processes"]) + 2,) * 2,
            resource.RLIMIT_CORE: (0, 0),
        }
        for which, value in limits.items():
            resource.setrlimit(which, value)
        os.chdir(scratch)
        os.environ["HOME"] = scratch
        os.environ["TMPDIR"] = scratch
        os.environ["PWD"] = scratch
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        )
        sys.argv = ["<snippet>"]
        sys.path[:] = [p for p in sys.path if p]
        main = type(sys)("__main__")
        sys.modules["__main__"] = main
        main.__dict__["__builtins__"] = __builtins__
        gc.unfreeze()
    except BaseException:  # noqa: BLE001 - a broken jail must not run the code
        with contextlib.suppress(BaseException):
            os.write(2, ("sandbox setup failed:\n" + traceback.format_exc()).encode())
        os._exit(71)
    try:
        exec(compile(req["code"], "<snippet>", "exec"), main.__dict__)  # noqa: S102 - jailed above
        rc = 0
    except SystemExit as exc:
        if exc.code is None:
            rc = 0
        elif isinstance(exc.code, int):
            rc = exc.code & 0xFF
        else:
            with contextlib.suppress(BaseException):
                print(exc.code, file=sys.stderr)
            rc = 1
    except BaseException as exc:  # noqa: BLE001 - the snippet's own failure is a result
        with contextlib.suppress(BaseException):
            tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # hide our frame
            traceback.print_exception(type(exc), exc, tb)
        rc = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(rc)


def _unshare_pidns() -> None:
    if _libc.unshare(CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        raise OSError(
            err, f"unshare(CLONE_NEWPID) failed: {os.strerror(err)} (is CAP_SYS_ADMIN in the sandbox?)"
        )


def _spawn(req: dict, scratch: str, stdin_fd: int, out_w: int, err_w: int) -> int:
    """Start G as PID 1 of a fresh PID namespace and return its pid (G is always our child)."""
    if not _ISOLATE:
        g = os.fork()
        if g == 0:
            _snippet_main(req, scratch, stdin_fd, out_w, err_w)
        return g
    if _SETNS_OK:  # one fork: unshare for our next child, fork it, then point our children back home
        _unshare_pidns()
        try:
            g = os.fork()
            if g == 0:
                _snippet_main(req, scratch, stdin_fd, out_w, err_w)
        finally:
            if _libc.setns(_own_pidns(), CLONE_NEWPID) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the worker's PID namespace failed: {os.strerror(err)}")
        return g
    # Two forks (unprivileged bubblewrap does not let us setns back): C unshares, forks G and exits; we are
    # a child subreaper, so G is re-parented to us before C can be reaped.
    ctl_r, ctl_w = os.pipe()
    c = os.fork()
    if c == 0:
        try:
            os.close(ctl_r)
            _unshare_pidns()
            g = os.fork()
            if g == 0:
                os.close(ctl_w)
                _snippet_main(req, scratch, stdin_fd, out_w, err_w)
            os.write(ctl_w, f"ok {g}".encode())
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported to the worker below
            with contextlib.suppress(BaseException):
                os.write(ctl_w, f"err {exc}".encode()[:4000])
            os._exit(1)
    os.close(ctl_w)
    os.waitpid(c, 0)
    with os.fdopen(ctl_r, "rb") as fh:
        text = fh.read().decode(errors="replace")
    if not text.startswith("ok "):
        raise RuntimeError(text.removeprefix("err ") or "the run's namespace could not be created")
    return int(text.split()[1])


def _probe_setns() -> bool:
    """Can this worker unshare a PID namespace and setns back? Tried in a throwaway child."""
    pid = os.fork()
    if pid == 0:
        try:
            _unshare_pidns()
            os._exit(0 if _libc.setns(_own_pidns(), CLONE_NEWPID) == 0 else 1)
        except BaseException:  # noqa: BLE001
            os._exit(2)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


_pidns_fd: int | None = None
_ISOLATE = True
_SETNS_OK = True


def _own_pidns() -> int:
    global _pidns_fd
    if _pidns_fd is None:
        _pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    return _pidns_fd


def _classify(status_word: int, stderr: bytes) -> tuple[str, int]:
    if os.WIFSIGNALED(status_word):
        sig = os.WTERMSIG(status_word)
        return ("timeout" if sig == signal.SIGXCPU else "killed"), -sig
    code = os.WEXITSTATUS(status_word)
    if code == 0:
        return "ok", 0
    tail = stderr[-2000:].strip().splitlines()
    if tail and tail[-1].startswith((b"MemoryError", b"numpy.core._exceptions._ArrayMemoryError")):
        return "memory_limit", code
    if b"Cannot allocate memory" in stderr[-2000:] or b"std::bad_alloc" in stderr[-2000:]:
        return "memory_limit", code
    return "error", code


def _remove_scratch(path: str) -> None:
    """Remove a run's scratch dir (or a file it left), even one whose directories it made unreadable."""
    try:
        os.rmdir(path)  # the common case: the snippet wrote nothing
        return
    except NotADirectoryError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    except OSError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    # We own every file in it but hold no CAP_DAC_OVERRIDE: give each real directory (never a symlink's
    # target) back its owner's rwx, then remove again. The run's processes are all dead by now.
    stack = [path]
    while stack:
        d = stack.pop()
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
            with os.scandir(d) as entries:
                stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    shutil.rmtree(path, ignore_errors=True)


class _Leftovers:
    """Files a run left on the worker's private tmpfs mounts (/tmp, $HOME, /dev/shm, ...), removed after it.

    Runs on one worker share those mounts; without this a file written to /tmp by one snippet would be seen
    by the next, or a full /tmp would fail it. A snapshot of every directory's mtime taken at start-up makes
    the check per run a handful of stat calls; only a directory that changed is listed and cleaned.
    """

    def __init__(self) -> None:
        self.dirs: dict[str, int] = {}
        self.keep: set[str] = set()
        self.kept_in: dict[str, list[str]] = {}
        for root in self._writable_tmpfs_mounts():
            try:
                device = os.lstat(root).st_dev
            except OSError:
                continue  # a mount hidden under a later one
            for top, subdirs, files in os.walk(root):
                self.dirs[top] = os.lstat(top).st_mtime_ns
                self.kept_in[top] = [os.path.join(top, name) for name in files + subdirs]
                self.keep.update(self.kept_in[top])
                on_this_mount = []
                for name in subdirs:
                    path = os.path.join(top, name)
                    if os.lstat(path).st_dev == device:
                        on_this_mount.append(name)
                subdirs[:] = on_this_mount  # another mount below: its own root, or read-only

    @staticmethod
    def _writable_tmpfs_mounts() -> list[str]:
        roots = []
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if right.split()[:1] == ["tmpfs"] and "rw" in fields[5].split(","):
                    roots.append(fields[4].replace("\\040", " "))
        return roots

    def scrub(self) -> bool:
        """Remove what the last run left; False if it moved away something that was here at start-up.

        That can be the directory that holds a bind mount (an environment kept under /tmp): renaming it is
        allowed, and it would break every later run here, so the worker then exits and is replaced.
        """
        intact = True
        for d, mtime in self.dirs.items():
            try:
                if os.lstat(d).st_mtime_ns == mtime:
                    continue
                for name in os.listdir(d):
                    path = os.path.join(d, name)
                    if path not in self.keep:
                        _remove_scratch(path)
                intact = intact and all(os.path.lexists(p) for p in self.kept_in[d])
                self.dirs[d] = os.lstat(d).st_mtime_ns
            except OSError:
                intact = False
        return intact


_runs = 0
_run_userns: int | None = None  # None: runs keep the worker's uid (no host asks that but the A/B benchmark)


def _run(req: dict, scratch_root: str) -> dict:
    global _runs
    t0 = time.monotonic()
    _runs += 1
    scratch = os.path.join(scratch_root, f"run-{_runs}")
    os.mkdir(scratch, 0o700)
    req["_vsize"] = _vsize_bytes()  # fork copies the address space as is: measure it once, here
    if req.get("stdin"):
        stdin_path = os.path.join(scratch_root, f"stdin-{_runs}")
        with open(stdin_path, "wb") as fh:
            fh.write(req["stdin"].encode("utf-8"))
        stdin_fd = os.open(stdin_path, os.O_RDONLY)
        os.unlink(stdin_path)
    else:
        stdin_fd = os.open("/dev/null", os.O_RDONLY)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    limit = int(req["max_output_bytes"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    status = None
    exit_code = None
    try:
        try:
            g = _spawn(req, scratch, stdin_fd, out_w, err_w)
        finally:
            for fd in (stdin_fd, out_w, err_w):
                os.close(fd)
        pidfd = os.pidfd_open(g)
        deadline = t0 + float(req["timeout_s"])
        open_fds = {out_r, err_r}
        exited = False
        while not exited or open_fds:
            wait = deadline - time.monotonic()
            if exited:
                wait = min(wait, 1.0)  # the namespace is gone; only buffered bytes remain
            if wait <= 0:
                if not exited:
                    status = "timeout"
                break
            ready, _, _ = select.select([*open_fds, *([] if exited else [pidfd])], [], [], wait)
            for fd in ready:
                if fd == pidfd:
                    exited = True
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                    continue
                bufs[fd] += chunk
                if len(bufs[out_r]) + len(bufs[err_r]) > limit:
                    status = "output_limit"
            if status == "output_limit":
                break
        with contextlib.suppress(ProcessLookupError):
            os.kill(g, signal.SIGKILL)  # PID 1 of the run: takes every process of the run with it
        if not _ISOLATE:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGKILL)  # best effort only: setsid'd grandchildren escape this
        _, word = os.waitpid(g, 0)
        os.close(pidfd)
        if status is None:
            status, exit_code = _classify(word, bytes(bufs[err_r]))
        else:
            exit_code = -os.WTERMSIG(word) if os.WIFSIGNALED(word) else os.WEXITSTATUS(word)
    except Exception as exc:  # noqa: BLE001 - report, keep serving
        status, exit_code = "killed", None
        bufs[err_r] += f"\nsandbox: could not run the snippet: {exc}".encode()
    finally:
        for fd in (out_r, err_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        _remove_scratch(scratch)
    out = bytes(bufs[out_r])
    err = bytes(bufs[err_r])
    if status == "output_limit":
        out, err = out[:limit], err[: max(0, limit - len(out[:limit]))]
    return {
        "status": status,
        "stdout": out.decode("utf-8", errors="replace"),
        "stderr": err.decode("utf-8", errors="replace"),
        "exit_code": exit_code,
        "duration_s": time.monotonic() - t0,
    }


def main() -> None:
    global _ISOLATE
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    hello = _read_frame()
    if hello is None:
        return
    _ISOLATE = bool(hello.get("isolate", True))
    if _ISOLATE:
        global _caps, _SETNS_OK
        _caps = _CapPlan()
        global _run_userns
        if hello.get("uid") is not None:
            _run_userns = _make_run_userns(int(hello["uid"]))
        _own_pidns()
        _SETNS_OK = _probe_setns()
        if not _SETNS_OK:
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_DUMPABLE, 0)  # snippets share our uid: keep them out of our memory via /proc
        if hello.get("seccomp"):  # after the last new user namespace; before any imported or warm-up code
            _install_filter(hello["seccomp"])
    scratch_root = hello.get("scratch", "/tmp")
    _write_frame({**_setup(hello), "one_fork": _SETNS_OK})
    leftovers = _Leftovers() if _ISOLATE else None  # never scrub the host's /tmp when unisolated
    while (req := _read_frame()) is not None:
        _proto_out.write(ACK)  # "I have it": lets the host tell a dead worker from a deadly snippet
        _proto_out.flush()
        _write_frame(_run(req, scratch_root))
        if leftovers is not None and not leftovers.scrub():  # after answering: off the run's critical path
            return  # a run moved what this worker needs; the host starts a fresh one
        # Reap anything else re-parented to us (there should be nothing).
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


if __name__ == "__main__":
    main()
