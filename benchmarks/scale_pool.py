"""A realistic kept pool for the scale benchmark: our seeds recombined, re-numbered and re-worded, no near-twins.

Each item: one or two setup sentences and one question sentence of seeds of one domain (often of different
seeds), an optional answer-format sentence; every number re-drawn with the same digit count; a share of
the content words swapped for other words of the domain's seeds (entities, objects, quantities). An item
the exact keep rule (ROUGE-L > 0.7 to anything already in the pool, or an exact duplicate) would reject is
dropped, as the real keep rule drops it. Questions are appended to a text file (one a line) as they are
accepted, so a long build resumes where it stopped; any prefix of that file is itself a valid pool.
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from loong_env.generators.novelty import NoveltyIndex
from loong_env.seeds import load_seeds

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
THRESHOLD = 0.7
BUILD_BUDGET = 5_000  # the drop check merges at most this many postings (its recall: ~0.99 at 1M)
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"\b[a-z]{4,}\b")
_FORMAT = re.compile(r"^(Give|Round|Express|Report|Answer|State|Use|Assume)\b")


class Parts:
    """One domain's sentences by role, and the content words to swap in."""

    def __init__(self) -> None:
        self.setup: list[str] = []
        self.ask: list[str] = []
        self.fmt: list[str] = []
        self.words: list[str] = []


def domain_parts() -> list[Parts]:
    """Every seed domain's sentences split into setup / question / answer-format roles."""
    by_domain: dict[str, Parts] = defaultdict(Parts)
    for dp in load_seeds(root=SEEDS):
        parts = by_domain[dp.domain]
        text = " ".join(dp.question.split())
        sentences = _SENTENCE.split(text)
        for i, sentence in enumerate(sentences):
            if _FORMAT.match(sentence):
                parts.fmt.append(sentence)
            elif sentence.endswith("?") or i == len(sentences) - 1:
                parts.ask.append(sentence)
            else:
                parts.setup.append(sentence)
        parts.words.extend(_WORD.findall(text))
    out = [p for p in by_domain.values() if p.ask and p.setup]
    for p in out:
        p.fmt = p.fmt or [""]
        p.words = sorted(set(p.words))
    return out


def _renumber(rng: random.Random, match: re.Match[str]) -> str:
    text = match.group()
    if "." in text:
        whole, frac = text.split(".")
        return f"{rng.randint(0, 10 ** len(whole) - 1)}.{rng.randint(0, 10 ** len(frac) - 1):0{len(frac)}d}"
    return str(rng.randint(10 ** (len(text) - 1) if len(text) > 1 else 2, 10 ** len(text) - 1))


def entity_names(count: int = 20000, seed: int = 0) -> list[str]:
    """Made-up proper names (people, places, firms, species) to swap in for entities."""
    rng = random.Random(seed)
    onsets = ["b", "br", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "qu"]
    vowels = ["a", "e", "i", "o", "u", "ae", "io", "ou"]
    codas = ["", "n", "r", "s", "l", "x", "th", "nd", "ck"]
    names: set[str] = set()
    while len(names) < count:
        syllables = rng.randint(2, 3)
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas)
        names.add(word.capitalize())
    return sorted(names)


ENTITIES = entity_names()


def _setup(rng: random.Random, p: Parts) -> str:
    """A setup sentence, or the first clauses of one joined to the last clauses of another (recombined)."""
    a = rng.choice(p.setup)
    if rng.random() < 0.5 and ", " in a:
        b = rng.choice(p.setup)
        head, tail = a.split(", "), b.split(", ")
        return ", ".join(head[: rng.randint(1, len(head))] + tail[rng.randint(0, len(tail) - 1) :])
    return a


def _swap(rng: random.Random, p: Parts, word: str, rate: float) -> str:
    if rng.random() >= rate:
        return word
    return rng.choice(ENTITIES) if rng.random() < 0.6 else rng.choice(p.words)


def candidate(rng: random.Random, domains: list[Parts], swap: float = 0.35) -> str:
    """One made-up question in the style of a random domain's seeds."""
    p = rng.choice(domains)
    sentences = [_setup(rng, p)]
    if rng.random() < 0.5:
        sentences.append(_setup(rng, p))
    sentences.append(rng.choice(p.ask))
    if rng.random() < 0.6:
        sentences.append(rng.choice(p.fmt))
    text = " ".join(s for s in sentences if s)
    text = _NUMBER.sub(lambda m: _renumber(rng, m), text)
    return _WORD.sub(lambda m: _swap(rng, p, m.group(), swap), text)


def near_duplicate(rng: random.Random, question: str) -> str:
    """A near-twin of `question`: one or two numbers re-drawn, a word dropped or doubled; mostly > 0.7."""
    text = _NUMBER.sub(lambda m: _renumber(rng, m) if rng.random() < 0.5 else m.group(), question)
    words = text.split()
    if len(words) > 8 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    elif rng.random() < 0.5:
        i = rng.randrange(len(words))
        words.insert(i, words[i])
    return " ".join(words)


def read_pool(path: Path, limit: int | None = None) -> list[str]:
    """The first `limit` questions of a pool file (complete lines only)."""
    out: list[str] = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n") or (limit is not None and len(out) >= limit):
                break
            out.append(line[:-1])
    return out


def build_pool(path: Path, size: int, *, seed: int = 0, log_every: int = 50_000) -> Iterator[str]:
    """Grow the pool file at `path` to `size` questions (resuming what is there); yields progress lines."""
    have = read_pool(path)
    index = NoveltyIndex(floor=THRESHOLD, probe_budget=BUILD_BUDGET)
    for i, q in enumerate(have):
        index.add(q, f"p{i}", "kept")
    with path.open("r+b" if path.exists() else "wb") as fh:  # cut a torn last line
        fh.seek(sum(len(q.encode("utf-8")) + 1 for q in have))
        fh.truncate()
    rng = random.Random(f"{seed}:{len(have)}")
    domains = domain_parts()
    tried = dropped = 0
    started = time.perf_counter()
    with path.open("a", encoding="utf-8") as out:
        while len(index) < size:
            q = candidate(rng, domains)
            tried += 1
            if index.contains(q) or index.nearest(q).similarity > THRESHOLD:
                dropped += 1
                continue
            index.add(q, f"p{len(index)}", "kept")
            out.write(q + "\n")
            if len(index) % log_every == 0:
                out.flush()
                rate = tried / (time.perf_counter() - started)
                yield f"  pool {len(index):>9,}: {dropped / tried:.1%} of candidates dropped, {rate:,.0f}/s"


def extend_unchecked(path: Path, size: int, *, seed: int = 0) -> int:
    """Grow the pool file to `size` with questions made the same way but not checked against the pool.

    A fully checked million costs ~40 CPU-minutes on a 2-core machine; this is the cheap way to a large
    pool. It holds near-twins (what a kept pool would not), so lookups on it find more candidates: a
    harder pool for the index, not an easier one. Returns how many were added.
    """
    have = len(read_pool(path))
    rng = random.Random(f"unchecked:{seed}:{have}")
    domains = domain_parts()
    with path.open("a", encoding="utf-8") as out:
        for _ in range(size - have):
            out.write(candidate(rng, domains) + "\n")
    return max(0, size - have)
