"""What one sandboxed run may use: the limits every run gets, enforced by the kernel."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SandboxLimits(BaseModel):
    """What one run may use; every limit is enforced by the kernel, not by politeness."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(
        default=10.0, gt=0, description="Wall-clock limit; CPU time is capped just above it."
    )
    memory_mb: int = Field(
        default=1024, gt=0, description="Memory all processes of one run may add together (docs/sandbox.md)."
    )
    max_output_bytes: int = Field(default=1_000_000, gt=0, description="stdout + stderr, together.")
    max_processes: int = Field(
        default=64, gt=0, description="Processes and threads alive at once in one run."
    )
    max_open_files: int = Field(default=256, gt=16)
    max_file_mb: int = Field(default=64, gt=0, description="Largest file the snippet may write.")
    scratch_mb: int = Field(default=512, gt=0, description="Size of each worker's private /tmp (RAM-backed).")
