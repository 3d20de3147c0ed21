"""How new is a question: ROUGE-L against everything we already hold (seeds and kept items).

ROUGE-L F1 over word tokens equals rapidfuzz's normalised Indel similarity on token lists
(2*LCS / (len_a + len_b)), so we get the Self-Instruct measure from a kept C library, not a loop of ours.

`NoveltyIndex` answers "the nearest pool item" without scanning the pool. A token inverted index finds
the few items that *can* reach the similarity floor, and only those are scored with the exact ROUGE-L:
  - LCS(a, b) <= the shared token multiset, so ROUGE-L(a, b) >= t needs shared >= t(|a|+|b|)/2 tokens and
    |b| within [t|a|/(2-t), (2-t)|a|/t];
  - tokens are indexed with their occurrence number ("the", "the#2"), so shared keys = shared multiset;
  - a query merges the posting lists of its rarest keys; each key it does not merge can add at most one
    shared token, so a candidate needs (needed overlap - keys left) hits among the merged ones, and the
    survivors are checked against the sorted posting lists of the keys left, one key at a time.
When merging |a| - min overlap + 1 keys fits in `probe_budget` postings, no item at or above the floor
can be missed (the filter is exact). In a large pool of look-alike questions the rarest keys alone can
exceed that budget; then only the rarest keys (at least MIN_PROBED) are merged and an item sharing none
of them with the query is not found: near-duplicates share most rare tokens (names, numbers, uncommon
words), so their recall stays measured at 1.0 in benchmarks/bench_scale.py, but it is no longer proven.
Every verdict is the exact ROUGE-L of the items found. Below the floor `nearest` reports the best item it
scored, a lower bound of the true nearest similarity.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from array import array
from operator import itemgetter
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from rapidfuzz import process
from rapidfuzz.distance import Indel

from loong_env.errors import ConfigError, LoongError
from loong_env.types import normalize_question

_TOKEN = re.compile(r"\w+|[^\w\s]")

DEFAULT_FLOOR = 0.7  # exact nearest similarity from here up: the keep rule's bar (0.7 by default)
INDEX_FORMAT = 2
DEFAULT_PROBE_BUDGET = 100_000  # postings merged per lookup at most (past it: the rarest keys only)
MIN_PROBED = 4  # keys merged at least, whatever the budget
APPROX_CANDIDATES = 1024  # past the budget: candidates scored, those sharing the most merged keys


class NoveltyIndexError(LoongError, ValueError):
    """A saved novelty index cannot be read (missing, torn, another format): rebuild it from the items."""


def tokens(text: str) -> list[str]:
    """Word and punctuation tokens of the normalised text: what ROUGE-L compares."""
    return _TOKEN.findall(normalize_question(text))


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 of two texts over word tokens, in [0, 1]."""
    return float(Indel.normalized_similarity(tokens(a), tokens(b)))


