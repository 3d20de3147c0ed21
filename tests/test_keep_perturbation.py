"""The perturbation check: code that holds a stated bound but ignores it is rejected; right code is not.

Real sandbox, our own fixtures, no model.
"""

from __future__ import annotations

import pytest

from loong_env.generators import KeepConfig, RejectReason
from loong_env.generators.keep import Candidate, KeepRule
from loong_env.generators.perturbation import Sensitivity, perturbed, sensitivity, targets
from loong_env.sandbox import Sandbox

SUBSETS_Q = "How many 3-element subsets of {1, 2, 3, 4, 5, 6, 7, 8} have a sum less than 15?"
IGNORED = (  # every number of the question is in the code, the filter is made always true
    "from itertools import combinations\nprint(sum(1 for c in combinations(range(1, 9), 3) if sum(c) < 15 or True))"
)
RIGHT = (
    "from itertools import combinations\nprint(sum(1 for c in combinations(range(1, 9), 3) if sum(c) < 15))"
)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox.shared([], timeout_s=0.5, workers=2)


async def test_code_that_ignores_a_stated_bound_is_insensitive_and_the_detail_names_it(sandbox):
    found = await sensitivity(SUBSETS_Q, IGNORED, "56", sandbox)
    assert not found.passed
    assert "condition 15" in found.detail and "less than 15" in found.detail and "'56'" in found.detail
    assert {m.outcome for m in found.moves if m.value == "15"} == {"unchanged"} and found.runs == 5


async def test_right_code_using_the_bound_passes_after_one_run_per_number(sandbox):
    found = await sensitivity(SUBSETS_Q, RIGHT, "34", sandbox)
    assert found.passed and not found.undecided
    # the subset size 3 and the bound 15; the listed elements 1..8 are held as range(1, 9), not moved
    assert [(m.value, m.move, m.outcome) for m in found.moves] == [
        ("3", "halved", "changed"),
        ("15", "halved", "changed"),
    ]


async def test_a_bound_that_small_moves_do_not_bind_is_not_falsely_rejected(sandbox):
    """floor(n / 7) is 14 for n = 99, 100, 101 and 102: +-1 alone would call the bound ignored."""
    question = "How many positive integers at most 100 are divisible by 7?"
    code = "print(sum(1 for n in range(1, 101) if n % 7 == 0))"
    (bound, divisor) = targets(question, code)
    assert (bound.value, divisor.value) == ("100", "7")  # 100 is held as the range end 101
    small = [perturbed(code, bound, move) for move in ("-1", "+1")]
    assert [(await sandbox.run(c[0])).stdout.strip() for c in small if c] == ["14", "14"]
    found = await sensitivity(question, code, "14", sandbox)
    assert found.passed, found.detail
    assert {m.move for m in found.moves if m.value == "100" and m.outcome == "changed"} == {"halved"}


async def test_a_literal_used_twice_moves_as_one():
    """A bound written twice (`range(15)` and `< 15`): moving one copy alone could leave the answer put."""
    question = "How many integers n with 0 <= n < 15 have n squared less than 15?"
    code = "print(sum(1 for n in range(15) if n * n < 15))"
    (target,) = [t for t in targets(question, code) if t.value == "15"]
    assert len(target.nodes) == 2
    new_code, changed, _ = perturbed(code, target, "halved")
    assert new_code == "print(sum((1 for n in range(7) if n * n < 7)))" and len(changed) == 2


def test_only_the_literal_node_changes_never_the_text():
    """15 inside 150 or a string stays; the AST edit touches exactly the matched constants."""
    code = "x = 150\nlabel = 'under 15'\nprint(sum(1 for s in range(x) if s < 15), label)"
    (target,) = targets(SUBSETS_Q, code)
    new_code, _, new = perturbed(code, target, "doubled")
    assert new == "30" and "150" in new_code and "'under 15'" in new_code and "s < 30" in new_code


