"""`loong demo`: the whole loop in a few minutes with the local model — generate, then train-style env steps.

Part 1 grows problems from seeds with a time budget and prints each candidate's verdict and reason.
Part 2 runs `SingleStepEnv` over seeds with the model as the policy and rewards its `\\boxed{}` answers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from loong_env.cli.options import add_endpoint_options, endpoint

if TYPE_CHECKING:  # imported lazily at run time: `loong --help` must not load the LLM and generator stack
    from loong_env.generators.keep import Verdict
    from loong_env.generators.run import GenerationSummary
    from loong_env.llm import LLMClient

POLICY_PROMPT = (
    "Solve the problem. Think step by step, briefly. "
    "End with the final answer alone inside \\boxed{{}}.\n\nProblem: {question}"
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `loong demo`."""
    p = sub.add_parser(
        "demo",
        help="the main job: a short generation run, then an RL env loop rewarding the local model",
        description="Runs the whole loop with the embedded local model (no API key): a time-budgeted "
        "generation run that prints every candidate's verdict, then SingleStepEnv episodes over seeds where "
        "the model's \\boxed{} answers are verified and rewarded. Any OpenAI-compatible server works via "
        "--base-url/--model.",
    )
    p.add_argument("--domain", default="number_theory_combinatorics", help="seed domain to generate from")
    p.add_argument("--method", default="few-shot", choices=["few-shot", "self-instruct", "evol-instruct"])
    p.add_argument("--gen-seconds", type=float, default=120.0, help="time budget of the generation part (s)")
    p.add_argument(
        "--gen-attempts", type=int, default=None, help="stop generating after this many candidates"
    )
    p.add_argument("--episodes", type=int, default=8, help="env episodes (questions) in the RL part")
    p.add_argument(
        "--env-domains",
        nargs="*",
        default=["number_theory_combinatorics", "probability_statistics", "advanced_math", "finance"],
        help="seed domains the env draws questions from",
    )
    p.add_argument("--max-tokens", type=int, default=512, help="token budget of each policy answer")
    p.add_argument(
        "--max-difficulty",
        type=int,
        default=2,
        choices=range(1, 6),
        help="hardest seed level the env serves (the default local model is 0.5B)",
    )
    p.add_argument("--out", help="generation output directory (default: a fresh temporary one)")
    p.add_argument("--seed", type=int, default=0)
    add_endpoint_options(p)
    p.set_defaults(func=lambda args: asyncio.run(run_demo(args)))


async def run_demo(args: argparse.Namespace) -> int:
    """Both parts, sharing one LLM client (and so one local server)."""
    from loong_env.llm import LLMClient

    console = Console(width=max(120, Console().width))  # tables stay readable when piped to a file or CI log
    console.rule("[bold]loong_env demo")
    started = time.perf_counter()
    client = LLMClient(**endpoint(args), max_concurrency=4)
    console.print(f"LLM: {client!r}", highlight=False)
    async with client:
        generation = await _generate(args, client, console)
        episodes = await _env_loop(args, client, console)
    _summary(console, generation, episodes, time.perf_counter() - started, client)
    return 0


async def _generate(args: argparse.Namespace, client: LLMClient, console: Console) -> GenerationSummary:
    from loong_env.generators.run import run_generation

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="loong-demo-"))
    console.rule(f"[bold]1. generate: {args.method} on {args.domain}, {args.gen_seconds:.0f} s budget")
    console.print(f"output: {out}  (accepted.jsonl, rejected.jsonl, manifest.json)", highlight=False)

    verdicts: list[Verdict] = []

    def show(verdict: Verdict) -> None:
        verdicts.append(verdict)
        mark = "[green]kept[/green]" if verdict.accepted else f"[red]rejected[/red] ({verdict.reason.value})"
        question = " ".join((verdict.question or "").split())[:90]
        detail = f" — {verdict.detail[:100]}" if verdict.detail and not verdict.accepted else ""
        console.print(f"  #{verdict.attempt:<3} {mark} {question!r}{detail}", highlight=False)

    summary = await run_generation(
        args.domain,
        out=out,
        n=1_000,
        method=args.method,
        time_budget_s=args.gen_seconds,
        max_attempts=args.gen_attempts,
        client=client,
        seed=args.seed,
        on_verdict=show,
    )
    console.print(kept_table(verdicts))
    return summary


# Short names of the keep rule's checks, in the order a candidate passes them.
CHECK_LABELS = {
    "shape": "shape",
    "novelty": "novel",
    "well_posed": "posed",
    "code_ran": "ran",
    "grounded": "grounded",
    "sensitive": "sensitive",
    "solve_agreed": "solve agreed",
}


def _checks(verdict: Verdict) -> str:
    return " ".join(CHECK_LABELS.get(c, c) for c in verdict.checks) or "-"


