"""Scale benchmark: novelty lookups, generation, resume and rewards with pools of 10k, 100k and 1M kept items.

Without arguments (`make bench`) every part runs at 10k items (`quick`). The full run, in order (each part
caches what it builds under benchmarks/results/scale/, and a rerun reuses it):
  python benchmarks/bench_scale.py pool --size 1000000           # the realistic pool (resumable, long)
  python benchmarks/bench_scale.py index --sizes 10000 100000 1000000
  python benchmarks/bench_scale.py generation --sizes 10000 1000000 [--modes single ray1 ray2]
  python benchmarks/bench_scale.py resume --size 1000000
  python benchmarks/bench_scale.py rewards
  python benchmarks/bench_scale.py report                        # every cached result as tables
Wrap each in `flock /tmp/loong-heavy.lock` on a shared machine.

(a) `index`: per size, in a fresh process: the NoveltyIndex built from the pool's first N questions (memory
    per item = RSS growth over the build / N), >= 600 queries (half near-duplicates of pool items, half
    new questions of the same making), `nearest` latency p50/p95 (CPU time of this thread, and wall) at the
    keep rule's two floors (0.7 = the novelty bar; 0.5 = exact similarities recorded from 0.5 up), `add`
    latency; recall of near-duplicates (brute-force ROUGE-L > 0.7) against a scan of the whole pool with
    rapidfuzz (cached per size, brute-<N>.json). The baseline is that scan.
(b) `generation`: an output folder pre-filled with N accepted items (and its saved index), then
    `run_generation` keeps --kept more through the real keep rule, sandbox and output store; the LLM is
    tests/scripted_openai_server.py answering with new questions and, at --dup-rate, near-duplicates of pool
    items. Kept items/s from the first to the last kept item; RSS of the driver, and on Ray of the pool
    actor and each worker (Ray, 1 and 2 workers). The baseline is the same run at the smallest size.
(c) `resume`: time from `run_generation` being called on the pre-filled 1M folder to its first attempt
    (the `on_start` callback), with the saved index and without it (the baseline: everything re-indexed).
(d) `rewards`: rewards/s on batches of 1024 in this process (the trainer's in-process path) with 1 and 2
    sympy workers ($LOONG_EQUIVALENCE_WORKERS), a third of the items needing the symbolic check; rewards
    are checked against the expected ones item by item (input order).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _hardware import hardware
from scale_pool import THRESHOLD, candidate, domain_parts, near_duplicate, read_pool

RESULTS = Path(os.environ.get("LOONG_SCALE_RESULTS", HERE / "results" / "scale"))
POOL = RESULTS / "pool.txt"
DOMAIN = "graph_discrete_math"


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def datapoint(i: int, question: str) -> Any:
    from loong_env.types import DataPoint

    meta = {"generator": "few-shot", "model": "scripted", "attempt": -1 - i, "novelty": {"threshold": 0.7}}
    return DataPoint(question=question, final_answer=str(i), rationale=f"print({i})", domain=DOMAIN, metadata=meta)


def save_result(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"hardware": hardware(), "at": time.strftime("%Y-%m-%d %H:%M:%S"), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2), flush=True)


def pool_questions(size: int) -> list[str]:
    questions = read_pool(POOL, size)
    if len(questions) < size:
        raise SystemExit(f"{POOL} holds {len(questions)} questions, need {size}: run `pool --size {size}` first")
    return questions


# -- the pool ------------------------------------------------------------------------------------


def cmd_pool(args: argparse.Namespace) -> None:
    from scale_pool import build_pool, extend_unchecked

    RESULTS.mkdir(parents=True, exist_ok=True)
    checked = min(args.size, args.checked or args.size)
    for line in build_pool(POOL, checked, log_every=args.log_every):
        print(line, flush=True)
    if args.size > checked:
        info = RESULTS / "pool.json"
        known = json.loads(info.read_text()) if info.exists() else {"checked": checked}
        added = extend_unchecked(POOL, args.size)
        info.write_text(json.dumps({"checked": known["checked"], "size": args.size}))
        print(f"  pool {args.size:>9,}: {added:,} more made the same way, not checked against the pool", flush=True)


# -- (a) the index --------------------------------------------------------------------------------


def queries(size: int, questions: list[str], n: int) -> list[tuple[str, str]]:
    """n/2 near-duplicates of pool items and n/2 new questions made the same way as the pool."""
    rng = random.Random(f"queries:{size}")
    domains = domain_parts()
    near = [("near", near_duplicate(rng, questions[rng.randrange(size)])) for _ in range(n // 2)]
    new = [("new", candidate(random.Random(f"new:{size}:{k}"), domains)) for k in range(n - n // 2)]
    return near + new


def brute_force(size: int, questions: list[str], asked: list[tuple[str, str]]) -> list[float]:
    """Each query's best ROUGE-L over the whole pool (exact from 0.5 up, else 0), cached per size."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    from loong_env.generators.novelty import tokens

    cache = RESULTS / f"brute-{size}.json"
    texts = [q for _, q in asked]
    if cache.exists():
        data = json.loads(cache.read_text())
        if data["queries"] == texts:
            return data["best"]
    vocab: dict[str, int] = {}  # our own token -> symbol map: ROUGE-L over tokens, as one string compare

    def symbols(text: str, grow: bool) -> str:
        ids = [vocab.setdefault(t, len(vocab)) if grow else vocab.get(t, -1) for t in tokens(text)]
        return "".join(chr(0x10000 + i) if i >= 0 else "\uffff" for i in ids)

    started = time.perf_counter()
    pool = [symbols(q, True) for q in questions]
    best = []
    for text in texts:
        found = process.extractOne(symbols(text, False), pool, scorer=Indel.normalized_similarity, score_cutoff=0.5)
        best.append(float(found[1]) if found else 0.0)
    print(f"  brute force over {size:,} items: {time.perf_counter() - started:.0f} s", flush=True)
    cache.write_text(json.dumps({"queries": texts, "best": best}))
    return best


