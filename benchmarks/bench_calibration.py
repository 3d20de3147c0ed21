"""Benchmark calibration with the embedded model: does the author's difficulty predict the policy's pass rate?

    flock /tmp/loong-heavy.lock .venv/bin/python benchmarks/bench_calibration.py \\
        [--per-domain 7] [--k 4] [--max-tokens 384] [--temperature 0.8] [--out benchmarks/results/calibration]

A fixed draw of `--per-domain` seeds from every domain of the library (seeded, spread over the difficulty
levels each domain has) is calibrated with `loong_env.calibration.calibrate`: k answers per item from the
embedded local model, judged by the env's router. The run folder is kept, so a killed benchmark resumes
where it stopped (rerun the same command). Then, per domain and pooled:

  no box    share of answers with no \\boxed{} answer (most ran out of --max-tokens)
  rho       Spearman correlation of the author's difficulty (1-5) with the measured pass rate
            (negative = harder-labelled items are failed more often, as the label promises)
  baseline  the same correlation with the author's labels shuffled within the domain (mean |rho| of
            2000 shuffles): how large |rho| gets by chance with this few items and this few samples
Prints the hardware first and a markdown table last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hardware import hardware

from loong_env.calibration import calibrate, read_calibration
from loong_env.llm import LLMClient
from loong_env.runs.calibration import ItemCalibration
from loong_env.seeds.dataset import SeedDataset, load_seeds
from loong_env.types import DataPoint


def fixed_draw(per_domain: int, seed: int) -> SeedDataset:
    """`per_domain` seeds of every domain, dealt round-robin over its difficulty levels (a seeded shuffle)."""
    library = load_seeds()
    parts = []
    for domain in library.domains:
        items = sorted(library.filter(domain=domain), key=lambda dp: dp.id)
        rng = random.Random(f"{seed}:{domain}")
        by_level: dict[int, list[DataPoint]] = defaultdict(list)
        for dp in items:
            by_level[dp.difficulty or 0].append(dp)
        for level in by_level.values():
            rng.shuffle(level)
        picked: list[DataPoint] = []
        while len(picked) < per_domain and any(by_level.values()):
            for level in sorted(by_level):
                if by_level[level] and len(picked) < per_domain:
                    picked.append(by_level[level].pop())
        parts.append(SeedDataset(picked, configs={domain: library.domain_config(domain)}))
    return SeedDataset.concat(parts)


def ranks(values: list[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):
            out[order[m]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho (Pearson on average ranks); None when either side is constant."""
    rx, ry = ranks(x), ranks(y)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return None
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5


def shuffled_baseline(x: list[float], y: list[float], rounds: int = 2000, seed: int = 0) -> float | None:
    """Mean |rho| with the difficulty labels shuffled: the size of a correlation that is pure chance."""
    rng = random.Random(seed)
    found = []
    labels = list(x)
    for _ in range(rounds):
        rng.shuffle(labels)
        rho = spearman(labels, y)
        if rho is not None:
            found.append(abs(rho))
    return statistics.fmean(found) if found else None


def table(records: list[ItemCalibration]) -> list[dict]:
    """One row per domain plus `all`: items, mean label, mean pass rate, rho, shuffled baseline."""
    by_domain: dict[str, list[ItemCalibration]] = defaultdict(list)
    for r in records:
        by_domain[r.domain].append(r)
    rows = []
    for domain, recs in [*sorted(by_domain.items()), ("all", records)]:
        x = [float(r.difficulty or 0) for r in recs]
        y = [r.pass_rate for r in recs]
        rho = spearman(x, y)
        rows.append(
            {
                "domain": domain,
                "items": len(recs),
                "mean_difficulty": statistics.fmean(x),
                "mean_pass_rate": statistics.fmean(y),
                "zero_variance": sum(r.correct in (0, r.samples) for r in recs) / len(recs),
                "no_answer": sum(st == "no_answer" for r in recs for st in r.statuses)
                / max(1, sum(len(r.statuses) for r in recs)),
                "rho": rho,
                "baseline": shuffled_baseline(x, y),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+.2f}"

    lines = [
        "| domain | items | mean author difficulty | mean pass rate | all-same groups | answers without "
        + "a boxed answer | Spearman rho | shuffled-label mean abs rho |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['domain']} | {r['items']} | {r['mean_difficulty']:.2f} | {r['mean_pass_rate']:.2f} | "
            f"{r['zero_variance']:.0%} | {r['no_answer']:.0%} | {f(r['rho'])} | "
            f"{'n/a' if r['baseline'] is None else format(r['baseline'], '.2f')} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-domain", type=int, default=7)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "calibration"))
    parser.add_argument("--json", help="also write the table as JSON here")
    parser.add_argument(
        "--table-only", action="store_true", help="no sampling: the table of what --out holds"
    )
    args = parser.parse_args()
    print(f"hardware: {hardware()}", flush=True)
    items = fixed_draw(args.per_domain, args.seed)
    print(f"{len(items)} seeds over {len(items.domains)} domains, k={args.k}, out={args.out}", flush=True)
    started = time.perf_counter()
    client = LLMClient(max_concurrency=4)
    model = client.model

    def show(rec: ItemCalibration) -> None:
        print(
            f"  {rec.domain:30s} d{rec.difficulty} pass {rec.correct}/{rec.samples} "
            f"({rec.tokens} tokens, {time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    if not args.table_only:
        async with client:
            summary = await calibrate(
                items,
                out=args.out,
                client=client,
                k=args.k,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
                concurrency=2,
                on_item=show,
            )
        print(summary.model_dump_json(indent=2), flush=True)
    wanted = {dp.id for dp in items}
    records = [r for r in read_calibration(args.out).values() if r.id in wanted]
    rows = table(records)
    print(f"\nmodel {model}, k={args.k}, temperature {args.temperature}, max_tokens {args.max_tokens}")
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hardware(), "rows": rows}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
