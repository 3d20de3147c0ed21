"""Keep-rule precision: seeds with known answers, judged as if freshly generated, under each agreement rule.

    .venv/bin/python benchmarks/bench_keep_precision.py [--seeds PATH] [--limit 36] [--difficulty 1,2,3]
        [--alt-temperature 1.0] [--alt-local smollm2-135m | --alt-base-url URL --alt-model M]
        [--requirements R1,R2] [--code writer|seed] [--out report.json]

For each selected seed (stratified across domains, seeded) the local model (Qwen2.5-Coder-0.5B) writes code
for the seed's question at temperature 0 (the generation prompt's code part); the keep rule's code route
runs it in the domain's sandbox with one repair round; then each setting (1/any = today's default,
3/majority, 3/all; the same at `--alt-temperature` for every solve; the same with an alternative solver
model if one is given) decides from independent solves. Solves are drawn once per question and shared by
every setting that reads them (the request the live rule would send: same prompt, temperature and seed),
and each setting reads them through the keep rule's own `KeepConfig.decide`.

Reported per setting: kept / questions (acceptance), precision (kept answers equivalent to the seed's
known answer / kept), recall (kept and right / questions whose written code printed the known answer),
false keeps with their questions, solves read, tokens and summed request + sandbox seconds per kept item.
The first row, "code only (no solve)", is the baseline: every answer the code printed, kept unchecked.
"wrong kept" = false keeps / questions whose code printed a wrong answer: how often a wrong answer gets
through, whatever the writer's skill. `--code seed` runs each seed's own code instead of writing it: every
code answer is right, so such a run measures recall and cost per kept item only (cheaply: no writing).
`--replay report.json` prints the tables of a saved `--out` report again.
Works on our seeds folder (default) and on any Loong-format folder (`--seeds ../shared/loong_sample/...`).

The stored set (issue 25): `--set benchmarks/data/keep_set.jsonl --cache benchmarks/data/keep_set_solves.jsonl`
replays every configuration of `keep_set.standard_configurations` (the default first) over the stored code
answers (built by benchmarks/build_keep_set.py: dropped-condition mutants of our seeds' programs, code the
local writer wrote, and the seeds' own programs). Solves go to the cache as they are drawn: re-running the
same command resumes; `--no-model` re-tabulates from the cache alone; `--time-budget S` stops drawing new
solves after S seconds. The perturbation check's configurations run the code's perturbed copies through
the run cache `--runs` (benchmarks/data/keep_set_runs.jsonl, filled by bench_perturbation.py): runs
missing from it use the sandbox (never the model), so `--no-model` measures them too. Reported per configuration: false keeps among wrong code answers with the 95 %
Wilson upper bound, recall on right ones, kept per 100 candidates, solve tokens and seconds per kept item.
Then the same over the set's balanced view (`keep_set.balanced`: every model-written and right record and a
seeded draw of as many dropped-condition answers as model-written wrong ones), the set the issue describes.
Records of held-out Loong questions (`source`, `index`) are read from ../shared/loong_sample and left out,
with a note, where it is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import _loong
from _hardware import hardware
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loong_env import local
from loong_env.generators import KeepConfig
from loong_env.generators.keep import Runner
from loong_env.generators.keep_precision import (
    CODE_ONLY,
    PrecisionReport,
    QuestionResult,
    measure_keep,
    standard_settings,
    summarize_all,
)
from loong_env.generators.keep_set import (
    RunCache,
    SolveCache,
    Summary,
    balanced,
    load_set,
    replay,
    standard_configurations,
    summarize,
)
from loong_env.llm import LLMClient
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import default_root, load_seeds, warmup_rationales
from loong_env.types import DataPoint


def stratified(seeds: Sequence[DataPoint], limit: int, *, seed: int, levels: set[int]) -> list[DataPoint]:
    """Up to `limit` seeds at the given difficulties (unrated ones too), round-robin over domains, seeded."""
    rng = random.Random(seed)
    by_domain: dict[str, list[DataPoint]] = {}
    for dp in seeds:
        if dp.difficulty is None or dp.difficulty in levels:
            by_domain.setdefault(dp.domain, []).append(dp)
    for items in by_domain.values():
        rng.shuffle(items)
    picked: list[DataPoint] = []
    while len(picked) < limit and any(by_domain.values()):
        for domain in sorted(by_domain):
            if by_domain[domain] and len(picked) < limit:
                picked.append(by_domain[domain].pop())
    return picked


def _ratio(num: int, den: int) -> str:
    """A count over its denominator with the percentage: small samples should show their size."""
    return f"{num}/{den} {num / den:.0%}" if den else f"{num}/0"


def _num(x: float | None, spec: str = ".0f") -> str:
    return "n/a" if x is None else format(x, spec)


_WIDTHS = (22, 12, 12, 12, 12, 7, 9, 7)


def _row(cells: Sequence[str]) -> str:
    return "".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, _WIDTHS)))


def print_report(report: PrecisionReport) -> None:
    """The per-setting table, the code route's outcomes, and every false keep."""
    qs = report.questions
    ran = [q for q in qs if q.code.answer is not None]
    print(
        f"\ncode route: {len(ran)}/{len(qs)} printed an answer "
        f"({sum(q.code.repaired for q in ran)} after a repair),"
        f" {sum(q.code.correct is True for q in qs)} of them the known answer; no answer: "
        f"{dict(Counter(q.code.status for q in qs if q.code.answer is None))}"
    )
    print(
        f"solves: {report.solve_requests} requests drawn, {report.solves_read} read by the settings "
        "(samples shared across settings)"
    )
    print(
        "\n" + _row(("setting", "kept", "precision", "recall", "wrong kept", "solves", "tok/kept", "s/kept"))
    )
    for s in report.settings:
        cells = (
            s.name,
            _ratio(s.kept, s.questions),
            _ratio(s.kept_correct, s.kept),
            _ratio(s.kept_correct, s.code_correct),
            _ratio(len(s.false_keeps), s.code_wrong),
            str(s.solves_read),
            _num(s.tokens_per_kept),
            _num(s.seconds_per_kept),
        )
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(s.rejected.items()))
        print(f"{_row(cells)}  {rejected}")
    print(
        "(kept: of all questions; precision: right among kept; recall: kept among the questions whose code "
        "printed the known answer; wrong kept: kept among those whose code printed a wrong one; s/kept sums "
        "request and sandbox seconds, 4 requests at a time)"
    )
    for s in report.settings:
        for f in s.false_keeps:
            print(
                f"  false keep [{s.name}] {f.domain}: {f.question[:110]!r} kept {f.kept_answer!r}, "
                f"known {f.known_answer!r}"
            )