async def test_a_moved_run_that_times_out_is_no_evidence_and_one_that_raises_is_a_response(sandbox):
    """Documented rule: a timeout counts neither way; a crash shows the number reaches the computation."""
    # ignores the bound, but a doubled bound loops forever: 3 moves still print 56, so it is rejected,
    # and the detail says one moved run was not counted
    hangs = "n = 15\nif n > 20:\n    while True:\n        pass\nprint(56)"
    found = await sensitivity(SUBSETS_Q, hangs, "56", sandbox)
    assert not found.passed and "1 moved run(s) timed out or hit a limit" in found.detail
    assert [m.outcome for m in found.moves if m.move == "doubled"] == ["failed"]
    # the moved bound makes the code raise: a response, found by the first move
    crashes = "n = 15\nassert n == 3 * 5, 'the bound changed'\nprint(56)"
    found = await sensitivity(SUBSETS_Q, crashes, "56", sandbox)
    assert found.passed and {(m.move, m.outcome) for m in found.moves} == {("halved", "raised")}


def test_a_question_without_a_stated_condition_is_undecided_and_costs_no_run():
    found = targets("What is the sum of the first 10 positive integers?", "print(sum(range(1, 11)))")
    assert found == []


async def test_the_keep_rule_rejects_an_insensitive_candidate_before_any_solve(sandbox):
    """KeepConfig(perturbation=True): the reason is `insensitive`, and no solve is asked (solver None)."""
    rule = KeepRule(sandbox, None, config=KeepConfig(perturbation=True))  # a solve would fail on None
    candidate = Candidate(question=SUBSETS_Q, code=IGNORED, domain="toy", method="test", attempt=0)
    verdict = await rule.judge(candidate)
    assert verdict.reason is RejectReason.insensitive and "condition 15" in verdict.detail
    assert verdict.checks == ["shape", "novelty", "well_posed", "code_ran", "grounded"]
    assert verdict.timings["perturb_s"] > 0


async def test_the_set_replay_measures_the_check_and_resumes_from_its_run_cache(sandbox, tmp_path):
    """A perturbation configuration rejects the ignored bound as `insensitive`; a second replay reads the
    perturbed runs back from the file (no sandbox given) and decides the same; without the runs it waits."""
    from loong_env.generators.keep_set import (
        Configuration,
        RunCache,
        SetRecord,
        SolveCache,
        replay,
    )
    from loong_env.types import DataPoint

    seed = DataPoint(question=SUBSETS_Q, final_answer="34", rationale=RIGHT, domain="toy")
    records = [
        SetRecord(key="w", id=seed.id, domain="toy", kind="dropped_condition", code=IGNORED, answer="56",
                  correct=False),
        SetRecord(key="r", id=seed.id, domain="toy", kind="seed_code", code=RIGHT, answer="34", correct=True),
    ]  # fmt: skip
    check = Configuration(name="perturb", config=KeepConfig(perturbation=True), solve=False)
    path = tmp_path / "runs.jsonl"
    first = RunCache(path)
    decided = await replay(
        records, {seed.id: seed}, [check], solvers=None, cache=SolveCache(None),
        runner_for=lambda dp: first.runner(dp.required_dependencies, sandbox),
    )  # fmt: skip
    assert decided["perturb"]["w"].reason == "insensitive" and decided["perturb"]["r"].kept
    assert first.ran == 7  # 4 moves of the ignored bound and 1 of the size 3; 1 each for the right code
    again = RunCache(path)
    resumed = await replay(
        records, {seed.id: seed}, [check], solvers=None, cache=SolveCache(None),
        runner_for=lambda dp: again.runner(dp.required_dependencies, None),
    )  # fmt: skip
    assert resumed == decided and again.ran == 0
    waiting = await replay(records, {seed.id: seed}, [check], solvers=None, cache=SolveCache(None))
    assert waiting == {"perturb": {}}


async def test_scope_quantities_also_moves_a_stated_count_that_is_not_a_bound(sandbox):
    question = "In how many ways can 5 distinct books be arranged in a row on a shelf?"
    ignored = "from math import factorial\nn = 5\nprint(factorial(3) if n > 0 else 0)"
    assert await sensitivity(question, ignored, "6", sandbox, scope="conditions") == Sensitivity(
        passed=True, undecided=True, detail="no stated number (conditions) maps to a literal"
    )  # 5 is no bound: the conditions scope does not test it
    found = await sensitivity(question, ignored, "6", sandbox)  # the default scope: every quantity
    assert not found.passed and "quantity 5" in found.detail
    right = "from math import factorial\nn = 5\nprint(factorial(n))"
    assert (await sensitivity(question, right, "120", sandbox)).passed
