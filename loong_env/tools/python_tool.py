"""The `python` tool: one call runs in the shared warm sandbox of the problem's requirement set, and its
result is worded as a bounded observation (output cut and said so, or the limit the run hit).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from loong_env.sandbox import Sandbox
from loong_env.types import ExecutionResult, ExecutionStatus

FAILED_PREFIX = "[python] failed"
OK_PREFIX = "[python] ok"


class ToolOutput(BaseModel):
    """What one call gave back: the observation text, and the facts the episode records."""

    text: str
    status: str = Field(description="The sandbox status (ok, error, timeout, ...) or 'malformed'.")
    failed: bool
    duration_s: float = 0.0
    truncated: bool = False


def cut(text: str, limit: int) -> tuple[str, bool]:
    """`text` kept within `limit` characters (its head and tail), and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    head = limit * 2 // 3
    tail = limit - head
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[... {dropped} characters cut ...]\n{text[len(text) - tail :]}", True


def _limit_hit(result: ExecutionResult, sandbox: Sandbox) -> str:
    """One sentence on how the run ended, naming the limit when one stopped it."""
    lim = sandbox.limits
    return {
        ExecutionStatus.ok: "ok",
        ExecutionStatus.error: f"failed: the code raised an error (exit code {result.exit_code})",
        ExecutionStatus.timeout: f"failed: the run hit the {lim.timeout_s:g} s time limit and was stopped",
        ExecutionStatus.memory_limit: f"failed: the run hit the {lim.memory_mb} MiB memory limit",
        ExecutionStatus.output_limit: (
            f"failed: the run printed more than the {lim.max_output_bytes} byte output limit and was stopped"
        ),
        ExecutionStatus.killed: "failed: the run was killed (too many processes, or a signal)",
    }[result.status]


def describe(result: ExecutionResult, sandbox: Sandbox, max_chars: int) -> ToolOutput:
    """The observation of one finished run: status line, then stdout and stderr, each cut to `max_chars`."""
    lines = [f"[python] {_limit_hit(result, sandbox)} ({result.duration_s:.2f} s)"]
    truncated = False
    for name, stream in (("stdout", result.stdout), ("stderr", result.stderr)):
        if not stream:
            continue
        shown, was_cut = cut(stream, max_chars)
        truncated |= was_cut
        note = f" ({len(stream)} characters, cut to {max_chars})" if was_cut else ""
        lines.append(f"{name}{note}:\n{shown.rstrip()}")
    if not result.stdout and result.ok:
        lines.append("stdout: (nothing printed; print() the values you want to see)")
    return ToolOutput(
        text="\n".join(lines),
        status=str(result.status),
        failed=not result.ok,
        duration_s=result.duration_s,
        truncated=truncated,
    )


def malformed(error: str) -> ToolOutput:
    """The observation of a call that could not run."""
    return ToolOutput(text=f"{FAILED_PREFIX}: malformed call: {error}", status="malformed", failed=True)


def not_run(budget: int) -> ToolOutput:
    """The observation of a call past the episode's tool-call budget."""
    text = f"{FAILED_PREFIX}: not run: this episode's budget of {budget} tool calls is spent"
    return ToolOutput(text=text, status="over_budget", failed=True)


def tool_sandbox(
    requirements: Sequence[str], *, timeout_s: float, memory_mb: int, warmup: Sequence[str] = ()
) -> Sandbox:
    """The process-wide warm pool for this requirement set (shared with PythonVerifier at equal limits)."""
    options: dict[str, object] = {"timeout_s": timeout_s}
    if memory_mb != 1024:  # the verifier's pool is keyed without it: keep the default key to share it
        options["memory_mb"] = memory_mb
    return Sandbox.shared(list(requirements), warmup=list(warmup), **options)  # type: ignore[arg-type]


async def run_python(code: str, sandbox: Sandbox, *, max_chars: int = 2000) -> ToolOutput:
    """One call of the tool: run `code` in `sandbox`, word the result; a broken sandbox is an observation."""
    try:
        result = await sandbox.run(code)
    except Exception as exc:  # noqa: BLE001 - an unavailable sandbox fails this call, not the batch
        return ToolOutput(
            text=f"{FAILED_PREFIX}: the sandbox is unavailable: {exc}", status="error", failed=True
        )
    return describe(result, sandbox, max_chars)