def closest(verdicts: list[Verdict]) -> Verdict | None:
    """The rejected candidate that passed the most checks (the latest of equals): what came closest."""
    rejected = [v for v in verdicts if not v.accepted]
    return max(rejected, key=lambda v: (len(v.checks), v.attempt)) if rejected else None


def kept_table(verdicts: list[Verdict]) -> Table:
    """Each kept item with the checks it passed; when none was kept, the closest candidate and its stop."""
    kept = [v for v in verdicts if v.accepted]
    if kept:
        table = Table(title=f"kept items ({len(kept)}): the checks each passed", expand=True)
        table.add_column("#", min_width=3, no_wrap=True)
        table.add_column("question", ratio=1, overflow="fold")
        table.add_column("answer", max_width=16, overflow="ellipsis", no_wrap=True)
        table.add_column("checks passed", min_width=36)
        for v in kept:
            table.add_row(str(v.attempt), " ".join((v.question or "").split()), v.answer or "", _checks(v))
        return table
    table = Table(title="nothing kept: the candidate that came closest", expand=True, show_header=False)
    table.add_column("what", min_width=14, style="bold", no_wrap=True)
    table.add_column("value", ratio=1, overflow="fold")
    near = closest(verdicts)
    if near is None:
        table.add_row("candidates", "none finished")
        return table
    table.add_row("candidate", f"#{near.attempt}")
    table.add_row("question", " ".join((near.question or "").split()) or "-")
    table.add_row("code answer", near.answer or "-")
    table.add_row("checks passed", _checks(near))
    table.add_row("stopped at", f"{near.reason.value if near.reason else '?'}: {near.detail}")
    return table


async def _env_loop(args: argparse.Namespace, client: LLMClient, console: Console) -> list[dict]:
    from loong_env.env import SingleStepEnv
    from loong_env.seeds.dataset import SeedDataset, load_seeds

    console.rule(f"[bold]2. env: {args.episodes} episodes over {', '.join(args.env_domains)}")
    seeds = SeedDataset.concat(load_seeds(d) for d in args.env_domains)
    seeds = seeds.filter(difficulty=range(1, args.max_difficulty + 1))
    env = SingleStepEnv(seeds)
    observations = await env.reset(batch_size=args.episodes, seed=args.seed)

    async def policy(question: str) -> str:
        reply = await client.chat(
            [{"role": "user", "content": POLICY_PROMPT.format(question=question)}],
            temperature=0.0,
            max_tokens=args.max_tokens,
        )
        return reply.text

    answers = await asyncio.gather(*(policy(o.question) for o in observations))
    results = await env.step({o.index: a for o, a in zip(observations, answers, strict=True)})
    rows = [
        {"domain": r.datapoint.domain, "reward": r.reward, "status": r.verification.status.value}
        for r in results
    ]
    table = env_table(results)
    console.print(table)
    return rows


def env_table(results: list) -> Table:
    """The env episodes in a table that fits 120 columns: short fixed columns, the question folds."""
    table = Table(title="env episodes", expand=True)
    table.add_column("#", min_width=2, no_wrap=True, justify="right")
    table.add_column("domain", min_width=13, max_width=16, no_wrap=True, overflow="ellipsis")
    table.add_column("d", min_width=1, no_wrap=True)
    table.add_column("question", ratio=1, overflow="fold")
    table.add_column("answer", min_width=8, max_width=14, no_wrap=True, overflow="ellipsis")
    table.add_column("reference", min_width=9, max_width=14, no_wrap=True, overflow="ellipsis")
    table.add_column("verdict", min_width=9, no_wrap=True)
    table.add_column("reward", min_width=6, no_wrap=True, justify="right")
    for r in results:
        dp, ver = r.datapoint, r.verification
        question = " ".join(dp.question.split())
        table.add_row(
            str(r.observation.index),
            dp.domain,
            str(dp.difficulty or "-"),
            question if len(question) <= 120 else question[:117] + "...",
            ver.extracted or "—",
            dp.final_answer,
            ver.status.value,
            f"{r.reward:.2f}",
        )
    return table


def _summary(
    console: Console, generation: GenerationSummary, episodes: list[dict], seconds: float, client: LLMClient
) -> None:
    console.rule("[bold]summary")
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    finished = generation.accepted + generation.rejected
    table.add_row("generation: candidates finished", str(finished))
    table.add_row("generation: kept (novel, code and CoT agree)", str(generation.accepted))
    for reason, count in sorted(generation.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  rejected: {reason}", str(count))
    correct = sum(1 for e in episodes if e["status"] == "correct")
    table.add_row("env: episodes", str(len(episodes)))
    table.add_row("env: correct answers", f"{correct}/{len(episodes)}")
    table.add_row("env: mean reward", f"{sum(e['reward'] for e in episodes) / max(1, len(episodes)):.3f}")
    table.add_row(
        "LLM requests / tokens",
        f"{client.stats.requests} / {client.stats.prompt_tokens + client.stats.completion_tokens}",
    )
    table.add_row("wall time", f"{seconds:.0f} s")
    console.print(table)
