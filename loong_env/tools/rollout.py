"""Driving a chat model through the envs: tool episodes (ToolEnv) and prose answers (SingleStepEnv), with
the same model and sampling, and the per-domain pass@1 table that compares them (Loong's gap).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from loong_env.tools.calls import PYTHON_TOOL
from loong_env.types import DataPoint

if TYPE_CHECKING:
    from loong_env.env import SingleStepEnv
    from loong_env.llm import LLMClient
    from loong_env.seeds.dataset import SeedDataset
    from loong_env.tool_env import ToolEnv
    from loong_env.tools.episode import Episode


class Outcome(BaseModel):
    """One problem's result under one mode: the verdict, what it cost, and how the model used the tool."""

    mode: str = Field(description="'tools' or 'prose'.")
    domain: str
    datapoint_id: str
    correct: bool
    reward: float
    completion_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    end: str | None = None
    error: str | None = Field(default=None, description="The LLM error that stopped the episode, if any.")


async def run_tool_episodes(
    env: ToolEnv,
    client: LLMClient,
    *,
    batch_size: int,
    seed: int | None = None,
    tool_schema: bool = True,
    **sampling: Any,
) -> list[Episode]:
    """Reset `env` and play every episode to its end with `client`, all in flight at once.

    `tool_schema` sends `tools=[PYTHON_TOOL]` (OpenAI tool calling); either way a fenced block is a call.
    An LLM error ends that episode's play (it stays undone, the error in its metadata); the batch goes on.
    """
    await env.reset(batch_size=batch_size, seed=seed)
    if tool_schema:
        sampling = {"tools": [PYTHON_TOOL], **sampling}

    async def play(index: int) -> None:
        episode = env.episodes[index]
        meta = episode.metadata
        meta.update(completion_tokens=0, prompt_tokens=0, model_calls=0)
        t0 = time.monotonic()
        while not episode.done:
            try:
                completion = await client.chat(episode.messages, **sampling)
            except Exception as exc:  # noqa: BLE001 - one failed request ends one episode, not the batch
                meta["error"] = f"{type(exc).__name__}: {exc}"
                break
            meta["completion_tokens"] += completion.usage.completion_tokens
            meta["prompt_tokens"] += completion.usage.prompt_tokens
            meta["model_calls"] += 1
            await env.step({index: completion})
        meta["seconds"] = time.monotonic() - t0

    await asyncio.gather(*(play(i) for i in range(len(env.episodes))))
    return env.episodes


def tool_outcomes(episodes: Iterable[Episode]) -> list[Outcome]:
    """One Outcome per tool episode (an unfinished one counts as wrong)."""
    return [
        Outcome(
            mode="tools",
            domain=e.datapoint.domain,
            datapoint_id=e.datapoint.id,
            correct=bool(e.verification and e.verification.correct),
            reward=e.reward,
            completion_tokens=int(e.metadata.get("completion_tokens", 0)),
            model_calls=int(e.metadata.get("model_calls", 0)),
            tool_calls=len(e.tool_calls),
            end=e.end,
            error=e.metadata.get("error"),
        )
        for e in episodes
    ]


async def run_prose(
    env: SingleStepEnv, client: LLMClient, *, batch_size: int, seed: int | None = None, **sampling: Any
) -> list[Outcome]:
    """Reset `env` and answer every question in one model turn (SingleStepEnv as it is: the prose half)."""
    observations = await env.reset(batch_size=batch_size, seed=seed)

    async def answer(question: str) -> tuple[str, int, str | None]:
        try:
            completion = await client.complete(question, **sampling)
        except Exception as exc:  # noqa: BLE001
            return "", 0, f"{type(exc).__name__}: {exc}"
        return completion.text, completion.usage.completion_tokens, None

    answers = await asyncio.gather(*(answer(o.question) for o in observations))
    results = await env.step({o.index: text for o, (text, _, _) in zip(observations, answers)})
    return [
        Outcome(
            mode="prose",
            domain=r.datapoint.domain,
            datapoint_id=r.datapoint.id,
            correct=r.verification.correct,
            reward=r.reward,
            completion_tokens=tokens,
            model_calls=1,
            end="answer",
            error=error,
        )
        for r, (_, tokens, error) in zip(results, answers)
    ]


class GapRow(BaseModel):
    """pass@1 of one domain without and with the tool."""

    domain: str
    n: int
    prose: float
    tools: float
    tool_calls_per_episode: float
    tokens_prose: float
    tokens_tools: float


