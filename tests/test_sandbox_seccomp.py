"""The seccomp programs say what they should, on both architectures: read by a small BPF interpreter here,
and their system call numbers checked against libseccomp's tables where that library is installed.

(That the kernel applies them to a real run is tests/test_sandbox_adversarial.py.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import struct

import pytest

from loong_env.sandbox import seccomp as sc

ARCHES = [sc.AUDIT_ARCH_X86_64, sc.AUDIT_ARCH_AARCH64]
EPERM, ENOSYS = sc.SECCOMP_RET_ERRNO | errno.EPERM, sc.SECCOMP_RET_ERRNO | errno.ENOSYS


def run_bpf(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """What the kernel would answer: evaluate a classic BPF seccomp program on one struct seccomp_data."""
    args6 = (list(args) + [0] * 6)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args6)
    code = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == sc.BPF_LD_W_ABS:
            (acc,) = struct.unpack_from("=I", data, k)
        elif op == sc.BPF_JEQ_K:
            pc += jt if acc == k else jf
        elif op == sc.BPF_JGE_K:
            pc += jt if acc >= k else jf
        elif op == sc.BPF_JSET_K:
            pc += jt if acc & k else jf
        elif op == sc.BPF_RET_K:
            return k
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


@pytest.mark.parametrize("arch", ARCHES)
def test_the_jail_denies_its_list_and_allows_the_rest(arch):
    program, numbers = sc.jail_program(), sc.SYSCALLS[arch]
    for name in sc.JAIL_DENIED:
        if name in numbers:
            assert run_bpf(program, numbers[name], arch) == EPERM, name
    denied = {numbers[n] for n in sc.JAIL_DENIED if n in numbers}
    allowed = [nr for nr in range(460) if nr not in denied]
    assert all(run_bpf(program, nr, arch) == sc.SECCOMP_RET_ALLOW for nr in allowed)
    for name in ("unshare", "setns", "clone", "clone3"):  # the worker needs these
        assert run_bpf(program, numbers[name], arch, (sc.CLONE_NEWUSER,)) == sc.SECCOMP_RET_ALLOW


@pytest.mark.parametrize("arch", ARCHES)
def test_no_user_namespaces_and_clone3_falls_back_to_clone(arch):
    program, nr = sc.namespace_program(), sc.SYSCALLS[arch]
    assert run_bpf(program, nr["unshare"], arch, (sc.CLONE_NEWUSER,)) == EPERM
    assert run_bpf(program, nr["unshare"], arch, (sc.CLONE_NEWUSER | 0x20000000,)) == EPERM
    assert run_bpf(program, nr["unshare"], arch, (0x20000000,)) == sc.SECCOMP_RET_ALLOW  # the worker's PID ns
    assert run_bpf(program, nr["clone3"], arch) == ENOSYS
    thread_flags = 0x3D0F00  # what glibc's pthread_create passes: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|...
    assert run_bpf(program, nr["clone"], arch, (thread_flags,)) == sc.SECCOMP_RET_ALLOW
    assert run_bpf(program, nr["clone"], arch, (17,)) == sc.SECCOMP_RET_ALLOW  # fork(): SIGCHLD only
    assert run_bpf(program, nr["clone"], arch, (17 | sc.CLONE_NEWUSER,)) == EPERM
    assert run_bpf(program, nr["setns"], arch) == sc.SECCOMP_RET_ALLOW  # needs a capability runs lack
    assert run_bpf(program, nr["ptrace"], arch) == sc.SECCOMP_RET_ALLOW  # the jail's program has that one


def test_an_unknown_architecture_is_killed_and_x32_calls_are_refused():
    for program in (sc.jail_program(), sc.namespace_program()):
        assert run_bpf(program, 0, 0x40000003) == sc.SECCOMP_RET_KILL_PROCESS  # i386 on x86-64
        assert run_bpf(program, 0x40000000 | 39, sc.AUDIT_ARCH_X86_64) == EPERM


def test_syscall_numbers_match_libseccomp():
    path = ctypes.util.find_library("seccomp")
    if path is None:
        pytest.skip("libseccomp is not installed here")
    lib = ctypes.CDLL(path)
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for arch, numbers in sc.SYSCALLS.items():
        for name, nr in numbers.items():
            assert lib.seccomp_syscall_resolve_name_arch(arch, name.encode()) == nr, (hex(arch), name)
