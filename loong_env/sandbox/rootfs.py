"""The jail's filesystem, worked out from the interpreter: what a run needs to import its packages, no more.

A worker's root is an empty, read-only tmpfs with these bound into it, read-only, at their host paths:
- the environment (a venv's own directory) and every entry of the interpreter's `sys.path` (the standard
  library, lib-dynload, site-packages, and anything a `.pth` file adds);
- the interpreter binary, its dynamic loader (ELF PT_INTERP), and the directory of every shared library the
  interpreter and the environment's extension modules load (DT_NEEDED, found through RPATH, RUNPATH,
  ld.so.cache and the default directories, transitively). Whole directories, because libc and friends
  dlopen() their siblings (libgcc_s for thread exit, gconv, NSS modules);
- /etc/ld.so.cache (the loader's index), time zone data (/etc/localtime, /etc/timezone, `zoneinfo.TZPATH`),
  the C.UTF-8 locale the jail runs in, and the CA certificates that `ssl.get_default_verify_paths()` names,
  with OpenSSL's openssl.cnf.
Every symlink on the way to one of these (/lib64 -> usr/lib64 and the like) is recreated, so each path
resolves as on the host. Nothing else of the host is there: not /home, /root, /etc/shadow, /var, /srv, /mnt,
the project checkout or the package caches (only the environment the worker uses).

The plan is made once per interpreter by asking that interpreter, so it holds for a distribution's python,
pyenv, conda or a uv-managed build alike.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from loong_env.sandbox.errors import SandboxUnavailableError

# Run on the host by the environment's own interpreter with -I -S: where it finds code and data. -S because
# `site` runs the `import` lines of every .pth file and imports sitecustomize, and an installed wheel may ship
# either; here the site-packages folders and the path lines of .pth files are read as data, and their code
# runs only in the jail, where the worker's interpreter starts `site` itself.
PROBE = r"""
import json, os, site, sys, sysconfig
exe_dir = os.path.dirname(os.path.abspath(sys.executable))
prefix, prefixes = sys.prefix, [sys.prefix]
for folder in (exe_dir, os.path.dirname(exe_dir)):
    cfg = os.path.join(folder, "pyvenv.cfg")
    if os.path.isfile(cfg):
        system = "true"  # site.venv()'s default
        with open(cfg, encoding="utf-8") as fh:
            for line in fh:
                key, sep, value = line.partition("=")
                if sep and key.strip().lower() == "include-system-site-packages":
                    system = value.strip().lower()
        prefix = os.path.dirname(exe_dir)  # what site.venv() makes sys.prefix
        prefixes = [prefix, sys.prefix] if system == "true" else [prefix]
        break