def print_set_report(summaries: Sequence[Summary]) -> None:
    """The stored set's table: one row per configuration."""
    head = ("configuration", "false keeps", "rate", "95% upper", "recall", "kept/100", "tok/kept", "s/kept")
    widths = (48, 12, 7, 10, 13, 9, 10, 10)  # wide enough that 59,928 tokens and 10,935 s stay apart
    print(
        "\n" + "".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(head, widths)))
    )
    for s in summaries:
        cells = (
            s.name + ("" if s.complete else " *"),
            f"{s.false_keeps}/{s.wrong}",
            _num(None if s.false_keep_rate is None else 100 * s.false_keep_rate, ".1f") + "%",
            _num(None if s.false_keep_upper95 is None else 100 * s.false_keep_upper95, ".1f") + "%",
            _ratio(s.kept_right, s.right),
            f"{s.kept_per_100:.1f}",
            _num(s.tokens_per_kept),
            _num(s.seconds_per_kept, ".1f"),
        )
        print("".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths))))
    print("(* = not every record measured yet; tokens and seconds count the solves only: the code is stored)")
    for s in summaries:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(s.rejected.items()))
        kinds = ", ".join(
            f"{k} {s.false_keeps_by_kind.get(k, 0)}/{n}" for k, n in sorted(s.wrong_by_kind.items())
        )
        print(f"  {s.name}: rejected {rejected}; false keeps by kind: {kinds}")


