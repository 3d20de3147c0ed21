"""`loong eval --tools/--no-tools`: pass@1 on a fixed draw of seeds with prose only and with the python tool,
per domain, same model and sampling; the embedded local model unless an endpoint is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from loong_env.cli.options import add_endpoint_options, endpoint


def register(sub: argparse._SubParsersAction) -> None:
    """Add `loong eval`."""
    p = sub.add_parser(
        "eval",
        help="pass@1 per domain with prose only vs with a python tool (Loong's gap), same model and sampling",
        description="Draws a fixed set of seeds per domain and answers each with prose only (SingleStepEnv, "
        "one turn) and, with --tools (the default), also as ToolEnv episodes where the model may run Python "
        "in the sandbox before answering. --no-tools measures the prose half alone. Prints a Markdown table.",
    )
    p.add_argument(
        "--tools",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run tool episodes (default); --no-tools: prose only",
    )
    p.add_argument("--domains", nargs="*", default=None, help="seed domains (default: all)")
    p.add_argument("--per-domain", type=int, default=5, help="seeds drawn per domain")
    p.add_argument("--max-difficulty", type=int, default=None, choices=range(1, 6))
    p.add_argument("--max-tokens", type=int, default=384, help="token budget of each model turn")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-turns", type=int, default=4, help="policy turns per tool episode")
    p.add_argument("--max-tool-calls", type=int, default=3, help="tool calls per tool episode")
    p.add_argument(
        "--tool-schema",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send the OpenAI `tools` schema (default); either way a ```python block is a call",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the draw of problems")
    p.add_argument("--out", help="write every outcome and the table here as JSON")
    add_endpoint_options(p)
    p.set_defaults(func=lambda args: asyncio.run(run_eval(args)))


async def run_eval(args: argparse.Namespace) -> int:
    """Draw, run both modes, print the table."""
    from loong_env.llm import LLMClient
    from loong_env.seeds.dataset import load_seeds
    from loong_env.tools.rollout import evaluate, fixed_draw, markdown

    dataset = load_seeds()
    if args.domains:
        dataset = dataset.filter(domain=args.domains)
    problems = fixed_draw(
        dataset, per_domain=args.per_domain, seed=args.seed, max_difficulty=args.max_difficulty
    )
    modes = ("prose", "tools") if args.tools else ("prose",)
    async with LLMClient(**endpoint(args), max_concurrency=4) as client:
        gap = await evaluate(
            problems,
            client,
            modes=modes,
            max_turns=args.max_turns,
            max_tool_calls=args.max_tool_calls,
            tool_schema=args.tool_schema,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        )
    sampling = f"max_tokens {args.max_tokens}, temperature {args.temperature}"
    print(f"model {gap.model}; {len(problems)} seeds; {sampling}")
    print(markdown(gap.table, gap.seconds_per_episode))
    if args.out:
        Path(args.out).write_text(json.dumps(gap.model_dump(), indent=1), encoding="utf-8")
    return 0