def cmd_index_one(args: argparse.Namespace) -> None:
    from loong_env.generators.novelty import NoveltyIndex

    size = args.size
    questions = pool_questions(size)
    asked = queries(size, questions, args.queries)
    truth = brute_force(size, questions, asked)
    ids = [datapoint(i, q).id for i, q in enumerate(questions)]
    before = rss_mb()
    started = time.process_time()
    index = NoveltyIndex(floor=0.5)
    for q, item_id in zip(questions, ids, strict=True):
        index.add(q, item_id, "kept")
    build_s = time.process_time() - started
    grown = rss_mb() - before
    saved = RESULTS / f"index-{size}.npz"
    index.save(saved, meta={"accepted": size, "last_id": ids[-1]})
    rows: dict[str, Any] = {}
    for label, floor, budget in (("0.7", 0.7, index.probe_budget), ("0.5", 0.5, index.probe_budget),
                                 ("0.7_exact", 0.7, None)):  # fmt: skip
        index.probe_budget = budget
        cpu, wall, found = [], [], []
        for _, text in asked:
            c0, w0 = time.thread_time(), time.perf_counter()
            found.append(index.nearest(text, floor=floor).similarity)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
        dup = [i for i, t in enumerate(truth) if t > THRESHOLD]
        exact = [i for i, t in enumerate(truth) if t >= floor]
        rows[f"floor_{label}"] = {
            "nearest_cpu_ms_p50": 1e3 * pct(cpu, 0.5),
            "nearest_cpu_ms_p95": 1e3 * pct(cpu, 0.95),
            "nearest_wall_ms_p50": 1e3 * pct(wall, 0.5),
            "nearest_wall_ms_p95": 1e3 * pct(wall, 0.95),
            "near_duplicates": len(dup),
            "recall": sum(found[i] > THRESHOLD for i in dup) / max(1, len(dup)),
            "false_alarms": sum(found[i] > THRESHOLD for i, t in enumerate(truth) if t <= THRESHOLD),
            "exact_at_floor": sum(abs(found[i] - truth[i]) < 1e-9 for i in exact) / max(1, len(exact)),
        }
    index.probe_budget = NoveltyIndex().probe_budget
    sample = random.Random(f"twins:{size}").sample(range(size), min(1000, size))
    twins = sum(index.nearest(questions[i], exclude=ids[i], floor=THRESHOLD).similarity > THRESHOLD for i in sample)
    add_cpu = []
    for k, (_, text) in enumerate(asked):
        c0 = time.thread_time()
        index.add(text, f"query-{k}", "kept")
        add_cpu.append(time.thread_time() - c0)
    save_result(
        f"index-{size}",
        {
            "size": size,
            "pool_items_with_a_near_twin": twins / len(sample),
            "queries": len(asked),
            "build_cpu_us_per_item": 1e6 * build_s / size,
            "rss_mb_per_1k_items": 1e3 * grown / size,
            "bytes_per_item_rss": grown * 2**20 / size,
            "bytes_per_item_saved": saved.stat().st_size / size,
            "add_cpu_ms_p50": 1e3 * pct(add_cpu, 0.5),
            "add_cpu_ms_p95": 1e3 * pct(add_cpu, 0.95),
            **rows,
        },
    )


