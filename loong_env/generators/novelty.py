"""How new is a question: ROUGE-L against everything we already hold (seeds and kept items).

ROUGE-L F1 over word tokens equals rapidfuzz's normalised Indel similarity on token lists
(2*LCS / (len_a + len_b)), so we get the Self-Instruct measure from a kept C library, not a loop of ours.
"""

from __future__ import annotations

import re

from pydantic import BaseModel
from rapidfuzz import process
from rapidfuzz.distance import Indel

from loong_env.types import normalize_question

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    """Word and punctuation tokens of the normalised text: what ROUGE-L compares."""
    return _TOKEN.findall(normalize_question(text))


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 of two texts over word tokens, in [0, 1]."""
    return float(Indel.normalized_similarity(tokens(a), tokens(b)))


class Nearest(BaseModel):
    """The most similar item in the pool and how similar it is."""

    similarity: float
    item_id: str | None = None
    kind: str | None = None  # "seed" or "kept"


class NoveltyIndex:
    """A growing pool of questions with a max-similarity query; cheap enough to ask for every candidate."""

    def __init__(self) -> None:
        self._tokens: list[list[str]] = []
        self._ids: list[str] = []
        self._kinds: list[str] = []
        self._normalized: list[str] = []
        self._hashes: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, question: str, item_id: str, kind: str) -> None:
        """Remember a question so later candidates are compared with it."""
        self._tokens.append(tokens(question))
        self._ids.append(item_id)
        self._kinds.append(kind)
        self._normalized.append(normalize_question(question))
        self._hashes.add(self._normalized[-1])

    def remove(self, item_id: str) -> bool:
        """Forget an item (e.g. a claim whose attempt is being retried); False if it is not in the pool."""
        try:
            index = self._ids.index(item_id)
        except ValueError:
            return False
        for column in (self._tokens, self._ids, self._kinds):
            del column[index]
        normalized = self._normalized.pop(index)
        if normalized not in self._normalized:
            self._hashes.discard(normalized)
        return True

    def contains(self, question: str) -> bool:
        """True if the normalised question is already in the pool (an exact duplicate)."""
        return normalize_question(question) in self._hashes

    def nearest(self, question: str, *, exclude: str | None = None) -> Nearest:
        """The pool item with the highest ROUGE-L to `question`, optionally ignoring the item `exclude`."""
        found = process.extract(
            tokens(question), self._tokens, scorer=Indel.normalized_similarity, processor=None, limit=2
        )
        for _, score, index in found:
            if self._ids[index] != exclude:
                return Nearest(similarity=float(score), item_id=self._ids[index], kind=self._kinds[index])
        return Nearest(similarity=0.0)

    def similarity_to(self, question: str, item_id: str) -> float:
        """ROUGE-L between `question` and the pool item `item_id` (0 if it is not in the pool)."""
        try:
            index = self._ids.index(item_id)
        except ValueError:
            return 0.0
        return float(Indel.normalized_similarity(tokens(question), self._tokens[index]))