path = list(sys.path)
for sitedir in site.getsitepackages(prefixes):
    if not os.path.isdir(sitedir):
        continue
    path.append(sitedir)
    for name in sorted(os.listdir(sitedir)):
        if name.startswith(".") or not name.endswith(".pth"):
            continue
        try:
            with open(os.path.join(sitedir, name), encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            if line.strip() and not line.startswith(("#", "import ", "import\t")):
                entry = os.path.abspath(os.path.join(sitedir, line.rstrip()))
                if os.path.exists(entry):
                    path.append(entry)
facts = {"prefix": prefix, "base_prefix": sys.base_prefix, "path": path,
         "multiarch": sysconfig.get_config_var("MULTIARCH") or "", "tzpath": [], "ssl": [], "ssl_dirs": []}
try:
    import zoneinfo
    facts["tzpath"] = list(zoneinfo.TZPATH)
except Exception:
    pass
try:
    import ssl
    v = ssl.get_default_verify_paths()
    facts["ssl"] = [p for p in (v.cafile, v.openssl_cafile) if p]
    facts["ssl_dirs"] = [p for p in (v.capath, v.openssl_capath) if p]
    if v.openssl_cafile:
        facts["ssl"].append(os.path.join(os.path.dirname(v.openssl_cafile), "openssl.cnf"))
except Exception:
    pass
print(json.dumps(facts))
"""

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29
DEFAULT_LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/timezone")
# glibc's compiled-in locale path, and the C.UTF-8 locale the jail runs in (LANG, bwrap.SANDBOX_ENV)
LOCALE_FILES = ("/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8", "/usr/lib/locale/locale-archive")
MAX_SYMLINK_HOPS = 40
UNIMPORTABLE = {"site-packages", "dist-packages", "__pycache__"}


@dataclass
class Elf:
    """What the dynamic loader reads from one ELF file."""

    ident: tuple[int, int]  # (class, machine): a 64-bit x86-64 object loads only 64-bit x86-64 libraries
    interp: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)


def _segments(data: bytes, fh: BinaryIO, is64: bool, end: str) -> list[tuple[int, int, int, int]]:
    """(type, file offset, virtual address, size in file) of each program header."""
    if is64:
        (phoff,) = struct.unpack_from(end + "Q", data, 32)
        entsize, count = struct.unpack_from(end + "HH", data, 54)
    else:
        (phoff,) = struct.unpack_from(end + "I", data, 28)
        entsize, count = struct.unpack_from(end + "HH", data, 42)
    fh.seek(phoff)
    table = fh.read(entsize * count)
    out = []
    for i in range(count):
        if is64:
            kind, _, offset, vaddr, _, filesz = struct.unpack_from(end + "IIQQQQ", table, i * entsize)
        else:
            kind, offset, vaddr, _, filesz = struct.unpack_from(end + "IIIII", table, i * entsize)
        out.append((kind, offset, vaddr, filesz))
    return out


def read_elf(path: str) -> Elf | None:
    """The loader's view of an ELF file (its interpreter, needed libraries, search paths); None if not ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 52 or head[:4] != b"\x7fELF":
                return None
            is64, end = head[4] == 2, "<" if head[5] == 1 else ">"
            elf = Elf((head[4], struct.unpack_from(end + "H", head, 18)[0]))
            segments = _segments(head, fh, is64, end)
            dynamic = b""
            for kind, offset, _, filesz in segments:
                if kind in (PT_INTERP, PT_DYNAMIC):
                    fh.seek(offset)
                    body = fh.read(filesz)
                    if kind == PT_INTERP:
                        elf.interp = body.split(b"\0", 1)[0].decode()
                    else:
                        dynamic = body
            entry = end + ("qQ" if is64 else "iI")
            usable = len(dynamic) - len(dynamic) % struct.calcsize(entry)
            tags = []
            for tag, value in struct.iter_unpack(entry, dynamic[:usable]):
                if tag == DT_NULL:
                    break
                tags.append((tag, value))
            strtab = next((v for t, v in tags if t == DT_STRTAB), None)
            loads = [(off, va, sz) for k, off, va, sz in segments if k == PT_LOAD]
            base = next(
                (off - va for off, va, sz in loads if strtab is not None and va <= strtab < va + sz), None
            )
            if strtab is None or base is None:
                return elf
            for tag, value in tags:
                if tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH):
                    fh.seek(base + strtab + value)
                    text = fh.read(4096).split(b"\0", 1)[0].decode()
                    if tag == DT_NEEDED:
                        elf.needed.append(text)
                    else:
                        (elf.rpath if tag == DT_RPATH else elf.runpath).extend(text.split(":"))
            return elf
    except (OSError, struct.error, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=1)
