"""The perturbation check: code that holds a stated bound but ignores it is rejected; right code is not.

Real sandbox, our own fixtures, no model.
"""

from __future__ import annotations

import pytest

from loong_env.generators import KeepConfig, RejectReason
from loong_env.generators.keep import Candidate, KeepRule
from loong_env.generators.perturbation import MOVES, Sensitivity, perturbed, sensitivity, targets
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


SCORES_Q = (  # a table the question states: one cell alone may not bind, the table as a whole must
    "Four workers are assigned to four tasks, one each, to maximise the total score. The scores (rows = "
    "workers, columns = tasks) are [[9, 2, 7, 8], [6, 4, 3, 7], [5, 8, 1, 8], [7, 6, 9, 4]]. What is the "
    "maximum total score?"
)
SCORES_RIGHT = (
    "from itertools import permutations\nS = [[9, 2, 7, 8], [6, 4, 3, 7], [5, 8, 1, 8], [7, 6, 9, 4]]\n"
    "print(max(sum(S[i][p[i]] for i in range(4)) for p in permutations(range(4))))"
)
SCORES_IGNORED = (  # holds the table, walks it, never adds a score: prints 0 whatever the scores
    "S = [[9, 2, 7, 8], [6, 4, 3, 7], [5, 8, 1, 8], [7, 6, 9, 4]]\nbest = 0\n"
    "for row in S:\n    for cell in row:\n        if cell > 100:\n            best = cell\nprint(best)"
)
DNA_Q = "How many times does CG occur (overlapping allowed) in the DNA sequence ACGCGTTACGAACG?"


async def test_code_that_holds_the_questions_table_but_ignores_it_is_rejected_and_right_code_passes(sandbox):
    (table,) = [t for t in targets(SCORES_Q, SCORES_IGNORED) if t.kind == "table"]
    assert len(table.nodes) == 16  # every cell; the numbers in it are not tested one by one
    found = await sensitivity(SCORES_Q, SCORES_IGNORED, "0", sandbox)
    assert not found.passed and "ignores the table" in found.detail and "9 -> 18" in found.detail
    assert [m.outcome for m in found.moves] == ["unchanged"] * 4
    found = await sensitivity(SCORES_Q, SCORES_RIGHT, "33", sandbox)
    assert found.passed and [(m.move, m.outcome) for m in found.moves] == [("largest doubled", "changed")]


def test_a_table_moves_one_cell_at_a_time_largest_smallest_middle():
    (table,) = [t for t in targets(SCORES_Q, SCORES_RIGHT) if t.kind == "table"]
    moved = {m: perturbed(SCORES_RIGHT, table, m) for m in MOVES["table"]}
    assert {m: changed for m, (_, changed, _) in moved.items()} == {
        "largest doubled": ["9 -> 18 (line 2)"],  # the first 9 met: row 0
        "largest zeroed": ["9 -> 0 (line 2)"],
        "smallest doubled": ["1 -> 2 (line 2)"],
        "middle doubled": ["7 -> 14 (line 2)"],
    }
    assert "[[0, 2, 7, 8], [6, 4, 3, 7]" in moved["largest zeroed"][0]  # one cell, not every 9


async def test_a_yes_no_answer_is_not_tested(sandbox):
    """Is a 4-vertex path connected? True for any length: moving 4 proves nothing about right code."""
    question = "Is the path graph with 4 vertices connected? Answer True or False."
    code = "import networkx as nx\nprint(nx.is_connected(nx.path_graph(4)))"
    found = await sensitivity(question, code, "True", sandbox)
    assert found.passed and found.undecided and found.runs == 0 and "yes/no" in found.detail


def test_a_table_of_one_repeated_value_is_a_starting_state_not_data():
    question = "Four lamps start off (0, 0, 0, 0); toggling lamp i flips lamps i and i+1. After 3 toggles..."
    assert [t.kind for t in targets(question, "state = [0, 0, 0, 0]\nprint(len(state))")] == []


def test_a_list_of_the_codes_own_numbers_is_not_the_questions_table():
    code = "primes = [2, 3, 5, 7, 11, 13]\nprint(sum(1 for p in primes if p < 15))"
    assert [t.kind for t in targets(SUBSETS_Q, code)] == ["number"]  # 15 only: the primes are not stated


async def test_code_that_ignores_the_questions_text_is_rejected_and_right_code_passes(sandbox):
    ignored = "s = 'ACGCGTTACGAACG'\nprint(int(s.find('CG') != -1))"  # 1 whenever CG occurs at all
    right = "s = 'ACGCGTTACGAACG'\nprint(sum(s[i:i + 2] == 'CG' for i in range(len(s) - 1)))"
    (text,) = targets(DNA_Q, right)
    assert text.kind == "text" and text.value == "text 'ACGCGTTACGAACG'"
    found = await sensitivity(DNA_Q, ignored, "1", sandbox)
    assert not found.passed and "ignores the text" in found.detail
    found = await sensitivity(DNA_Q, right, "4", sandbox)
    assert found.passed and [m.outcome for m in found.moves] == ["changed"]


def test_a_word_the_code_spells_twice_or_in_lower_case_is_never_moved():
    """A key or a node's name: renaming every copy (or the only one) changes nothing in right code."""
    question = (
        "In the graph with edges A-B, B-C and C-D, what is the degree of NODE and of the vertex 'alpha'?"
    )
    code = "d = {'NODE': 2, 'alpha': 1}\nprint(d['NODE'], d['alpha'])"
    assert targets(question, code) == []