def gap_table(outcomes: Sequence[Outcome]) -> list[GapRow]:
    """Per domain (and 'all'): pass@1 prose vs tools, tool calls and completion tokens per episode."""
    by: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by[(o.domain, o.mode)].append(o)
        by[("all", o.mode)].append(o)
    domains = sorted({d for d, _ in by if d != "all"}) + ["all"]

    def mean(rows: list[Outcome], value: Any) -> float:
        return sum(value(o) for o in rows) / len(rows) if rows else float("nan")

    table = []
    for domain in domains:
        prose, tools = by.get((domain, "prose"), []), by.get((domain, "tools"), [])
        table.append(
            GapRow(
                domain=domain,
                n=max(len(prose), len(tools)),
                prose=mean(prose, lambda o: o.correct),
                tools=mean(tools, lambda o: o.correct),
                tool_calls_per_episode=mean(tools, lambda o: o.tool_calls),
                tokens_prose=mean(prose, lambda o: o.completion_tokens),
                tokens_tools=mean(tools, lambda o: o.completion_tokens),
            )
        )
    return table


def markdown(table: Sequence[GapRow], seconds: dict[str, float] | None = None) -> str:
    """The gap table as Markdown (seconds per episode, by mode, in the caption line when given)."""
    columns = ["domain", "n", "pass@1 prose", "pass@1 tools", "gap", "tool calls/ep", "tokens/ep prose"]
    header = "| " + " | ".join([*columns, "tokens/ep tools"]) + " |"
    lines = [
        header,
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r.domain} | {r.n} | {r.prose:.2f} | {r.tools:.2f} | {r.tools - r.prose:+.2f} | "
            f"{r.tool_calls_per_episode:.1f} | {r.tokens_prose:.0f} | {r.tokens_tools:.0f} |"
        )
    if seconds:
        lines.append("")
        lines.append(
            "seconds per episode (run wall time / episodes): "
            + ", ".join(f"{mode} {value:.2f}" for mode, value in seconds.items())
        )
    return "\n".join(lines)


def fixed_draw(
    dataset: SeedDataset, *, per_domain: int, seed: int = 0, max_difficulty: int | None = None
) -> list[DataPoint]:
    """`per_domain` seeds of every domain, drawn under `seed`: the same problems for every mode and model."""
    rng = random.Random(seed)
    drawn: list[DataPoint] = []
    for domain in sorted(dataset.domains):
        pool = [
            dp
            for dp in dataset.filter(domain=domain)
            if max_difficulty is None or (dp.difficulty or 1) <= max_difficulty
        ]
        drawn += rng.sample(pool, min(per_domain, len(pool)))
    return drawn


class Gap(BaseModel):
    """What `evaluate` measured: every outcome, the table, and the wall time of each mode."""

    outcomes: list[Outcome]
    table: list[GapRow]
    seconds_per_episode: dict[str, float]
    model: str


async def evaluate(
    problems: Sequence[DataPoint],
    client: LLMClient,
    *,
    modes: Sequence[str] = ("prose", "tools"),
    max_turns: int = 4,
    max_tool_calls: int = 3,
    tool_schema: bool = True,
    max_output_chars: int = 1000,
    **sampling: Any,
) -> Gap:
    """pass@1 of `problems` with prose only (SingleStepEnv) and with the tool (ToolEnv), same sampling."""
    from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv
    from loong_env.tool_env import ToolEnv

    outcomes: list[Outcome] = []
    seconds: dict[str, float] = {}
    n = len(problems)
    for mode in modes:
        t0 = time.monotonic()
        if mode == "prose":
            prose = SingleStepEnv(list(problems), instruction=BOXED_INSTRUCTION, seed=0)
            outcomes += await run_prose(prose, client, batch_size=n, seed=0, **sampling)
        else:
            env = ToolEnv(
                list(problems),
                seed=0,
                max_turns=max_turns,
                max_tool_calls=max_tool_calls,
                max_output_chars=max_output_chars,
            )
            episodes = await run_tool_episodes(
                env, client, batch_size=n, seed=0, tool_schema=tool_schema, **sampling
            )
            outcomes += tool_outcomes(episodes)
        seconds[mode] = (time.monotonic() - t0) / max(1, n)
    return Gap(outcomes=outcomes, table=gap_table(outcomes), seconds_per_episode=seconds, model=client.model)
