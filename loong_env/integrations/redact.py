"""Host paths out of what a server tells its callers: the checkout, the interpreter, the caches, uv, home.

A verdict's reason can carry a path (a plug-in's "no file x.py in /srv/loong/verifiers", a traceback, a
code answer that prints `sys.executable`), and a caller of a network service has no business learning
the server's layout. `HostPaths.redact` replaces each known host path by a placeholder (`<checkout>`,
`<python>`, `<cache>`, `<uv>`, `<home>`, `<tmp>`, `<cwd>`); the server applies it to every reply body.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

# A path counts where it is not glued to more of a name before it, and ends at a separator or a quote.
_BEFORE = r"(?<![\w.\-/~])"
_AFTER = r"(?=[/\\\"'\s:;,)\]}>]|$)"


def _uv_dir() -> str | None:
    try:
        from uv import find_uv_bin

        return str(Path(find_uv_bin()).parent)
    except Exception:  # noqa: BLE001  (no uv, no uv path to hide)
        return None


def host_paths() -> dict[str, str]:
    """Placeholder -> each host folder whose name a reply must not carry (as given and as resolved)."""
    import loong_env
    from loong_env.sandbox import cache_root
    from loong_env.seeds.library import plugin_roots, seeds_root

    named: list[tuple[str, str | os.PathLike[str] | None]] = [
        ("<seeds>", seeds_root()),
        *(("<plugins>", root) for root in plugin_roots()),
        ("<checkout>", Path(loong_env.__file__).parent.parent),
        ("<cache>", cache_root()),
        ("<uv>", _uv_dir()),
        ("<python>", sys.prefix),
        ("<python>", sys.base_prefix),
        ("<python>", Path(sys.executable).parent),
        ("<cwd>", os.getcwd()),
        ("<home>", Path.home()),
        ("<tmp>", tempfile.gettempdir()),
    ]
    out: dict[str, str] = {}
    for placeholder, path in named:
        if path is None:
            continue
        for form in {os.fspath(path), os.path.realpath(path)}:
            form = form.rstrip("/")
            if len(form) > 1 and form not in out:  # never "/" itself
                out[form] = placeholder
    return out


class HostPaths:
    """Replaces host paths in text by placeholders; the longest path wins where one holds another."""

    def __init__(self, paths: dict[str, str] | None = None) -> None:
        self.paths = host_paths() if paths is None else paths
        ordered = sorted(self.paths, key=len, reverse=True)
        alternation = "|".join(re.escape(p) for p in ordered)
        self._pattern = re.compile(f"{_BEFORE}(?:{alternation}){_AFTER}") if ordered else None

    def redact(self, text: str) -> str:
        """`text` with every host path replaced by its placeholder."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.paths[m.group(0)], text)

    def found(self, texts: Iterable[str]) -> list[str]:
        """The host paths that occur in any of `texts` (for tests and audits)."""
        if self._pattern is None:
            return []
        return sorted({m.group(0) for t in texts for m in self._pattern.finditer(t)})