def cmd_index(args: argparse.Namespace) -> None:
    for size in args.sizes:
        subprocess.run(
            [sys.executable, __file__, "index-one", "--size", str(size), "--queries", str(args.queries)],
            check=True,
        )


# -- (b) generation and (c) resume ----------------------------------------------------------------


def prefilled(size: int) -> Path:
    """An output folder holding `size` accepted items and their saved index (built once, then kept)."""
    from loong_env.generators.novelty import NoveltyIndex

    folder = RESULTS / f"folder-{size}"
    ready = folder / "pristine.npz"
    if ready.exists():
        return folder
    questions = pool_questions(size)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with (folder / "accepted.jsonl").open("w", encoding="utf-8") as fh:
        for i, q in enumerate(questions):
            fh.write(json.dumps(datapoint(i, q).model_dump(mode="json")) + "\n")
    cached = RESULTS / f"index-{size}.npz"
    if cached.exists():
        shutil.copy(cached, folder / "pristine.npz.tmp")
    else:
        index = NoveltyIndex(floor=0.5)
        for i, q in enumerate(questions):
            index.add(q, datapoint(i, q).id, "kept")
        index.save(folder / "pristine.npz.tmp", meta={"accepted": size, "last_id": datapoint(size - 1, questions[-1]).id})
    os.replace(folder / "pristine.npz.tmp", ready)
    return folder


def reset(folder: Path, size: int) -> None:
    """Back to the pre-filled state: the first `size` accepted lines, the pristine index, no manifest."""
    accepted = folder / "accepted.jsonl"
    with accepted.open("rb") as fh:
        offset = 0
        for _ in range(size):
            offset += len(fh.readline())
    os.truncate(accepted, offset)
    for name in ("rejected.jsonl", "manifest.json", "metrics.jsonl"):
        (folder / name).unlink(missing_ok=True)
    shutil.copy(folder / "pristine.npz", folder / "novelty.npz")


def scripted(questions: list[str], dup_rate: float, seed: int, pool: Path, count: int) -> Any:
    """Generation requests get new questions, or at `dup_rate` a near-twin of a pool item; solves agree.

    "New" is made sure of with the pool's own saved index (a made-up question too close to one held or
    already served is drawn again), so the share of near-twins is the one asked for at every pool size.
    All `count` replies are drawn before the run, so serving them costs the measured process nothing.
    """
    from scripted_openai_server import Answer, candidate_json

    from loong_env.generators.novelty import NoveltyIndex

    rng = random.Random(seed)
    domains = domain_parts()
    held, _ = NoveltyIndex.load(pool)
    replies: list[str] = []
    while len(replies) < count:
        if rng.random() < dup_rate:
            replies.append(near_duplicate(rng, questions[rng.randrange(len(questions))]))
            continue
        q = candidate(rng, domains)
        if not held.contains(q) and held.nearest(q, floor=THRESHOLD).similarity <= THRESHOLD:
            held.add(q, f"served-{len(replies)}", "kept")
            replies.append(q)
    del held
    def answer(question: str) -> int:  # a function of the text: the code and the solve always agree
        return zlib.crc32(question.strip().encode()) % 100_000

    served = iter(range(count))
    lock = threading.Lock()

    def script(req: Any) -> Any:
        if req.is_solve:
            q = req.solve_question.strip()
            return Answer(f"So the answer is \\boxed{{{answer(q)}}}.")
        with lock:
            k = next(served, count - 1)
        return Answer(candidate_json(replies[k], f"print({answer(replies[k])})"))

    return script