def _ld_cache() -> dict[str, tuple[str, ...]]:
    """Library name -> paths, from the loader's cache (`ldconfig -p`); empty where there is none (musl)."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig"):
        if os.access(ldconfig, os.X_OK):
            break
    else:
        return {}
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, list[str]] = {}
    for line in out.splitlines()[1:]:
        name, sep, path = line.strip().partition(" => ")
        if sep:
            found.setdefault(name.split(" (", 1)[0], []).append(path)
    return {name: tuple(paths) for name, paths in found.items()}


@functools.lru_cache(maxsize=4096)
def _ident(path: str) -> tuple[int, int] | None:
    elf = read_elf(path)
    return elf.ident if elf else None


def _expand(dirs: list[str], origin: str, is64: bool) -> list[str]:
    """RPATH/RUNPATH entries with $ORIGIN and $LIB expanded (entries using $PLATFORM are skipped)."""
    out = []
    for d in dirs:
        d = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        d = d.replace("${LIB}", "lib64" if is64 else "lib").replace("$LIB", "lib64" if is64 else "lib")
        if d and "$" not in d:
            out.append(d)
    return out


def find_library(name: str, elf: Elf, origin: str, inherited_rpath: list[str], multiarch: str) -> str | None:
    """Where the loader finds `name` for an object (glibc's order: RPATH, RUNPATH, ld.so.cache, defaults)."""
    if "/" in name:
        return name if os.path.isfile(name) else None
    is64 = elf.ident[0] == 2
    dirs = [] if elf.runpath else _expand(elf.rpath, origin, is64) + inherited_rpath
    dirs += _expand(elf.runpath, origin, is64)
    candidates = [os.path.join(d, name) for d in dirs] + list(_ld_cache().get(name, ()))
    defaults = ([f"/lib/{multiarch}", f"/usr/lib/{multiarch}"] if multiarch else []) + list(DEFAULT_LIB_DIRS)
    candidates += [os.path.join(d, name) for d in defaults]
    return next((c for c in candidates if os.path.isfile(c) and _ident(c) == elf.ident), None)


@dataclass(frozen=True)
class RootPlan:
    """Host paths to bind read-only at the same place, and symlinks to recreate, for one interpreter."""

    binds: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]  # (where, target)
    reasons: dict[str, str] = field(compare=False, hash=False)

    def bwrap_args(self) -> list[str]:
        args: list[str] = []
        for path in self.binds:
            args += ["--ro-bind", path, path]
        for where, target in self.symlinks:
            args += ["--symlink", target, where]
        return args


class _Planner:
    """Collects what must resolve in the jail: each path's symlinks on the way, and what it ends at."""

    def __init__(self) -> None:
        self.binds: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._resolved: dict[str, str] = {}

    def resolve(self, path: str) -> str:
        """The real path, recording every symlink met on the way (each one is recreated in the jail)."""
        if path in self._resolved:
            return self._resolved[path]
        parts = [p for p in os.path.abspath(path).split("/") if p]
        current, hops = "/", 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                current = os.path.dirname(current)
                continue
            candidate = os.path.join(current, name)
            if not os.path.islink(candidate):
                current = candidate
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise SandboxUnavailableError(f"too many symlinks on the way to {path}")
            target = os.readlink(candidate)
            self.links[candidate] = target
            if target.startswith("/"):
                current = "/"
            parts = [p for p in target.split("/") if p] + parts
        self._resolved[path] = current
        return current

    def expose(self, path: str, reason: str) -> str | None:
        """Make `path` resolve in the jail as on the host; its real path, or None if it does not exist."""
        real = self.resolve(path)
        if not os.path.exists(real):
            return None
        self.binds.setdefault(real, reason)
        return real

    def plan(self) -> RootPlan:
        """Drop what a bound directory already brings along, and check that we can read every bind."""
        dirs = sorted(p for p in self.binds if os.path.isdir(p))

        def covered(path: str) -> bool:
            return any(path != d and (d == "/" or path.startswith(d + "/")) for d in dirs)

        binds = sorted(p for p in self.binds if not covered(p))
        for path in binds:
            mode = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
            if not os.access(path, mode):
                raise SandboxUnavailableError(
                    f"the sandbox must bind {path} ({self.binds[path]}), but uid {os.geteuid()} cannot "
                    "read it; make it readable, or use an interpreter installed where this user can read it"
                )
        links = sorted((w, t) for w, t in self.links.items() if not covered(w) and w not in self.binds)
        return RootPlan(tuple(binds), tuple(links), {p: self.binds[p] for p in binds})


