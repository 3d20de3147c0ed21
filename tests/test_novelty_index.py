"""The novelty index: the same verdicts as a scan of the whole pool, without the scan."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rapidfuzz import process
from rapidfuzz.distance import Indel

from loong_env.generators.novelty import NoveltyIndex, rouge_l, tokens
from loong_env.seeds import load_seeds

SEED_ROOT = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return sorted({dp.question for dp in load_seeds(root=SEED_ROOT)})


def _mutate(rng: random.Random, question: str, words: list[str]) -> str:
    """A near or far variant: some tokens re-drawn, swapped for words of other questions, or dropped."""
    parts = question.split()
    for _ in range(rng.randint(0, len(parts) // 2)):
        i = rng.randrange(len(parts))
        roll = rng.random()
        if roll < 0.4:
            parts[i] = str(rng.randint(2, 999))
        elif roll < 0.8:
            parts[i] = rng.choice(words)
        elif len(parts) > 3:
            del parts[i]
    return " ".join(parts)


_TOKENS: dict[str, list[str]] = {}


def _brute(pool: dict[str, str], question: str) -> float:
    """The rule itself: the best ROUGE-L over every pool item (what the index must agree with)."""
    choices = [_TOKENS.get(q) or _TOKENS.setdefault(q, tokens(q)) for q in pool.values()]
    best = process.extractOne(tokens(question), choices, scorer=Indel.normalized_similarity)
    return float(best[1]) if best else 0.0


def test_nearest_agrees_with_the_brute_force_scan_at_and_above_the_floor(questions) -> None:
    rng = random.Random(7)
    words = [w for q in questions for w in q.split()]
    index = NoveltyIndex(floor=0.5)
    pool = {f"s{i}": q for i, q in enumerate(questions)}
    for item_id, q in pool.items():
        index.add(q, item_id, "seed")
    checked = 0
    for _ in range(150):
        query = _mutate(rng, rng.choice(questions), words)
        found, truth = index.nearest(query), _brute(pool, query)
        assert found.similarity <= truth + 1e-12  # never over-reports
        if truth >= 0.5:
            checked += 1
            assert found.similarity == pytest.approx(truth), query
            assert rouge_l(query, pool[found.item_id]) == pytest.approx(truth)
    assert checked > 50  # the sample really exercised near-duplicates


def test_the_floor_is_exact_even_at_its_lowest(questions) -> None:
    rng = random.Random(3)
    words = [w for q in questions for w in q.split()]
    index = NoveltyIndex(floor=0.0)
    pool = {f"s{i}": q for i, q in enumerate(questions[:60])}
    for item_id, q in pool.items():
        index.add(q, item_id, "kept")
    for _ in range(40):
        query = _mutate(rng, rng.choice(questions), words)
        assert index.nearest(query).similarity == pytest.approx(_brute(pool, query))


def test_exclude_skips_the_parent_and_returns_the_next_nearest(questions) -> None:
    index = NoveltyIndex()
    a, b = questions[0], questions[0] + " Explain briefly."
    index.add(a, "a", "seed")
    index.add(b, "b", "kept")
    assert index.nearest(a).item_id == "a"
    nxt = index.nearest(a, exclude="a")
    assert nxt.item_id == "b" and nxt.kind == "kept" and nxt.similarity == pytest.approx(rouge_l(a, b))


def test_remove_forgets_the_item_and_its_exact_duplicate_hash(questions) -> None:
    index = NoveltyIndex()
    index.add(questions[0], "x", "kept")
    index.add("  " + questions[0].upper(), "y", "kept")  # the same normalised question, another id
    assert index.contains(questions[0]) and len(index) == 2
    assert index.remove("x") and not index.remove("x")
    assert index.contains(questions[0])  # "y" still holds it
    assert index.nearest(questions[0]).item_id == "y"
    assert index.remove("y")
    assert not index.contains(questions[0]) and len(index) == 0
    assert index.nearest(questions[0]).similarity == 0.0


def test_similarity_to_is_a_lookup_by_id(questions) -> None:
    index = NoveltyIndex()
    for i, q in enumerate(questions[:20]):
        index.add(q, f"q{i}", "seed")
    probe = questions[5] + " Show your work."
    assert index.similarity_to(probe, "q5") == pytest.approx(rouge_l(probe, questions[5]))
    assert index.similarity_to(probe, "missing") == 0.0
    assert index.similarity_to("zebra quokka narwhal", "q5") == 0.0  # tokens no item has


def test_an_index_saved_and_loaded_answers_as_before(questions, tmp_path) -> None:
    index = NoveltyIndex(floor=0.4)
    for i, q in enumerate(questions):
        index.add(q, f"q{i}", "seed" if i % 2 else "kept")
    index.remove("q3")
    path = tmp_path / "novelty.npz"
    index.save(path, meta={"lines": 17})
    again, meta = NoveltyIndex.load(path)
    assert meta == {"lines": 17} and len(again) == len(index) and again.floor == 0.4
    assert not again.contains(questions[3]) and again.contains(questions[4])
    for q in questions[::25]:
        probe = q.replace("What", "Which")
        assert again.nearest(probe) == index.nearest(probe)
    again.add("A brand new question about seventeen parrots?", "new", "kept")  # still growable
    assert again.nearest("A brand new question about seventeen parrots?").item_id == "new"


def test_a_broken_index_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "novelty.npz"
    path.write_bytes(b"not an index")
    with pytest.raises(ValueError, match="cannot read novelty index"):
        NoveltyIndex.load(path)


def test_tokens_keep_punctuation_and_case_fold() -> None:
    assert tokens("How many  Cows?") == ["how", "many", "cows", "?"]


def test_past_the_probe_budget_near_duplicates_are_still_found_and_scored_exactly(questions) -> None:
    rng = random.Random(11)
    index = NoveltyIndex(floor=0.7, probe_budget=8)  # far too small to merge every needed key
    pool = {f"s{i}": q for i, q in enumerate(questions)}
    for item_id, q in pool.items():
        index.add(q, item_id, "kept")
    found = 0
    for q in rng.sample(questions, 60):
        words = q.split()
        words[rng.randrange(len(words))] = str(rng.randint(2, 999))  # one word changed: a near-twin
        near = index.nearest(" ".join(words))
        if near.item_id is not None:
            assert near.similarity == pytest.approx(rouge_l(" ".join(words), pool[near.item_id]))
        found += near.similarity > 0.7
    assert found >= 57, found  # recall is measured, not proven, past the budget (benchmarks/bench_scale.py)


def test_nearest_since_sees_only_items_added_after_the_slot(questions) -> None:
    index = NoveltyIndex(floor=0.7)
    for i, q in enumerate(questions[:50]):
        index.add(q, f"q{i}", "kept")
    mark = index.slots
    assert index.nearest_since(questions[3], mark).similarity == 0.0  # its own twin is older than the mark
    late = questions[3] + " Give the exact value."
    index.add(late, "late", "kept")
    found = index.nearest_since(questions[3], mark)
    assert found.item_id == "late" and found.similarity == pytest.approx(rouge_l(questions[3], late))
    assert index.nearest_since(questions[3], mark, exclude="late").similarity == 0.0


async def test_a_claim_after_a_screen_still_rejects_a_twin_kept_in_between() -> None:
    from loong_env.generators import KeepConfig
    from loong_env.generators.keep import Candidate, KeepRule
    from loong_env.types import DataPoint

    rule = KeepRule(None, None, config=KeepConfig())  # novelty only: no sandbox or solver is reached
    question = "How many spanning trees does the complete graph on 7 vertices have?"
    twin = question.replace("How many", "Count how many")
    first = Candidate(question=question, code="print(16807)", domain="toy", method="few-shot", attempt=1)
    second = first.model_copy(update={"question": twin, "attempt": 2})
    screened = [await rule.screen(c) for c in (first, second)]  # both pass: the pool is empty
    assert all(s.reason is None and s.slots == 0 for s in screened)
    kept = DataPoint(question=question, final_answer="16807", domain="toy")
    assert (await rule.claim(first, kept, since=screened[0].slots)).reason is None
    late = await rule.claim(second, kept.model_copy(update={"question": twin}), since=screened[1].slots)
    assert late.reason is not None and late.reason.value == "too_similar" and late.similarity > 0.7
