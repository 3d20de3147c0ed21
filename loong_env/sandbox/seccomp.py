"""The system calls jailed code may not make, as seccomp programs (classic BPF, assembled here).

Two programs, both answering EPERM to what numeric code never needs:
- `jail_program()` holds for the whole jail (bubblewrap installs it, `--seccomp FD`, before the worker
  starts): tracing other processes, mounting, the kernel keyring, eBPF, userfaultfd, kernel modules, kexec,
  reboot, swap, perf events, personality, io_uring, the clock, quotas, accounting and the like.
- `namespace_program()` is added by the worker to itself once it has made the user namespace its runs
  enter (worker.py), so it holds for the worker's imports and warm-up and for every run: no new user
  namespace (`unshare` or `clone` with CLONE_NEWUSER); `clone3`, whose flags a filter cannot read, answers
  ENOSYS, so the C library falls back to `clone`. Every other namespace needs a capability that a run does
  not hold, and the worker needs `unshare(CLONE_NEWPID)` and `setns` for each run's PID namespace.
  (A filter is compiled when it is added, about a millisecond here: per run it would cost ~10 % of the
  throughput of short snippets, once per worker it costs nothing measurable.)

Both check the architecture first: x86-64 and aarch64 are known; anything else (a 32-bit call on x86-64,
say) kills the process, and x86-64's x32 calls are refused. No libseccomp is needed; the numbers are
checked against libseccomp's own tables in the tests where it is installed.
"""

from __future__ import annotations

import errno
import functools
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian here)
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16

BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K

CLONE_NEWUSER = 0x10000000

# Numbers per architecture (x86-64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64: asm-generic/unistd.h).
SYSCALLS: dict[int, dict[str, int]] = {
    AUDIT_ARCH_X86_64: {
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "pidfd_getfd": 438,
        "kcmp": 312,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "swapon": 167,
        "swapoff": 168,
        "reboot": 169,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "userfaultfd": 323,
        "perf_event_open": 298,
        "personality": 135,
        "fanotify_init": 300,
        "open_by_handle_at": 304,
        "name_to_handle_at": 303,
        "quotactl": 179,
        "acct": 163,
        "syslog": 103,
        "vhangup": 153,
        "settimeofday": 164,
        "clock_settime": 227,
        "iopl": 172,
        "ioperm": 173,
        "lookup_dcookie": 212,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "unshare": 272,
        "setns": 308,
        "clone": 56,
        "clone3": 435,
    },
    AUDIT_ARCH_AARCH64: {
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "pidfd_getfd": 438,
        "kcmp": 272,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "swapon": 224,
        "swapoff": 225,
        "reboot": 142,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "userfaultfd": 282,
        "perf_event_open": 241,
        "personality": 92,
        "fanotify_init": 262,
        "open_by_handle_at": 265,
        "name_to_handle_at": 264,
        "quotactl": 60,
        "acct": 89,
        "syslog": 116,
        "vhangup": 58,
        "settimeofday": 170,
        "clock_settime": 112,
        "lookup_dcookie": 18,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "unshare": 97,
        "setns": 268,
        "clone": 220,
        "clone3": 435,
    },
}

JAIL_DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "personality",
    "fanotify_init",
    "open_by_handle_at",
    "name_to_handle_at",
    "quotactl",
    "acct",
    "syslog",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
NAMESPACE_ENOSYS = ("clone3",)


def _assemble(code: list[tuple[int, int | str, int | str, int]], labels: dict[str, int]) -> bytes:
    """struct sock_filter[] from instructions whose jump targets may be labels (resolved to offsets)."""
    out = b""
    for at, (op, jt, jf, k) in enumerate(code):
        offsets = []
        for target in (jt, jf):
            offset = labels[target] - at - 1 if isinstance(target, str) else target
            assert 0 <= offset <= 255, f"seccomp jump from {at} to {target!r} is out of range ({offset})"
            offsets.append(offset)
        out += struct.pack("=HBBI", op, offsets[0], offsets[1], k)
    return out


def build(denied: tuple[str, ...], *, enosys: tuple[str, ...] = (), flags: int = 0) -> bytes:
    """A program answering EPERM to `denied`, ENOSYS to `enosys`, EPERM to unshare() and clone() with any
    of `flags`, and allowing everything else, on the known architectures (others are killed)."""
    code: list[tuple[int, int | str, int | str, int]] = [(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH)]
    labels: dict[str, int] = {}
    for arch in SYSCALLS:
        code.append((BPF_JEQ_K, f"arch-{arch:x}", 0, arch))
    code.append((BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
    for arch, numbers in SYSCALLS.items():
        labels[f"arch-{arch:x}"] = len(code)
        code.append((BPF_LD_W_ABS, 0, 0, OFFSET_NR))
        if arch == AUDIT_ARCH_X86_64:
            code.append((BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT))
        code += [(BPF_JEQ_K, "deny", 0, numbers[name]) for name in denied if name in numbers]
        code += [(BPF_JEQ_K, "enosys", 0, numbers[name]) for name in enosys if name in numbers]
        if flags:
            code.append((BPF_JEQ_K, f"flags-{arch:x}", 0, numbers["clone"]))
            code.append((BPF_JEQ_K, f"flags-{arch:x}", 0, numbers["unshare"]))
        code.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
        if flags:
            labels[f"flags-{arch:x}"] = len(code)
            code.append((BPF_LD_W_ABS, 0, 0, OFFSET_ARG0_LOW))  # the flags: first argument of both
            code.append((BPF_JSET_K, "deny", 0, flags))
            code.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels["deny"] = len(code)
    code.append((BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))
    labels["enosys"] = len(code)
    code.append((BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS))
    return _assemble(code, labels)


@functools.cache
def jail_program() -> bytes:
    """What the whole jail may not do (bubblewrap's --seccomp)."""
    return build(JAIL_DENIED)


@functools.cache
def namespace_program() -> bytes:
    """No new user namespaces (added by the worker to itself; see the module docstring)."""
    return build((), enosys=NAMESPACE_ENOSYS, flags=CLONE_NEWUSER)