async def run_set(args: argparse.Namespace) -> None:
    """Replay the configurations over the stored set (resumable through the solve cache)."""
    records = load_set(args.set)
    seeds = {dp.id: dp for dp in load_seeds(default_root(), on_error="skip")}
    held = _loong.by_id({r.source for r in records if r.source})
    seeds |= {key: dp for key, (_, dp) in held.items()}
    if absent := [r for r in records if r.source and r.id not in seeds]:
        print(f"{len(absent)} held-out records left out: {_loong.SAMPLE} is absent or lacks them")
        records = [r for r in records if r.id in seeds or not r.source]
    if missing := [r.key for r in records if r.id not in seeds]:
        raise SystemExit(f"{len(missing)} records name seeds that are not in {default_root()}: {missing[:3]}")
    kinds = Counter((r.kind, r.correct) for r in records)
    print(
        f"set: {len(records)} records from {args.set}: "
        + ", ".join(f"{k} {'right' if c else 'wrong'} {n}" for (k, c), n in sorted(kinds.items()))
    )
    cache = SolveCache(args.cache)
    print(f"cache: {len(cache.solves)} solves in {args.cache}")
    configurations = standard_configurations(
        KeepConfig(solve_max_tokens=args.solve_max_tokens), alt_solver=args.alt_local
    )
    if args.configs:
        wanted = set(args.configs.split(","))
        configurations = [c for i, c in enumerate(configurations) if str(i) in wanted or c.name in wanted]
    solvers = None
    clients: list[LLMClient] = []
    if not args.no_model:
        server = await asyncio.to_thread(
            local.shared_server, local.DEFAULT_MODEL, n_parallel=args.concurrency
        )
        clients.append(
            LLMClient(
                base_url=server.base_url, model=server.model, max_concurrency=args.concurrency, timeout_s=900
            )
        )
        solvers = {"default": clients[0]}
        if args.alt_local:
            alt = await asyncio.to_thread(local.shared_server, args.alt_local, n_parallel=args.concurrency)
            clients.append(
                LLMClient(
                    base_url=alt.base_url, model=alt.model, max_concurrency=args.concurrency, timeout_s=900
                )
            )
            solvers[args.alt_local] = clients[-1]
    runs = RunCache(args.runs)
    boxes: dict[tuple[str, ...], Sandbox] = {}

    def runner_for(seed: DataPoint) -> Runner:
        """The perturbation check's runs: from the run cache, else the seed's sandbox (no model involved)."""
        reqs = tuple(seed.required_dependencies)
        if reqs not in boxes:
            boxes[reqs] = Sandbox.shared(list(reqs), timeout_s=10.0, warmup=warmup_rationales(list(reqs)))
        return runs.runner(reqs, boxes[reqs])

    deadline = None if args.time_budget is None else time.monotonic() + args.time_budget
    last = [0.0]

    def progress(name: str, done: int) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  [{name}] {done}/{len(records)} decided, {cache.drawn} solves drawn", flush=True)

    t0 = time.perf_counter()
    decisions = await replay(
        records,
        seeds,
        configurations,
        solvers=solvers,
        cache=cache,
        in_flight=args.concurrency,
        deadline=deadline,
        on_record=progress,
        runner_for=runner_for,
    )
    summaries = [summarize(c.name, records, decisions[c.name]) for c in configurations]
    print_set_report(summaries)
    view = balanced(records)
    view_summaries = [summarize(c.name, view, decisions[c.name]) for c in configurations]
    if len(view) < len(records):  # the set: wrong answers about half model-written
        kinds = Counter((r.kind, r.correct) for r in view)
        print(
            f"\nbalanced view ({len(view)} records: every model-written and right one, and a seeded draw of "
            f"{kinds['dropped_condition', False]} dropped-condition answers, as many as model-written wrong ones):"
        )
        print_set_report(view_summaries)
    print(
        f"{cache.drawn} solves drawn and {runs.ran} perturbed runs made in {time.perf_counter() - t0:.0f}s; "
        f"load average at end: {os.getloadavg()}"
    )
    if args.out:
        report = {
            "set": [s.model_dump() for s in summaries],
            "balanced": [s.model_dump() for s in view_summaries],
        }
        Path(args.out).write_text(json.dumps(report, indent=1))
    for c in clients:
        await c.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=None, help="replay the stored set (benchmarks/data/keep_set.jsonl)")
    parser.add_argument("--cache", default="benchmarks/data/keep_set_solves.jsonl", help="the set's solve cache")
    parser.add_argument(
        "--runs",
        default="benchmarks/data/keep_set_runs.jsonl",
        help="with --set: the perturbation check's run cache (runs missing from it use the sandbox)",
    )
    parser.add_argument("--no-model", action="store_true", help="with --set: read cached solves only")
    parser.add_argument("--time-budget", type=float, default=None, help="with --set: seconds of new solves")
    parser.add_argument("--configs", default=None, help="with --set: comma-separated names or indices")
    parser.add_argument(
        "--seeds", default=str(default_root()), help="our seeds root, a domain or a Loong folder"
    )
    parser.add_argument(
        "--limit", type=int, default=36, help="questions to measure (stratified over domains)"
    )
    parser.add_argument(
        "--difficulty", default="1,2,3", help="difficulty levels to draw from (unrated: always)"
    )
    parser.add_argument("--seed", type=int, default=0, help="selection seed")
    parser.add_argument("--concurrency", type=int, default=4, help="server slots = requests in flight")
    parser.add_argument("--code-max-tokens", type=int, default=512)
    parser.add_argument("--solve-max-tokens", type=int, default=512)
    parser.add_argument(
        "--alt-temperature", default="1.0", help="temperature of every solve in the alt family; 'none'"
    )
    parser.add_argument("--alt-local", default=None, help="a second local model as alternative solver")
    parser.add_argument(
        "--alt-base-url", default=None, help="an OpenAI-compatible server as alternative solver"
    )
    parser.add_argument(
        "--alt-model", default=None, help="the alternative solver's model name (with --alt-base-url)"
    )
    parser.add_argument(
        "--requirements",
        default=None,
        help="comma-separated requirement set for every seed's sandbox (e.g. for Loong folders)",
    )
    parser.add_argument(
        "--code",
        choices=["writer", "seed"],
        default="writer",
        help="writer: the model writes the code (the default); seed: each seed's own code, so every code "
        "answer is right and only recall and cost are measured",
    )
    parser.add_argument("--out", default=None, help="write the full report (every question) as JSON here")
    parser.add_argument("--replay", default=None, help="print the tables of a saved --out report and exit")
    args = parser.parse_args()
    if args.set:
        print(f"hardware: {hardware()}")
        print(f"command: {' '.join(sys.argv)}")
        await run_set(args)
        return
    if args.replay:
        saved = json.loads(Path(args.replay).read_text())  # summaries are recomputed from the questions
        questions = [QuestionResult.model_validate(q) for q in saved["questions"]]
        names = [s["name"] for s in saved["settings"] if s["name"] != CODE_ONLY]
        saved["settings"] = summarize_all(questions, names)
        print_report(PrecisionReport.model_validate({**saved, "questions": questions}))
        return

    print(f"hardware: {hardware()}")
    print(f"load average at start: {os.getloadavg()}")
    print(f"command: {' '.join(sys.argv)}")
    levels = {int(x) for x in args.difficulty.split(",") if x}
    pool = load_seeds(args.seeds, on_error="skip")
    picked = stratified(list(pool), args.limit, seed=args.seed, levels=levels)
    if args.requirements is not None:
        reqs = [r for r in args.requirements.split(",") if r]
        picked = [dp.model_copy(update={"required_dependencies": reqs}) for dp in picked]
    print(
        f"seeds: {len(picked)} of {len(pool)} from {args.seeds} ({dict(Counter(dp.domain for dp in picked))})"
    )

    t0 = time.perf_counter()
    server = await asyncio.to_thread(local.shared_server, local.DEFAULT_MODEL, n_parallel=args.concurrency)
    print(
        f"writer + solver: {server.model} ({args.concurrency} slots), "
        f"ready in {time.perf_counter() - t0:.1f}s"
    )
    client = LLMClient(
        base_url=server.base_url, model=server.model, max_concurrency=args.concurrency, timeout_s=900
    )
    solvers = {"default": client}
    alt_name = None
    if args.alt_local:
        alt = await asyncio.to_thread(local.shared_server, args.alt_local, n_parallel=args.concurrency)
        alt_name = args.alt_local
        solvers[alt_name] = LLMClient(
            base_url=alt.base_url, model=alt.model, max_concurrency=args.concurrency, timeout_s=900
        )
    elif args.alt_base_url:
        alt_name = args.alt_model or "alt"
        solvers[alt_name] = LLMClient(
            base_url=args.alt_base_url, model=args.alt_model, max_concurrency=args.concurrency, timeout_s=900
        )

    # One warm sandbox per requirement set, before timing.
    t0 = time.perf_counter()
    boxes: dict[tuple[str, ...], Sandbox] = {}
    for reqs in sorted({tuple(dp.required_dependencies) for dp in picked}):
        boxes[reqs] = Sandbox.shared(list(reqs), timeout_s=10.0, workers=1)
        await boxes[reqs].run("print(1)")
    print(f"{len(boxes)} sandbox(es) ready in {time.perf_counter() - t0:.1f}s (not counted)")

    base = KeepConfig(solve_max_tokens=args.solve_max_tokens, repair_max_tokens=args.code_max_tokens)
    alt_t = None if args.alt_temperature.lower() == "none" else float(args.alt_temperature)
    settings = standard_settings(base, alt_temperature=alt_t, alt_solver=alt_name)
    print(f"settings: {[s.name for s in settings]}")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("questions (code ran 0)", total=len(picked))
        ran = 0

        def done(q: QuestionResult) -> None:
            nonlocal ran
            ran += q.code.answer is not None
            progress.update(task, advance=1, description=f"questions (code ran {ran})")
            if not progress.console.is_terminal:  # a log file gets one line per question instead of a bar
                kept = [name for name, d in q.decisions.items() if d.kept]
                right = {True: "right", False: "WRONG", None: "-"}[q.code.correct]
                print(
                    f"[{progress.tasks[0].completed}/{len(picked)}] {q.domain}: code {q.code.status} "
                    f"({right}), kept by {kept}",
                    flush=True,
                )

        report = await measure_keep(
            picked,
            writer=client,
            solvers=solvers,
            settings=settings,
            sandbox_for=lambda dp: boxes[tuple(dp.required_dependencies)],
            code_config=base,
            code_max_tokens=args.code_max_tokens,
            seed_code=args.code == "seed",
            in_flight=args.concurrency,
            on_question=done,
        )
    print_report(report)
    print(f"wall time {report.elapsed_s:.0f}s; load average at end: {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(report.model_dump_json(indent=1))
        print(f"report: {args.out}")
    for c in solvers.values():
        await c.close()


if __name__ == "__main__":
    asyncio.run(main())
