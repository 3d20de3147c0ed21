"""Collect model-written code answers on our seeds (known answers) for the keep-precision set; resumable.

    .venv/bin/python benchmarks/collect_keep_set.py [--out benchmarks/data/written.jsonl] [--temperature 0]
        [--repairs 1] [--first-from benchmarks/data/written.jsonl] [--held-out advanced_math --limit 300]

For every seed of our seeds folder the local writer writes code for the seed's question (the generation
prompt's code part) and the keep rule's code route runs it (sandbox, one repair). One JSON line per seed:
its id, domain, the code that ran, what it printed and whether that is the known answer. Seeds already in
the output file are skipped, so a stopped run resumes where it stopped. A second pass samples above
temperature 0 into a file of its own; `--first-from` an earlier pass puts the seeds whose code printed an
answer there first (where a wrong answer is likeliest), and `--repairs 0` saves the repair round, which in
the first pass turned 3 of 159 failed programs into an answer.

`--held-out NAME` writes for questions of a folder of the Loong sample next to the repo
(../shared/loong_sample/NAME, a seeded draw of `--limit`) instead: questions no one here wrote. A row
names its record by index (`source`, `index`), never by its text, and a record is used only when its own
rationale prints its answer in our sandbox (upstream, about one in five does not): otherwise its "known"
answer is not known.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from _loong import REQS, SAMPLE, held_out

from loong_env import local
from loong_env.generators import KeepConfig
from loong_env.generators.keep import KeepRule
from loong_env.generators.keep_precision import write_and_run
from loong_env.generators.keep_set import RunCache
from loong_env.llm import LLMClient
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import default_root, load_seeds
from loong_env.seeds.validation import CheckStatus, judge


def _append(path: Path, row: dict) -> None:
    """One finished seed, flushed at once: a stopped run loses nothing it finished."""
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/data/written.jsonl")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repairs", type=int, default=1, help="repair rounds for code that fails")
    parser.add_argument("--first-from", help="an earlier pass: seeds whose code printed an answer go first")
    parser.add_argument("--held-out", help="a folder of ../shared/loong_sample instead of our seeds")
    parser.add_argument("--limit", type=int, default=None, help="with --held-out: records drawn (seeded)")
    parser.add_argument("--runs", default="benchmarks/data/keep_set_runs.jsonl", help="sandbox run cache")
    args = parser.parse_args()
    out = Path(args.out)
    done = (
        {json.loads(line)["id"] for line in out.read_text().splitlines() if line} if out.exists() else set()
    )
    index_of: dict[str, int] = {}
    if args.held_out:
        drawn = held_out(SAMPLE / args.held_out, args.limit)
        index_of = {dp.id: index for index, dp in drawn}
        seeds = [dp for _, dp in drawn if dp.id not in done]
    else:
        seeds = [dp for dp in load_seeds(default_root(), on_error="skip") if dp.id not in done]
    if args.first_from:
        printed = {
            row["id"]
            for line in Path(args.first_from).read_text().splitlines()
            if line and (row := json.loads(line)).get("answer") is not None
        }
        seeds.sort(key=lambda dp: dp.id not in printed)  # stable: the rest keep the seeds' order
    print(f"{len(done)} done, {len(seeds)} to go", flush=True)
    server = await asyncio.to_thread(local.shared_server, local.DEFAULT_MODEL, n_parallel=args.concurrency)
    client = LLMClient(
        base_url=server.base_url, model=server.model, max_concurrency=args.concurrency, timeout_s=900
    )
    boxes: dict[tuple[str, ...], Sandbox] = {}
    gate = asyncio.Semaphore(args.concurrency)
    config = KeepConfig(repair_max_tokens=args.max_tokens, repair_attempts=args.repairs)

    class TempWriter:
        async def chat(self, messages, **kw):  # the collection may sample above temperature 0
            kw["temperature"] = args.temperature
            return await client.chat(messages, **kw)

    runs = RunCache(args.runs)

    async def known(dp, box: Sandbox) -> bool:
        """A held-out record's answer is known when its own rationale prints it (`loong seeds validate`'s
        judgement; cached runs are reused)."""
        check = await asyncio.to_thread(judge, dp, await runs.run(REQS, dp.rationale, box))
        return check.status is CheckStatus.passed

    async def one(number: int, dp) -> None:
        async with gate:
            reqs = tuple(dp.required_dependencies)
            if reqs not in boxes:
                boxes[reqs] = Sandbox.shared(list(reqs), timeout_s=10.0, workers=1)
            where = {"source": args.held_out, "index": index_of[dp.id]} if args.held_out else {}
            if args.held_out and not await known(dp, boxes[reqs]):
                _append(out, {"id": dp.id, **where, "skipped": "its rationale does not print its answer"})
                return
            rule = KeepRule(
                boxes[reqs], client, config=config, tolerance=dp.answer_tolerance, requirements=list(reqs)
            )
            route = await write_and_run(dp, rule, TempWriter(), number=number, max_tokens=args.max_tokens)
            row = {
                "id": dp.id,
                "domain": dp.domain,
                "temperature": args.temperature,
                **where,
                **route.model_dump(),
            }
            _append(out, row)
            print(f"{dp.domain} {route.status} correct={route.correct}", flush=True)

    await asyncio.gather(*(one(i, dp) for i, dp in enumerate(seeds)))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