def _shared_objects(entries: list[str]) -> list[str]:
    """Extension modules and bundled libraries (numpy.libs and the like) importable from sys.path entries."""
    roots = {os.path.realpath(e) for e in entries if os.path.isdir(e)}
    found = []
    for root in roots:
        for top, subdirs, files in os.walk(root):
            # Another sys.path entry is walked on its own; a site-packages not on sys.path is not importable.
            subdirs[:] = [d for d in subdirs if d not in UNIMPORTABLE and os.path.join(top, d) not in roots]
            found += [os.path.join(top, f) for f in files if f.endswith(".so") or ".so." in f]
    return found


def _libraries(planner: _Planner, roots: list[str], multiarch: str, *, required: bool) -> None:
    """Expose the directory of every library the roots load, transitively; missing ones fail if required."""
    queue = [(root, []) for root in roots]
    seen: set[str] = set()
    while queue:
        path, inherited = queue.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        elf = read_elf(real)
        if elf is None:
            continue
        origin = os.path.dirname(real)
        rpath = inherited + (_expand(elf.rpath, origin, elf.ident[0] == 2) if not elf.runpath else [])
        for name in elf.needed:
            lib = find_library(name, elf, origin, inherited, multiarch)
            if lib is None:
                if required:
                    raise SandboxUnavailableError(
                        f"{real} needs the shared library {name}, which the loader's search path does not "
                        "find here, so the sandbox cannot bind it"
                    )
                continue  # an optional part of a package: it fails the same way outside the jail
            planner.expose(
                os.path.dirname(lib), f"the directory of {name}, which {os.path.basename(real)} loads"
            )
            planner.expose(lib, f"{name}, which {os.path.basename(real)} loads")
            queue.append((lib, rpath))


def probe(python: Path) -> dict:
    """Ask the interpreter (as the worker will run it) where its code and data live."""
    try:
        argv = [str(python), "-I", "-S", "-c", PROBE]  # -S: see PROBE
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env={})
    except OSError as exc:
        raise SandboxUnavailableError(f"cannot run the sandbox's interpreter {python}: {exc}") from None
    if proc.returncode != 0:
        raise SandboxUnavailableError(
            f"the sandbox's interpreter {python} failed to describe itself:\n{proc.stderr.strip()[-2000:]}"
        )
    return json.loads(proc.stdout)


@functools.lru_cache(maxsize=32)
def plan_for(python: Path) -> RootPlan:
    """What the jail of a worker running `python` must contain (computed once per interpreter)."""
    facts = probe(python)
    planner = _Planner()
    if facts["prefix"] != facts["base_prefix"]:
        planner.expose(facts["prefix"], "the environment")
    for entry in facts["path"]:
        if entry:
            planner.expose(entry, "on the interpreter's sys.path")
    executable = planner.expose(str(python), "the interpreter")
    if executable is None:
        raise SandboxUnavailableError(f"the sandbox's interpreter {python} does not exist")
    elf = read_elf(executable)
    if elf is not None and elf.interp:
        if planner.expose(elf.interp, "the dynamic loader") is None:
            raise SandboxUnavailableError(
                f"{executable} names the dynamic loader {elf.interp}, which is missing"
            )
        planner.expose(os.path.dirname(planner.resolve(elf.interp)), "the dynamic loader's directory")
    multiarch = facts.get("multiarch", "")
    _libraries(planner, [executable], multiarch, required=True)
    _libraries(planner, _shared_objects(facts["path"]), multiarch, required=False)
    for path in [*ETC_FILES, *LOCALE_FILES, *facts.get("tzpath", []), *facts.get("ssl", [])]:
        planner.expose(path, "the loader's cache, time zones, the C.UTF-8 locale or certificates")
    for directory in facts.get("ssl_dirs", []):
        real = planner.expose(directory, "CA certificates")
        for entry in os.scandir(real) if real else ():
            if entry.is_symlink():
                target = planner.resolve(entry.path)
                planner.expose(os.path.dirname(target), "CA certificates the certificate directory links to")
    return planner.plan()