class RssWatch:
    """Peak RSS of this process and of Ray's pool and worker actors, sampled every 0.5 s."""

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            found = {"driver": psutil.Process().memory_info().rss}
            for proc in psutil.process_iter(["pid", "cmdline"]):
                line = " ".join(proc.info["cmdline"] or [])
                for name in ("NoveltyPool", "AttemptWorker"):
                    if f"ray::{name}" in line:
                        try:
                            found[f"{name}:{proc.info['pid']}"] = proc.memory_info().rss
                        except psutil.Error:
                            pass
            for key, value in found.items():
                self.peak[key] = max(self.peak.get(key, 0.0), value / 2**20)
            self._stop.wait(0.5)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def generation_once(size: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from scripted_openai_server import ScriptedServer

    from loong_env.generators import KeepConfig, run_generation

    folder = prefilled(size)
    reset(folder, size)
    questions = pool_questions(size)
    kept_at: list[float] = []
    started = time.perf_counter()
    first: list[float] = []

    def on_verdict(verdict: Any) -> None:
        first.append(time.perf_counter())
        if verdict.accepted:
            kept_at.append(time.perf_counter())

    def on_start(info: dict[str, Any]) -> None:
        first.append(time.perf_counter())

    common = {"out": folder, "n": size + args.kept, "method": "few-shot", "model": "scripted",
              "concurrency": args.concurrency, "keep_config": KeepConfig(), "on_verdict": on_verdict,
              "on_start": on_start, "max_attempts": args.kept * 5}  # fmt: skip
    script = scripted(questions, args.dup_rate, seed=size, pool=folder / "pristine.npz", count=args.kept * 5)
    with ScriptedServer(script, port=0) as server, RssWatch() as watch:
        if mode == "single":
            summary = asyncio.run(run_generation(DOMAIN, base_url=server.base_url, **common))
        else:
            from loong_env.distributed import RayOptions, run_generation_ray

            workers = int(mode.removeprefix("ray"))
            options = RayOptions(workers=workers, local_cpus=2, sandbox_workers=1)
            summary = asyncio.run(run_generation_ray(DOMAIN, ray=options, base_url=server.base_url, **common))
    steady = (kept_at[-1] - kept_at[0]) / (len(kept_at) - 1) if len(kept_at) > 1 else 0.0
    return {
        "size": size,
        "mode": mode,
        "kept": summary.accepted,
        "rejected": summary.rejected_by_reason,
        "kept_per_s": 1 / steady if steady > 0 else 0.0,
        "start_s": first[0] - started if first else None,
        "wall_s": time.perf_counter() - started,
        "rss_mb_peak": watch.peak,
    }


def cmd_generation(args: argparse.Namespace) -> None:
    for size in args.sizes:
        for mode in args.modes:
            row = generation_once(size, mode, args)
            save_result(f"generation-{size}-{mode}", row)


def cmd_resume(args: argparse.Namespace) -> None:
    from loong_env.generators import run_generation

    size = args.size
    folder = prefilled(size)
    rows = {}
    for label in ("warm-up (imports)", "saved index", "no saved index"):
        reset(folder, size)
        if label == "no saved index":
            (folder / "novelty.npz").unlink()
        started = time.perf_counter()
        ready: list[float] = []
        asyncio.run(
            run_generation(
                DOMAIN,
                out=folder,
                n=size + 1,  # one more than there: the run opens, loads its index, gets ready, stops
                base_url="http://127.0.0.1:9",
                model="unused",
                max_attempts=0,
                on_start=lambda _, ready=ready: ready.append(time.perf_counter()),
            )
        )
        rows[label] = {"ready_s": ready[0] - started, "closed_s": time.perf_counter() - started, "rss_mb": rss_mb()}
        print(label, rows[label], flush=True)
    save_result(f"resume-{size}", {"size": size, **rows})


# -- (d) rewards ------------------------------------------------------------------------------------


def reward_items(n: int, seed: int) -> list[tuple[str, str, float]]:
    """(response, reference, expected reward): a third symbolic (factored vs expanded), a quarter wrong."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        wrong = rng.random() < 0.25
        if i % 3 == 0:
            a, b = rng.randint(2, 60), rng.randint(2, 60)
            got = b + 1 if wrong else b
            out.append((f"Factor it: \\boxed{{x({a}x+{got})}}", f"{a}x^2+{b}x", 0.0 if wrong else 1.0))
        else:
            value = rng.randint(1, 10**7)
            got = value + 1 if wrong else value
            out.append((f"The answer is \\boxed{{{got}}}.", str(value), 0.0 if wrong else 1.0))
    return out


def cmd_rewards_one(args: argparse.Namespace) -> None:
    from loong_env.equivalence.pool import get_pool
    from loong_env.integrations.keys import answer_key
    from loong_env.routing import VerifierRouter

    router = VerifierRouter()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(router.start())
    get_pool().warm_up()
    batches = [reward_items(args.batch, seed) for seed in range(args.batches + 1)]

    async def score(batch: list[tuple[str, str, float]]) -> list[float]:
        keys = [answer_key(ref, router=router) for _, ref, _ in batch]
        verdicts = await asyncio.gather(*(router.judge(r, k) for (r, _, _), k in zip(batch, keys, strict=True)))
        return [v.reward for v, _ in verdicts]

    loop.run_until_complete(score(batches[0]))  # warm-up
    import psutil

    def cpu_of(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    workers = get_pool().stats().worker_pids
    main0, pool0 = time.process_time(), cpu_of(workers)
    started = time.perf_counter()
    mismatches = 0
    for batch in batches[1:]:
        rewards = loop.run_until_complete(score(batch))
        mismatches += sum(r != e for r, (_, _, e) in zip(rewards, batch, strict=True))
    wall = time.perf_counter() - started
    main_cpu, pool_cpu = time.process_time() - main0, cpu_of(get_pool().stats().worker_pids) - pool0
    print(json.dumps({"workers": get_pool().size, "rewards_s": args.batch * args.batches / wall,
                      "mismatches": mismatches, "wall_s": wall, "main_cpu_s": main_cpu,
                      "sympy_cpu_s": pool_cpu}), flush=True)  # fmt: skip


def cmd_rewards(args: argparse.Namespace) -> None:
    rows = []
    for workers in (1, 2):
        env = dict(os.environ, LOONG_EQUIVALENCE_WORKERS=str(workers))
        cmd = [sys.executable, __file__, "rewards-one", "--batch", str(args.batch), "--batches", str(args.batches)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    save_result("rewards", {"batch": args.batch, "rows": rows, "speedup_2_vs_1": rows[1]["rewards_s"] / rows[0]["rewards_s"]})


def cmd_quick(args: argparse.Namespace) -> None:
    size = 10_000
    me = [sys.executable, __file__]
    for step in (["pool", "--size", str(size), "--log-every", "5000"], ["index", "--sizes", str(size)],
                 ["resume", "--size", str(size)], ["generation", "--sizes", str(size), "--modes", "single"],
                 ["rewards", "--batches", "1"]):  # fmt: skip
        subprocess.run(me + step, check=True)


def cmd_report(args: argparse.Namespace) -> None:
    for path in sorted(RESULTS.glob("*.json")):
        if path.name.startswith("brute-"):
            continue
        print(f"== {path.stem}")
        print(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("pool")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--log-every", type=int, default=50_000)
    p.add_argument("--checked", type=int, help="check only the first N against the pool (the rest: unchecked)")
    p.set_defaults(func=cmd_pool)
    p = sub.add_parser("index")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=600)
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("index-one")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--queries", type=int, default=600)
    p.set_defaults(func=cmd_index_one)
    p = sub.add_parser("generation")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--kept", type=int, default=150)
    p.add_argument("--dup-rate", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--modes", nargs="+", default=["single", "ray1", "ray2"], help="single, ray1, ray2")
    p.set_defaults(func=cmd_generation)
    p = sub.add_parser("resume")
    p.add_argument("--size", type=int, default=1_000_000)
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("rewards")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--batches", type=int, default=3)
    p.set_defaults(func=cmd_rewards)
    p = sub.add_parser("rewards-one")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--batches", type=int, default=3)
    p.set_defaults(func=cmd_rewards_one)
    p = sub.add_parser("report")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("quick", help="the default (`make bench`): every part at 10k items, a few minutes")
    p.set_defaults(func=cmd_quick)
    args = parser.parse_args(sys.argv[1:] or ["quick"])
    print(hardware(), flush=True)
    args.func(args)


if __name__ == "__main__":
    main()
