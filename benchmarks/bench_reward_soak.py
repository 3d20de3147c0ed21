"""Soak of `loong serve-reward`: many asyncio clients at the server's capacity for minutes, garbage mixed in.

Run (the full soak; it is heavy, so one at a time on a shared machine):
    flock /tmp/loong-heavy.lock .venv/bin/python benchmarks/bench_reward_soak.py --minutes 10

Starts the real server (`loong serve-reward`, its own process, 127.0.0.1 only, with an API key), then:
1. warm-up (`--warmup-s`) under the same load, then the load stops and the server is measured idle:
   RSS of the server process and of it with its sandbox workers, open file descriptors, child processes;
2. the soak: `--clients` closed-loop clients for `--minutes`, each request drawn from a mix of valid batches
   (boxed answers in batches of 1/8/64/256, code answers that run in the sandbox, OpenRLHF payloads) and
   garbage (no key, wrong key, not JSON, invalid UTF-8, deep JSON, a body over the limit, a batch over
   max_batch, hostile requirement sets, malformed items, unknown plug-ins, NUL); a client honours
   Retry-After on 429/503 like a trainer does; then idle again and measured again (the baseline is the
   post-warm-up measurement of the same run);
3. SIGTERM under load: the requests in flight must be answered (200, or 503), the server must exit 0 and
   every process it started must be gone.
Prints requests/s (overall and per minute), p50/p99 per kind, replies by status code, unexpected ones
(a 5xx other than 503 with Retry-After, a code a kind should never get, a dropped connection), and the
resource numbers with their ratio to the post-warm-up baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from _hardware import hardware
from bench_reward_server import free_port, items

ROOT = Path(__file__).parents[1]
MAX_BATCH = 512
MAX_BODY_MB = 2
OVERLOAD = {429, 503}  # answered at once with Retry-After: the server shedding load, expected at capacity


def code_items(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        k = rng.randrange(1, 10_000)
        right = rng.random() < 0.7
        out.append({"id": i, "response": f"```python\nprint(sum(range({k})))\n```",
                    "reference": str(sum(range(k)) + (0 if right else 1))})
    return out


class Mix:
    """Request kinds: (name, weight, expected codes, builder(rng) -> (path, content bytes, headers))."""

    def __init__(self, key: str, garbage: float) -> None:
        self.auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        pool = items(2048, 0)
        self.boxed = {size: [pool[(k * size + j) % len(pool)] for j in range(size)] for k, size in
                      enumerate((1, 8, 64, 256))}
        valid = [
            ("boxed-1", 4, self._boxed(1)), ("boxed-8", 4, self._boxed(8)), ("boxed-64", 2, self._boxed(64)),
            ("boxed-256", 1, self._boxed(256)), ("code-4", 2, self._code), ("openrlhf-16", 2, self._openrlhf),
        ]
        bad = [
            ("no-key", 1, {401}, lambda rng: ("/v1/score", self._json({"items": self.boxed[1]}),
                                              {"content-type": "application/json"})),
            ("wrong-key", 1, {401}, lambda rng: ("/get_reward", b'{"query": []}',
                                                 {**self.auth, "Authorization": "Bearer " + "x" * 32})),
            ("not-json", 1, {400, 422}, lambda rng: ("/v1/score", b"{items: nope", self.auth)),
            ("bad-utf8", 1, {400}, lambda rng: ("/v1/score", b'{"items": [{"response": "\xff\xfe"}]}', self.auth)),
            ("deep-json", 1, {400}, lambda rng: ("/get_reward", b"[" * 50_000 + b"]" * 50_000, self.auth)),
            ("huge-body", 1, {413}, lambda rng: ("/v1/score", self._json(
                {"items": [{"response": "x" * (MAX_BODY_MB * 2**20 + 1000), "reference": "1"}]}), self.auth)),
            ("over-max-batch", 1, {413}, lambda rng: ("/v1/score", self._json(
                {"items": [{"response": "\\boxed{1}", "reference": "1"}] * (MAX_BATCH + 1)}), self.auth)),
            ("hostile-reqs", 1, {403}, lambda rng: ("/v1/score", self._json({"items": [
                {"response": "```python\nprint(1)\n```", "reference": "1",
                 "requirements": [rng.choice(["evil @ https://example.invalid/e.whl", "six==1.16.0",
                                              "--index-url=http://x", "a @ file:///etc"])]}]}), self.auth)),
            ("malformed-items", 1, {200}, lambda rng: ("/v1/score", self._json({"items": [
                {"response": 5, "reference": "1"}, "nope", {"response": "\\boxed{1}"},
                {"response": "\\boxed{1}", "reference": "1", "tolerance": {"rel": -1}}, *self.boxed[8]]}),
                self.auth)),
            ("unknown-plugin", 1, {200}, lambda rng: ("/v1/score", self._json({"items": [
                {"response": "\\boxed{1}", "reference": "1", "verifier": rng.choice(["nope", "../x", "os.system"])}]}),
                self.auth)),
            ("nul", 1, {200}, lambda rng: ("/v1/score", self._json({"items": [
                {"response": "\\boxed{1}\u0000", "reference": "\u0000"}]}), self.auth)),
            ("no-envelope", 1, {422}, lambda rng: ("/v1/score", b'{"itemz": []}', self.auth)),
        ]
        valid_weight = sum(w for _, w, _ in valid)
        bad_weight = sum(w for _, w, _, _ in bad)
        scale = garbage / (1 - garbage) * valid_weight / bad_weight if garbage < 1 else 1.0
        self.kinds = [(name, w, {200}, build) for name, w, build in valid]
        self.kinds += [(name, w * scale, codes, build) for name, w, codes, build in bad]
        self.expected = {name: codes for name, _, codes, _ in self.kinds}

    @staticmethod
    def _json(payload: object) -> bytes:
        return json.dumps(payload).encode()

    def _boxed(self, size: int):
        return lambda rng: ("/v1/score", self._json({"items": self.boxed[size]}), self.auth)

    def _code(self, rng: random.Random):
        return "/v1/score", self._json({"items": code_items(rng, 4)}), self.auth

    def _openrlhf(self, rng: random.Random):
        batch = self.boxed[64][:16]
        payload = {"query": [it["response"] for it in batch], "prompts": [""] * 16,
                   "labels": [json.dumps({"reference": it["reference"], "tolerance": it["tolerance"]}) for it in batch]}
        return "/get_reward", self._json(payload), self.auth

    def draw(self, rng: random.Random):
        name, _, _, build = rng.choices(self.kinds, weights=[w for _, w, _, _ in self.kinds])[0]
        return (name, *build(rng))


class Tally:
    """Replies by kind and code, latencies, and what was unexpected."""

    def __init__(self, expected: dict[str, set[int]]) -> None:
        self.expected = expected
        self.codes: Counter[int | str] = Counter()
        self.by_kind: dict[str, Counter[int | str]] = defaultdict(Counter)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.unexpected: Counter[str] = Counter()
        self.per_minute: Counter[int] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, kind: str, code: int | str, seconds: float, at: float, reply: httpx.Response | None) -> None:
        self.codes[code] += 1
        self.by_kind[kind][code] += 1
        self.per_minute[int(at // 60)] += 1
        if code == 200 or code in self.expected[kind]:
            self.latency[kind].append(seconds)
        ok = code in self.expected[kind] or (
            code in OVERLOAD and reply is not None and reply.headers.get("retry-after") is not None
        )
        if ok and reply is not None and code != 200:
            try:
                ok = isinstance(reply.json().get("detail"), str)  # every error is JSON with a message
            except ValueError:
                ok = False
        if not ok:
            label = f"{kind}:{code}"
            self.unexpected[label] += 1
            if reply is not None:
                self.examples.setdefault(label, reply.text[:300])


async def client_loop(c: httpx.AsyncClient, mix: Mix, tally: Tally, rng: random.Random, stop_at: float, t0: float,
                      stop: asyncio.Event | None = None):
    while time.monotonic() < stop_at and not (stop is not None and stop.is_set()):
        kind, path, content, headers = mix.draw(rng)
        start = time.monotonic()
        try:
            reply = await c.post(path, content=content, headers=headers)
            code: int | str = reply.status_code
        except httpx.TransportError as exc:
            reply, code = None, type(exc).__name__
        tally.add(kind, code, time.monotonic() - start, start - t0, reply)
        if code in OVERLOAD and reply is not None and not (stop is not None and stop.is_set()):
            await asyncio.sleep(float(reply.headers.get("retry-after", "1")))


async def run_load(url: str, mix: Mix, clients: int, seconds: float, seed: int) -> tuple[Tally, float]:
    tally = Tally(mix.expected)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        await asyncio.gather(*(client_loop(c, mix, tally, random.Random(seed * 1000 + i), t0 + seconds, t0)
                               for i in range(clients)))
    return tally, time.monotonic() - t0


# -- the server process and what it holds --------------------------------------------------------------------

def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> set[tuple[int, str]]:
    children: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (f := _stat(entry)) is not None and f[0] != "Z":
            children[int(f[1])].append((int(entry), f[19]))
    found, todo = set(), [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found.add((pid, started))
            todo.append(pid)
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {(p, s) for p, s in processes if (f := _stat(p)) is not None and f[19] == s and f[0] != "Z"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def snapshot(pid: int) -> dict:
    below = descendants(pid)
    return {"rss_mb": rss_mb(pid), "rss_all_mb": rss_mb(pid) + sum(rss_mb(p) for p, _ in alive(below)),
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "children": len(below)}


def start_server(port: int, key: str, max_pending: int) -> subprocess.Popen:
    loong = Path(sys.executable).parent / "loong"
    cmd = [str(loong), "serve-reward", "--port", str(port), "--max-batch", str(MAX_BATCH),
           "--max-body-mb", str(MAX_BODY_MB), "--max-pending", str(max_pending)]
    proc = subprocess.Popen(cmd, env={**os.environ, "LOONG_REWARD_API_KEY": key}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the server did not answer /health within 300 s")


async def idle_snapshot(pid: int, settle_s: float = 3.0) -> dict:
    await asyncio.sleep(settle_s)  # closed connections and finished batches are released
    return snapshot(pid)


async def sigterm_under_load(url: str, mix: Mix, proc: subprocess.Popen, clients: int, seed: int) -> dict:
    """Load for a few seconds, SIGTERM, and see how the requests in flight at that moment were answered."""
    tally = Tally(mix.expected)
    stop = asyncio.Event()
    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        loops = [asyncio.create_task(client_loop(c, mix, tally, random.Random(seed + i), t0 + 3600, t0, stop))
                 for i in range(clients)]
        await asyncio.sleep(10)
        below = descendants(proc.pid)
        before = Counter(tally.codes)
        stop.set()  # no new requests from here on: what is answered next was in flight at SIGTERM
        os.kill(proc.pid, signal.SIGTERM)
        t_term = time.monotonic()
        code = await asyncio.to_thread(proc.wait, 300)
        exit_s = time.monotonic() - t_term
        await asyncio.wait_for(asyncio.gather(*loops, return_exceptions=True), 60)
    deadline = time.monotonic() + 15
    while alive(below) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    in_flight = Counter(tally.codes)
    in_flight.subtract(before)
    return {"exit_code": code, "exit_s": exit_s, "in_flight": {k: v for k, v in in_flight.items() if v},
            "children_before": len(below), "leaked": len(alive(below))}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(32)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print("hardware:", hardware())
    print(f"server: loong serve-reward on 127.0.0.1:{port} (API key set; --max-batch {MAX_BATCH}, "
          f"--max-body-mb {MAX_BODY_MB}, --max-pending {args.max_pending}, other limits default); clients: {args.clients}; garbage: "
          f"{args.garbage:.0%}; soak {args.minutes} min after {args.warmup_s:.0f} s warm-up", flush=True)
    t = time.monotonic()
    proc = start_server(port, key, args.max_pending)
    print(f"server ready in {time.monotonic() - t:.1f} s", flush=True)
    mix = Mix(key, args.garbage)
    try:
        warm, _ = await run_load(url, mix, args.clients, args.warmup_s, args.seed)
        start = await idle_snapshot(proc.pid)
        print(f"after warm-up ({sum(warm.codes.values())} requests): {start}", flush=True)
        tally, elapsed = await run_load(url, mix, args.clients, args.minutes * 60, args.seed + 1)
        end = await idle_snapshot(proc.pid)
        print(f"after the soak: {end}", flush=True)
        term = await sigterm_under_load(url, mix, proc, args.clients, args.seed + 2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    total = sum(tally.codes.values())
    print(f"\nsoak: {total} requests in {elapsed:.0f} s = {total / elapsed:.1f} requests/s")
    minutes = [tally.per_minute[m] / 60 for m in sorted(tally.per_minute)]
    full = minutes[:-1] if len(minutes) > 1 else minutes  # the last minute may be partial
    print("requests/s per minute:", ", ".join(f"{m:.1f}" for m in minutes))
    if len(full) >= 2:
        print(f"last full minute vs first (same run): x{full[-1] / full[0]:.2f}")
    print("\nreplies by status code:", dict(sorted(tally.codes.items(), key=str)))
    print(f"\n{'kind':<16}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}  codes")
    for kind in sorted(tally.by_kind):
        lat = tally.latency[kind]
        print(f"{kind:<16}{sum(tally.by_kind[kind].values()):>7}{pct(lat, 0.5) * 1e3:>9.1f}{pct(lat, 0.99) * 1e3:>9.1f}"
              f"  {dict(sorted(tally.by_kind[kind].items(), key=str))}")
    valid = [x for k, v in tally.latency.items() if k in {n for n, *_ in mix.kinds if mix.expected[n] == {200}}
             for x in v]
    print(f"valid requests answered 200: p50 {pct(valid, 0.5) * 1e3:.0f} ms, p99 {pct(valid, 0.99) * 1e3:.0f} ms")
    five = sum(v for k, v in tally.codes.items() if isinstance(k, int) and k >= 500 and k != 503)
    print(f"\nunexpected replies: {sum(tally.unexpected.values())} {dict(tally.unexpected)}")
    for label, text in tally.examples.items():
        print(f"  e.g. {label}: {text!r}")
    print(f"5xx other than 503: {five}; dropped connections: "
          f"{sum(v for k, v in tally.codes.items() if isinstance(k, str))}")
    print(f"\nserver RSS: {start['rss_mb']:.1f} MB after warm-up -> {end['rss_mb']:.1f} MB at the end "
          f"(x{end['rss_mb'] / start['rss_mb']:.3f}); with its sandbox workers {start['rss_all_mb']:.1f} -> "
          f"{end['rss_all_mb']:.1f} MB (x{end['rss_all_mb'] / start['rss_all_mb']:.3f})")
    print(f"open fds: {start['fds']} -> {end['fds']}; child processes: {start['children']} -> {end['children']}")
    print(f"\nSIGTERM under load: exit code {term['exit_code']} after {term['exit_s']:.1f} s; the {args.clients} "
          f"requests in flight were answered {term['in_flight']}; processes below the server before SIGTERM: "
          f"{term['children_before']}, still alive after: {term['leaked']}")
    dropped = sum(v for k, v in term["in_flight"].items() if not (k == 200 or k in OVERLOAD))
    ok = (sum(tally.unexpected.values()) == 0 and five == 0 and end["rss_mb"] <= 1.1 * start["rss_mb"]
          and end["fds"] <= start["fds"] and term["exit_code"] == 0 and term["leaked"] == 0 and dropped == 0)
    print("\nverdict:", "held" if ok else "NOT held")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak after warm-up")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="load before the baseline measurement")
    parser.add_argument("--clients", type=int, default=48, help="concurrent closed-loop clients")
    parser.add_argument("--max-pending", type=int, default=1024,
                        help="the server's admitted items; the clients ask for more, so it sheds load (429)")
    parser.add_argument("--garbage", type=float, default=0.2, help="share of requests that are garbage")
    parser.add_argument("--seed", type=int, default=0)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