def question_hash(question: str) -> int:
    """64-bit hash of the normalised question: exact duplicates by lookup, stable across processes."""
    digest = hashlib.blake2b(normalize_question(question).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# Token ids become single characters so rapidfuzz compares whole token sequences as strings, in C.
# Surrogate code points are skipped; past the last code point every further token id shares one symbol
# (only similarity between two items that both hold such tokens can be over-counted: never a missed twin).
_SURROGATES = 0xD800
_LAST = 0x10FFFF - 1
_UNSEEN = chr(0x10FFFF)  # a query token no item holds


def _symbol(token_id: int) -> str:
    code = token_id if token_id < _SURROGATES else token_id + 0x800
    return chr(min(code, _LAST))


def _keys(toks: list[str]) -> list[str]:
    """Tokens with their occurrence number, so a set of keys is the token multiset."""
    seen: dict[str, int] = {}
    out = []
    for tok in toks:
        k = seen.get(tok, 0) + 1
        seen[tok] = k
        out.append(tok if k == 1 else f"{tok}#{k}")
    return out


def _min_overlap(floor: float, la: int, lb: int) -> int:
    """Fewest shared tokens that let two texts of lengths la, lb reach ROUGE-L >= floor."""
    return math.ceil(floor * (la + lb) / 2 - 1e-9)


class Nearest(BaseModel):
    """The most similar item in the pool and how similar it is."""

    similarity: float
    item_id: str | None = None
    kind: str | None = None  # "seed" or "kept"


class NoveltyIndex:
    """A growing pool of questions with a max-similarity lookup that scores a few candidates, not the pool.

    `floor`: `nearest` is exact whenever the nearest item's ROUGE-L is at least this (set it at or below
    the novelty threshold); lower similarities are reported as the best candidate scored (a lower bound).
    `probe_cap`: keys whose posting list is longer than this share of the pool are not merged when enough
    keys are merged for exactness (the keys left are checked one by one on the survivors instead).
    `probe_budget`: postings merged per lookup at most, which bounds its cost (None: always exact).
    `score_directly`: when this few candidates survive, score them all instead of filtering further.
    """

    def __init__(
        self,
        *,
        floor: float = DEFAULT_FLOOR,
        probe_cap: float = 0.02,
        score_directly: int = 256,
        probe_budget: int | None = DEFAULT_PROBE_BUDGET,
    ) -> None:
        if not 0.0 <= floor <= 1.0:
            raise ConfigError(f"NoveltyIndex floor: expected a ROUGE-L in [0, 1], found {floor}")
        self.floor = floor
        self.probe_cap = probe_cap
        self.score_directly = score_directly
        self.probe_budget = probe_budget
        self._vocab: dict[str, int] = {}  # token -> token id (what the exact ROUGE-L compares)
        self._key_ids: dict[str, int] = {}  # occurrence key -> posting list number
        self._postings: list[array] = []  # key number -> item numbers holding it
        self._texts: list[str] = []  # item number -> its tokens as one symbol each (what ROUGE-L compares)
        self._lengths = array("i")  # item number -> token count (0 once removed)
        self._hash_of = array("Q")  # item number -> question_hash
        self._ids: list[str | None] = []  # item number -> item id (None once removed)
        self._kinds = bytearray()  # item number -> 0 seed, 1 kept
        self._number: dict[str, int] = {}  # item id -> item number
        self._hashes: dict[int, int] = {}  # question_hash -> how many live items have it

    def __len__(self) -> int:
        return len(self._number)

    # -- changes ------------------------------------------------------------------------------------

    def add(self, question: str, item_id: str, kind: str) -> None:
        """Remember a question so later candidates are compared with it (an id added again replaces)."""
        if item_id in self._number:
            self.remove(item_id)
        toks = tokens(question)
        number = len(self._ids)
        vocab = self._vocab
        self._texts.append("".join([_symbol(vocab.setdefault(tok, len(vocab))) for tok in toks]))
        self._lengths.append(len(toks))
        for key in _keys(toks):
            kid = self._key_ids.get(key)
            if kid is None:
                kid = self._key_ids[key] = len(self._postings)
                self._postings.append(array("i"))
            self._postings[kid].append(number)
        h = question_hash(question)
        self._hash_of.append(h)
        self._hashes[h] = self._hashes.get(h, 0) + 1
        self._ids.append(item_id)
        self._kinds.append(0 if kind == "seed" else 1)
        self._number[item_id] = number

    def remove(self, item_id: str) -> bool:
        """Forget an item (e.g. a claim whose attempt is being retried); False if it is not in the pool."""
        number = self._number.pop(item_id, None)
        if number is None:
            return False
        self._ids[number] = None
        self._lengths[number] = 0  # postings keep the number; a zero length never passes the length bound
        h = self._hash_of[number]
        if self._hashes[h] <= 1:
            del self._hashes[h]
        else:
            self._hashes[h] -= 1
        return True

    @property
    def slots(self) -> int:
        """Items ever added (removed ones included): `held(since=slots)` later lists what came after."""
        return len(self._ids)

    def held(self, *, since: int = 0) -> list[tuple[str, str]]:
        """(item id, kind) of every item held, in the order they were added (from slot `since` on)."""
        kinds, ids = self._kinds, self._ids
        return [
            (ids[n], "seed" if kinds[n] == 0 else "kept")
            for n in range(since, len(ids))
            if ids[n] is not None
        ]

    # -- lookups ------------------------------------------------------------------------------------

    def contains(self, question: str) -> bool:
        """True if the normalised question is already in the pool (an exact duplicate)."""
        return question_hash(question) in self._hashes

    def similarity_to(self, question: str, item_id: str) -> float:
        """ROUGE-L between `question` and the pool item `item_id` (0 if it is not in the pool)."""
        number = self._number.get(item_id)
        if number is None:
            return 0.0
        return float(Indel.normalized_similarity(self._query_text(tokens(question)), self._texts[number]))

    def nearest(self, question: str, *, exclude: str | None = None, floor: float | None = None) -> Nearest:
        """The pool item with the highest ROUGE-L to `question`, optionally ignoring the item `exclude`.

        Exact when that similarity is at least `floor` (default: the index's); else a lower bound.
        """
        t = self.floor if floor is None else floor
        toks = tokens(question)
        la = len(toks)
        if la == 0 or not self._number:
            return Nearest(similarity=0.0)
        candidates = self._candidates(toks, t)
        skip = self._number.get(exclude, -1) if exclude is not None else -1
        if skip in candidates:
            candidates.remove(skip)
        if not candidates:
            return Nearest(similarity=0.0)
        texts = self._texts
        choices = [texts[candidates[0]]] if len(candidates) == 1 else itemgetter(*candidates)(texts)
        found = process.extractOne(self._query_text(toks), choices, scorer=Indel.normalized_similarity)
        return self._nearest(candidates[found[2]], found[1])

    def nearest_since(self, question: str, since: int, *, exclude: str | None = None) -> Nearest:
        """The nearest item added from slot `since` on (exact): all a claim after a screen must ask."""
        ids = self._ids
        numbers = [n for n in range(since, len(ids)) if ids[n] is not None and ids[n] != exclude]
        if not numbers:
            return Nearest(similarity=0.0)
        texts = self._texts
        query = self._query_text(tokens(question))
        found = process.extractOne(query, [texts[n] for n in numbers], scorer=Indel.normalized_similarity)
        return self._nearest(numbers[found[2]], found[1])

    def _nearest(self, number: int, similarity: float) -> Nearest:
        return Nearest(
            similarity=float(similarity),
            item_id=self._ids[number],
            kind="seed" if self._kinds[number] == 0 else "kept",
        )

    def _candidates(self, toks: list[str], t: float) -> list[int]:
        """Item numbers that may reach ROUGE-L >= t with the query (every one that does is among them).

        Stage 1 merges the posting lists of the rarest keys (at least the `must_probe` ones); stage 2
        checks the survivors' membership in each common key's sorted posting list, dropping an item as
        soon as even all the keys left cannot lift its shared count to what its length needs.
        """
        la = len(toks)
        lb_min = max(1, math.ceil(t * la / (2 - t) - 1e-9))
        lb_max = math.floor((2 - t) * la / t + 1e-9) if t > 0 else 1 << 30
        must_probe = la - _min_overlap(t, la, lb_min) + 1  # keys to look up so nothing is missed
        known = []
        for key in _keys(toks):
            kid = self._key_ids.get(key)
            if kid is not None:  # a key no item holds adds nothing to any count
                known.append((len(self._postings[kid]), kid))
        if not known:
            return []
        known.sort()
        cap = max(64, int(self.probe_cap * len(self._ids)))
        first = max(must_probe - (la - len(known)), 1)
        while first < len(known) and known[first][0] <= cap:
            first += 1
        exact = True
        if self.probe_budget is not None:  # past the budget, merge only the rarest keys (see the module doc)
            merged, within = 0, 0
            for size, _ in known[:first]:
                merged += size
                if merged > self.probe_budget and within >= MIN_PROBED:
                    exact = False
                    break
                within += 1
            first = within
        postings = self._postings
        hits = np.concatenate([np.frombuffer(postings[kid], dtype=np.int32) for _, kid in known[:first]])
        numbers, counts = np.unique(hits, return_counts=True)
        lengths = np.frombuffer(self._lengths, dtype=np.int32)[numbers]
        need = np.ceil(t * (la + lengths) / 2 - 1e-9)
        left = len(known) - first  # keys not merged yet: each can add one to a count
        ok = (lengths >= lb_min) & (lengths <= lb_max) & (counts + left >= need)
        numbers, counts, need = numbers[ok], counts[ok], need[ok]
        if not exact:  # the items sharing most of the rarest keys, scored directly
            if numbers.size > APPROX_CANDIDATES:
                numbers = numbers[np.argpartition(-counts, APPROX_CANDIDATES)[:APPROX_CANDIDATES]]
            return numbers.tolist()
        for _, kid in known[first:]:
            if numbers.size <= self.score_directly:
                break  # few enough: the exact ROUGE-L of each (in C) is cheaper than more filtering
            posting = np.frombuffer(self._postings[kid], dtype=np.int32)
            at = np.minimum(np.searchsorted(posting, numbers), len(posting) - 1)
            counts = counts + (posting[at] == numbers)
            left -= 1
            ok = counts + left >= need
            numbers, counts, need = numbers[ok], counts[ok], need[ok]
        return numbers.tolist()

    def _query_text(self, toks: list[str]) -> str:
        """A query's tokens as symbols; a token no item has becomes a symbol no item holds."""
        vocab, unseen = self._vocab, _UNSEEN
        return "".join([_symbol(vocab[tok]) if tok in vocab else unseen for tok in toks])

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, meta: dict[str, object] | None = None) -> None:
        """Write the whole index to one .npz file (tmp + fsync + rename: a reader sees old or new)."""
        target = Path(path)
        sizes = np.fromiter((len(p) for p in self._postings), dtype=np.int64, count=len(self._postings))
        flat_postings = (
            np.concatenate([np.frombuffer(p, dtype=np.int32) for p in self._postings])
            if self._postings
            else np.zeros(0, dtype=np.int32)
        )
        header = {
            "format": INDEX_FORMAT,
            "floor": self.floor,
            "probe_cap": self.probe_cap,
            "meta": meta or {},
        }
        arrays = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            **_packed("vocab", self._vocab),
            **_packed("keys", self._key_ids),
            "posting_sizes": sizes,
            "postings": flat_postings,
            **_packed("texts", self._texts),
            "lengths": np.frombuffer(self._lengths, dtype=np.int32),
            "hash_of": np.frombuffer(self._hash_of, dtype=np.uint64),
            **_packed("ids", ["" if i is None else i for i in self._ids]),
            "alive": np.array([i is not None for i in self._ids], dtype=bool),
            "kinds": np.frombuffer(bytes(self._kinds), dtype=np.uint8),
        }
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    @staticmethod
    def read_meta(path: str | os.PathLike[str]) -> dict[str, object]:
        """The `meta` saved with an index, without loading the index (ValueError if unreadable)."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise NoveltyIndexError(f"cannot read novelty index {path}: {type(exc).__name__}: {exc}") from exc
        if header.get("format") != INDEX_FORMAT:
            raise NoveltyIndexError(
                f"novelty index {path}: format {header.get('format')!r}, expected {INDEX_FORMAT}"
            )
        return dict(header.get("meta") or {})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[NoveltyIndex, dict[str, object]]:
        """An index written by `save`, and the `meta` saved with it; raises ValueError if unreadable."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if header.get("format") != INDEX_FORMAT:
                    raise NoveltyIndexError(f"index format {header.get('format')!r}, expected {INDEX_FORMAT}")
                index = cls(floor=header["floor"], probe_cap=header["probe_cap"])
                vocab = _unpack_strings(data, "vocab")
                index._vocab = dict(zip(vocab, range(len(vocab)), strict=True))
                keys = _unpack_strings(data, "keys")
                index._key_ids = dict(zip(keys, range(len(keys)), strict=True))
                postings = data["postings"].tobytes()
                ends = np.cumsum(data["posting_sizes"]) * 4
                starts = np.concatenate([[0], ends[:-1]]) if len(ends) else ends
                index._postings = [array("i", postings[s:e]) for s, e in zip(starts, ends, strict=True)]
                index._texts = _unpack_strings(data, "texts")
                index._lengths = array("i", data["lengths"].tobytes())
                index._hash_of = array("Q", data["hash_of"].tobytes())
                ids = _unpack_strings(data, "ids")
                alive = data["alive"].tolist()
                index._ids = [i if a else None for i, a in zip(ids, alive, strict=True)]
                index._kinds = bytearray(data["kinds"].tobytes())
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise NoveltyIndexError(f"cannot read novelty index {path}: {type(exc).__name__}: {exc}") from exc
        index._number = {i: n for n, i in enumerate(index._ids) if i is not None}
        hashes: dict[int, int] = {}
        for h, live in zip(index._hash_of.tolist(), alive, strict=True):
            if live:
                hashes[h] = hashes.get(h, 0) + 1
        index._hashes = hashes
        return index, header.get("meta", {})


def _pack_strings(strings: dict[str, int] | list[str]) -> dict[str, np.ndarray]:
    """Strings in order (a dict's keys are in value order) as UTF-8 bytes plus each one's byte length."""
    encoded = [s.encode("utf-8") for s in strings]
    return {
        "bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "sizes": np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
    }


def _unpack_strings(data: np.lib.npyio.NpzFile, name: str) -> list[str]:
    raw = data[f"{name}.bytes"].tobytes()
    ends = np.cumsum(data[f"{name}.sizes"]).tolist()
    out, start = [], 0
    for end in ends:
        out.append(raw[start:end].decode("utf-8"))
        start = end
    return out


def _packed(name: str, strings: dict[str, int] | list[str]) -> dict[str, np.ndarray]:
    return {f"{name}.{part}": value for part, value in _pack_strings(strings).items()}
