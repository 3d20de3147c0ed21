"""What an install may do on this host: the operator's `[sandbox]` settings, and the checks they open.

Requirement sets come from data (a Loong record's `required_dependencies`, a contributed domain folder, a
reward-server request), and uv runs on the host, outside the jail. So by default an install runs no code of
the data's choosing: only wheels are installed (a source distribution would run its build backend here),
only from the indexes the operator configured for uv (its environment, `UV_INDEX_URL` and friends), and
only named requirements (no `name @ https://...`, `name @ file:///...` or VCS reference, which would also
pick the code and where it comes from). An operator who trusts the data may open either, in loong.toml:

    [sandbox]
    allow_source_builds = true       # build sdists: their build backends run on this host, unjailed
    allow_direct_references = true   # accept `name @ <url or file>`: the data picks what is installed

Options and index URLs are never read from a requirement set, whatever the settings: a string that is not
a PEP 508 requirement (`-e ...`, `--index-url ...`, a bare URL or path) is refused as invalid.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.requirements import Requirement
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loong_env.errors import ConfigError
from loong_env.sandbox.errors import InstallRefusedError
from loong_env.settings import config_file, read_table

TABLE = "sandbox"
SOURCE_BUILDS = "allow_source_builds"
DIRECT_REFERENCES = "allow_direct_references"


class InstallPolicy(BaseModel):
    """What uv may do when it installs a requirement set (loong.toml's `[sandbox]` table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_source_builds: bool = Field(
        default=False,
        description="Build source distributions; their build backends run on this host, outside the jail.",
    )
    allow_direct_references: bool = Field(
        default=False, description="Accept `name @ <url>` and `name @ file:///...` requirements from data."
    )

    @classmethod
    def from_settings(cls) -> InstallPolicy:
        """The policy in loong.toml's `[sandbox]` table (the defaults when there is none)."""
        path = config_file()
        if path is None:
            return cls()
        table = read_table(path, TABLE)
        unknown = sorted(set(table) - set(cls.model_fields))
        if unknown:  # a misspelt permission must not pass silently as the default
            raise ConfigError(
                f"{path.name}: [{TABLE}] has unknown settings {unknown}; known: {sorted(cls.model_fields)}"
            )
        try:
            return cls.model_validate(table)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path.name}: [{TABLE}] is invalid: {problems}") from None

    def uv_options(self) -> list[str]:
        """The `uv pip install` options this policy asks for."""
        return [] if self.allow_source_builds else ["--no-build"]

    def check(self, requirements: Iterable[str]) -> None:
        """Refuse direct references unless allowed (InstallRefusedError naming the setting)."""
        if self.allow_direct_references:
            return
        refs = [text for text in requirements if Requirement(text).url]
        if refs:
            raise InstallRefusedError(
                f"refused to install {', '.join(map(repr, refs))}: a direct URL or file reference picks the "
                f"code to install, and requirement sets come from data; name the package instead, or set "
                f"[{TABLE}] {DIRECT_REFERENCES} = true in loong.toml to trust this data",
                requirements=refs,
                setting=DIRECT_REFERENCES,
            )

    def refused_build(self, requirements: list[str], uv_output: str) -> InstallRefusedError | None:
        """uv's failure as a refusal when it failed only because a source build was not allowed."""
        if self.allow_source_builds or not _needs_build(uv_output):
            return None
        return InstallRefusedError(
            f"refused to build a source distribution for [{', '.join(requirements)}]: no wheel satisfies it, "
            f"and building runs the package's own build code on this host; pin a version that has a wheel, "
            f"or set [{TABLE}] {SOURCE_BUILDS} = true in loong.toml to trust this data",
            requirements=requirements,
            setting=SOURCE_BUILDS,
        )


def _needs_build(uv_output: str) -> bool:
    """Did uv fail because it would have had to build (its messages for --no-build)?"""
    text = uv_output.lower()
    return "building source distributions is disabled" in text or "building from source is disabled" in text
