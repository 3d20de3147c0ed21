"""ToolEnv: its cost over the bare sandbox with a scripted policy, and Loong's gap with the local model.

    flock /tmp/loong-heavy.lock .venv/bin/python benchmarks/bench_tool_env.py [--batch 64] [--rounds 5]
        [--per-domain 5] [--max-tokens 256] [--skip-model]

Part 1 (no model): `batch` episodes in flight, each a scripted policy that makes `calls` fixed tool calls
(fenced ```python blocks) and then answers in \\boxed{}. Baseline, same run, same warm sandbox pool:
`Sandbox.run` of exactly the same snippets, all in flight. Rounds alternate env / bare; medians are
reported. Overhead = env time / bare time - 1, for the tool turns alone (reset + call steps) and for the
whole episode (the answer's verification included). Goal: tool turns <= 10 % over the sandbox.

Part 2 (the default local model): pass@1 with prose only (SingleStepEnv, one turn) vs with the tool
(ToolEnv), per domain, on a fixed draw of `per-domain` seeds of every domain, same sampling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from _hardware import hardware

from loong_env.tool_env import ToolEnv
from loong_env.types import DataPoint

SNIPPET = "total = 0\nfor i in range({n}):\n    total += i * i % 7\nprint(total + {k})"


def problems(batch: int) -> list[DataPoint]:
    """Arithmetic problems needing no packages; the answer is what the scripted calls print."""
    return [
        DataPoint(
            question=f"Problem {k}: what is sum(i*i % 7 for i < 20000) + {k}?",
            final_answer=str(sum(i * i % 7 for i in range(20_000)) + k),
            domain="bench_tool",
        )
        for k in range(batch)
    ]


def code_for(question: str, call: int) -> str:
    k = int(question.split("Problem ")[1].split(":")[0])
    return SNIPPET.format(n=20_000 if call == 0 else 2_000, k=k)


async def env_round(env: ToolEnv, batch: int, calls: int, seed: int) -> tuple[float, float, int]:
    """(seconds for the tool turns, seconds for whole episodes, calls run) of one batch."""
    t0 = time.perf_counter()
    observations = await env.reset(batch_size=batch, seed=seed)
    outputs: dict[int, str] = {}
    for call in range(calls):
        fenced = {o.index: f"```python\n{code_for(o.question, call)}\n```" for o in observations}
        for result in await env.step(fenced):
            outputs.setdefault(result.index, result.text)  # the first call computes the answer
    tools_s = time.perf_counter() - t0
    answers = {i: f"\\boxed{{{text.split('stdout:')[1].split()[0]}}}" for i, text in outputs.items()}
    results = await env.step(answers)
    total_s = time.perf_counter() - t0
    assert all(r.done and r.rewards["correctness"] == 1.0 for r in results), "the scripted policy failed"
    return tools_s, total_s, sum(e.calls_run for e in env.episodes)


async def bare_round(sandbox, questions: list[str], calls: int) -> float:
    """Seconds for the sandbox alone to run the same snippets, all in flight, call after call."""
    t0 = time.perf_counter()
    for call in range(calls):
        runs = await asyncio.gather(*(sandbox.run(code_for(q, call)) for q in questions))
        assert all(r.ok for r in runs)
    return time.perf_counter() - t0


async def overhead(batch: int, calls: int, rounds: int) -> dict:
    env = ToolEnv(problems(batch), seed=0, max_tool_calls=calls, max_turns=calls + 1)
    await env.start()
    sandbox = env._sandbox([])  # the very pool the env's calls run in
    await sandbox.start()
    await env_round(env, batch, calls, seed=999)  # warm both paths once
    env_tools, env_total, bare = [], [], []
    for r in range(rounds):
        questions = [dp.question for dp in env.core.source]  # type: ignore[union-attr]  # the batch drawn
        if r % 2:  # alternate which path goes first, so neither always meets a warmer machine
            bare.append(await bare_round(sandbox, questions, calls))
        tools_s, total_s, ran = await env_round(env, batch, calls, seed=r)
        env_tools.append(tools_s)
        env_total.append(total_s)
        if not r % 2:
            bare.append(await bare_round(sandbox, questions, calls))
        assert ran == batch * calls
    med = {
        k: statistics.median(v)
        for k, v in {"env_tools": env_tools, "env_total": env_total, "bare": bare}.items()
    }
    n_calls = batch * calls
    return {
        "batch": batch,
        "calls_per_episode": calls,
        "rounds": rounds,
        "workers": sandbox.n_workers,
        "bare_calls_per_s": n_calls / med["bare"],
        "env_calls_per_s": n_calls / med["env_tools"],
        "env_episodes_per_s": batch / med["env_total"],
        "bare_episodes_per_s": batch / med["bare"],
        "overhead_tool_turns": med["env_tools"] / med["bare"] - 1,
        "overhead_whole_episode": med["env_total"] / med["bare"] - 1,
        "medians_s": med,
    }


def overhead_table(o: dict) -> str:
    calls, med = o["calls_per_episode"], o["medians_s"]
    rows = [
        ("bare `Sandbox.run` (baseline)", o["bare_episodes_per_s"], o["bare_calls_per_s"], 1.0),
        (
            f"ToolEnv, tool turns (reset + {calls} call steps)",
            o["batch"] / med["env_tools"],
            o["env_calls_per_s"],
            1 + o["overhead_tool_turns"],
        ),
        (
            "ToolEnv, whole episodes (+ the boxed answer judged)",
            o["env_episodes_per_s"],
            o["batch"] * calls / med["env_total"],
            1 + o["overhead_whole_episode"],
        ),
    ]
    lines = ["| path | episodes/s | tool calls/s | time vs bare sandbox |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {eps:.1f} | {cps:.1f} | {ratio:.2f} |" for name, eps, cps, ratio in rows]
    return "\n".join(lines)


async def gap(per_domain: int, max_tokens: int, max_turns: int, max_tool_calls: int) -> tuple[str, dict]:
    from loong_env.llm import LLMClient
    from loong_env.seeds.dataset import load_seeds
    from loong_env.tools.calls import PYTHON_TOOL
    from loong_env.tools.rollout import Gap, evaluate, fixed_draw, gap_table, markdown

    draw = fixed_draw(load_seeds(), per_domain=per_domain, seed=0)
    async with LLMClient(max_concurrency=4) as client:
        tool_schema = True
        try:  # does this server take OpenAI tool schemas? (llama.cpp does with its jinja templates)
            await client.chat([{"role": "user", "content": "hi"}], tools=[PYTHON_TOOL], max_tokens=4)
        except Exception as exc:  # noqa: BLE001
            print(f"the server refused `tools` ({exc}); tool calls are fenced blocks only")
            tool_schema = False
        outcomes, seconds = [], {}
        for mode in ("prose", "tools"):  # one mode at a time, printed as it ends (a long run shows progress)
            part = await evaluate(
                draw,
                client,
                modes=(mode,),
                max_turns=max_turns,
                max_tool_calls=max_tool_calls,
                tool_schema=tool_schema,
                temperature=0.0,
                max_tokens=max_tokens,
            )
            outcomes += part.outcomes
            seconds |= part.seconds_per_episode
            solved = sum(o.correct for o in part.outcomes)
            print(f"{mode}: {solved}/{len(part.outcomes)} correct, {seconds[mode]:.1f} s/episode", flush=True)
        result = Gap(
            outcomes=outcomes, table=gap_table(outcomes), seconds_per_episode=seconds, model=part.model
        )
    ends: dict[str, int] = {}
    for o in result.outcomes:
        if o.mode == "tools":
            key = str(o.end) if o.error is None else "llm error"
            ends[key] = ends.get(key, 0) + 1
    errors = [o.error for o in result.outcomes if o.error]
    caption = (
        f"model {result.model}; {len(draw)} seeds ({per_domain} per domain, seed 0); temperature 0, "
        f"max_tokens {max_tokens}; tool episodes: max_turns {max_turns}, max_tool_calls {max_tool_calls}, "
        f"tool schema sent: {tool_schema}; tool episodes ended by: {ends}; LLM errors: {len(errors)}"
        + (f" (first: {errors[0][:200]})" if errors else "")
    )
    return caption + "\n\n" + markdown(result.table, result.seconds_per_episode), {
        "caption": caption,
        **result.model_dump(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--calls", type=int, default=2, help="tool calls per scripted episode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-domain", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--max-tool-calls", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true", help="only the scripted part")
    parser.add_argument("--skip-scripted", action="store_true", help="only the model part")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    print(hardware())
    out: dict = {"hardware": hardware()}
    if not args.skip_scripted:
        o = asyncio.run(overhead(args.batch, args.calls, args.rounds))
        out["overhead"] = o
        print(
            f"\n## Scripted policy vs bare sandbox (batch {args.batch}, {args.calls} calls/episode, "
            f"{o['workers']} sandbox workers, median of {args.rounds} rounds)\n"
        )
        print(overhead_table(o))
    if not args.skip_model:
        t0 = time.perf_counter()
        table, data = asyncio.run(gap(args.per_domain, args.max_tokens, args.max_turns, args.max_tool_calls))
        out["gap"] = data
        print(f"\n## pass@1, prose vs tool (took {time.perf_counter() - t0:.0f} s)\n")
        print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
