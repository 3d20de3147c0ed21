"""The keep rule's independent checks (grounding, well-posedness), one judge of a boxed answer, and the
dropped-condition candidate rejected end to end: our own fixtures, no model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted_openai_server import Answer, ScriptedServer, candidate_json

from loong_env.generators import KeepConfig, RejectReason, Verdict, run_generation
from loong_env.generators.checks import conditions, grounding, quantities, well_posedness
from loong_env.generators.keep import KeepRule
from loong_env.generators.keep_set import SetRecord, Summary, balanced, summarize, wilson_upper
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.routing import VerifierRouter
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import default_root, load_seeds
from loong_env.types import DataPoint, Tolerance

# The question a fresh `make demo` once kept wrong: the code printed C(8,3) and never used the bound 15.
SUBSETS_Q = "How many 3-element subsets of {1, 2, 3, 4, 5, 6, 7, 8} have a sum less than 15?"
SUBSETS_DROPPED = "from math import comb\nprint(comb(8, 3))"
SUBSETS_RIGHT = (
    "from itertools import combinations\nprint(sum(1 for c in combinations(range(1, 9), 3) if sum(c) < 15))"
)


def test_code_that_drops_a_stated_bound_is_ungrounded_and_the_detail_names_it():
    found = grounding(SUBSETS_Q, SUBSETS_DROPPED)
    assert not found.passed and "15" in found.detail and "less than 15" in found.detail


def test_the_same_question_with_the_bound_in_the_code_is_grounded():
    assert grounding(SUBSETS_Q, SUBSETS_RIGHT).passed


def test_a_bound_assigned_to_a_name_nobody_reads_does_not_count():
    dead = "from math import comb\nlimit = 15  # the bound\nprint(comb(8, 3))"
    assert not grounding(SUBSETS_Q, dead).passed


@pytest.mark.parametrize(
    ("question", "code"),
    [
        (
            "What is the sum of all prime numbers less than 50?",
            "from sympy import primerange\nprint(sum(primerange(2, 50)))",
        ),
        (
            "A car travels at 72 km/h for 5 minutes. How far does it go, in metres?",
            "print(72 * 1000 / 3600 * 300)",
        ),
        ("A price of 80 dollars rises by 5%. What is the new price?", "print(80 * 1.05)"),
        (
            "How many integers n with 1 <= n <= 100 are at most 40 and divisible by 7?",
            "print(sum(1 for n in range(1, 41) if n % 7 == 0))",
        ),
    ],
    ids=["range-bound", "units", "percent", "inclusive-bound"],
)
def test_grounded_questions_pass(question, code):
    assert grounding(question, code).passed, grounding(question, code).detail


def test_a_named_condition_without_a_trace_in_the_code_is_ungrounded():
    question = "How many of the integers from 1 to 60 are odd numbers divisible by 3?"
    found = grounding(question, "print(sum(1 for n in range(1, 61) if n % 3 == 0))")
    assert not found.passed and "parity" in found.detail
    assert grounding(question, "print(sum(1 for n in range(1, 61) if n % 3 == 0 and n % 2 == 1))").passed


def test_a_described_quantity_missing_from_the_code_is_undecided_not_rejected():
    question = "One card is drawn from a standard 52-card deck. What is the probability that it is a king?"
    found = grounding(question, "from fractions import Fraction\nprint(Fraction(4, 13 * 4))")
    assert found.passed and found.undecided and "52" in found.detail


def test_scientific_notation_is_one_quantity():
    values = [q.value for q in quantities(r"Light travels at $3 \times 10^8$ m/s for 2 s. How far?")]
    assert values == ["300000000", "2"]


@pytest.mark.parametrize(
    "question",
    [
        "How many ways are there to choose 3 of 8 elements such that the sum of the selected elements is less than 15?",
        "What is the sum of the numbers in the following list?",
        "Give an example of a prime number greater than 100 whose digits sum to 10.",
        "What does the code print when it is run with n = 10?",
    ],
    ids=["unnamed-elements", "external-list", "one-of-many", "refers-to-code"],
)
def test_under_specified_questions_are_ill_posed(question):
    found = well_posedness(question)
    assert not found.passed and found.detail


def test_a_self_contained_question_is_well_posed():
    assert well_posedness(SUBSETS_Q).passed


def test_our_seeds_are_well_posed_and_their_own_programs_grounded():
    """Our seeds are right and well posed: the checks must (almost) never reject them (false rejections)."""
    seeds = list(load_seeds(default_root(), on_error="skip"))
    assert len(seeds) > 300
    assert all(well_posedness(dp.question).passed for dp in seeds)
    ungrounded = [dp.id for dp in seeds if not grounding(dp.question, dp.rationale).passed]
    assert len(ungrounded) <= 0.02 * len(seeds), ungrounded


def test_conditions_lists_each_quantity_with_its_phrase():
    listed = conditions(SUBSETS_Q)
    assert any(line.startswith("15:") and "less than 15" in line for line in listed)


# --- one judge of a boxed answer: the keep rule agrees exactly when the env would reward -------------


@pytest.mark.parametrize(
    ("solve", "answer"),
    [
        (r"The roots are \boxed{1}, \boxed{2} and \boxed{3}.", "{1, 2, 3}"),
        (r"The roots are \boxed{1}, \boxed{2}.", "{1, 2, 3}"),
        (r"First \boxed{4}, but checking again: \boxed{5}.", "5"),
        (r"First \boxed{5}, but checking again: \boxed{4}.", "5"),
        (r"So the set is \boxed{\{3, 2, 1\}}.", "{1, 2, 3}"),
        (r"\boxed{0.3334}", "1/3"),
        (r"no box at all: 5", "5"),
    ],
)
def test_keep_agreement_is_the_envs_reward(solve, answer):
    router = VerifierRouter(domain_config=lambda name: None)
    tolerance = Tolerance(rel=1e-3) if answer == "1/3" else None
    rule = KeepRule(Sandbox([]), None, tolerance=tolerance, router=router)  # the sandbox is never started
    kept = DataPoint(question="q?", final_answer=answer, domain="toy", answer_tolerance=tolerance)

    async def both() -> tuple[str, float]:
        attempt = await rule.read_solve(solve, "stop", rule.answer_key("q?", answer, "toy"))
        result, _ = await router.judge(solve, router.key(kept))  # what the env does for a policy's response
        return attempt.outcome, result.reward

    outcome, reward = asyncio.run(both())
    assert (outcome == "agree") == (reward == 1.0), (outcome, reward)


def test_several_boxes_for_a_set_answer_agree():
    router = VerifierRouter(domain_config=lambda name: None)
    rule = KeepRule(Sandbox([]), None, router=router)
    key = rule.answer_key("q?", "{1, 2, 3}", "toy")
    attempt = asyncio.run(rule.read_solve(r"\boxed{1}, \boxed{2}, \boxed{3}", "stop", key))
    assert attempt.outcome == "agree"  # the last box alone (3) would have disagreed


# --- end to end through the keep rule -----------------------------------------------------------------


@pytest.fixture
def seeds_root(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds" / "toy_math"
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text('name = "toy_math"\ndescription = "Counting."\nrequirements = []\n')
    seed = {"question": "What is the sum of the first 10 positive integers?", "final_answer": "55",
            "rationale": "print(sum(range(1, 11)))", "difficulty": 1}  # fmt: skip
    (folder / "seeds.jsonl").write_text(json.dumps(seed) + "\n")
    return tmp_path / "seeds"


async def _run(
    seeds_root: Path, out: Path, code: str, solve: str, config: KeepConfig | None = None
) -> Verdict:
    verdicts: list[Verdict] = []

    def script(req):
        return Answer(solve) if req.is_solve else Answer(candidate_json(SUBSETS_Q, code))

    with ScriptedServer(script) as server:
        async with (
            Sandbox([], timeout_s=5.0) as sandbox,
            LLMClient(
                base_url=server.base_url, model="scripted", retry=RetryPolicy(max_attempts=1)
            ) as client,
        ):
            await run_generation(
                "toy_math", out=out, n=1, max_attempts=1, client=client, sandbox=sandbox,
                seeds_root=seeds_root, keep_config=config, on_verdict=verdicts.append,
            )  # fmt: skip
    return verdicts[0]


@pytest.mark.timeout(60)
async def test_a_dropped_condition_is_rejected_even_when_the_solve_shares_the_misreading(
    seeds_root, tmp_path
):
    verdict = await _run(seeds_root, tmp_path / "a", SUBSETS_DROPPED, r"C(8,3) = \boxed{56}")
    assert verdict.reason is RejectReason.ungrounded and "15" in verdict.detail
    assert verdict.checks == ["shape", "novelty", "well_posed", "code_ran"]
    # today's rule (no checks) keeps it: the solve shares the writer's misreading
    before = await _run(
        seeds_root,
        tmp_path / "b",
        SUBSETS_DROPPED,
        r"\boxed{56}",
        KeepConfig(grounding=False, well_posedness=False),
    )
    assert before.accepted


@pytest.mark.timeout(60)
async def test_a_kept_item_lists_the_checks_it_passed(seeds_root, tmp_path):
    verdict = await _run(seeds_root, tmp_path / "a", SUBSETS_RIGHT, r"\boxed{34}")
    assert verdict.accepted, (verdict.reason, verdict.detail)
    assert verdict.checks == [
        "shape", "novelty", "well_posed", "code_ran", "grounded", "sensitive", "solve_agreed"
    ]  # fmt: skip
    assert verdict.datapoint is not None and verdict.datapoint.metadata["checks"] == verdict.checks


def test_wilson_upper_bound_and_summary():
    assert wilson_upper(0, 150) == pytest.approx(0.0250, abs=1e-3)
    assert wilson_upper(2, 150) == pytest.approx(0.0474, abs=1e-3)
    assert wilson_upper(0, 12) == pytest.approx(0.2425, abs=1e-3)
    records = [
        SetRecord(key=f"k{i}", id="x", domain="d", kind="k", code="", answer="1", correct=i < 2)
        for i in range(4)
    ]
    from loong_env.generators.keep_set import Decision

    decisions = {"k0": Decision(kept=True, tokens=10), "k1": Decision(kept=False, reason="disagreement"),
                 "k2": Decision(kept=True, tokens=30), "k3": Decision(kept=False, reason="ungrounded")}  # fmt: skip
    s: Summary = summarize("c", records, decisions)
    assert (s.false_keeps, s.wrong, s.kept_right, s.right, s.kept_per_100) == (1, 2, 1, 2, 50.0)
    assert s.tokens_per_kept == 20 and s.rejected == {"disagreement": 1, "ungrounded": 1}


def test_the_balanced_view_holds_as_many_dropped_condition_answers_as_model_written_wrong_ones():
    def record(key: str, kind: str, correct: bool = False) -> SetRecord:
        return SetRecord(key=key, id="x", domain="d", kind=kind, code="", answer="1", correct=correct)

    records = [record(f"d{i}", "dropped_condition") for i in range(10)]
    records += [
        record("w0", "model_written"),
        record("w1", "model_written"),
        record("r", "model_written", True),
    ]
    records += [record("s", "seed_code", True)]
    view = balanced(records, seed=3)
    kinds = [(r.kind, r.correct) for r in view]
    assert kinds.count(("dropped_condition", False)) == 2 and kinds.count(("model_written", False)) == 2
    assert {"w0", "w1", "r", "s"} <= {r.key for r in view}  # every written and right record stays
    assert [r.key for r in view] == [r.key for r in records if r in view]  # the set's order is kept
    assert view == balanced(records, seed=3) and view != balanced(records, seed=4)  # a seeded draw


@pytest.mark.timeout(60)
async def test_the_solver_has_its_own_endpoint_and_model(seeds_root, tmp_path):
    """KeepConfig(solver_base_url, solver_model): the writer's server never sees a solve, the solver's only solves."""
    verdicts: list[Verdict] = []
    with (
        ScriptedServer(lambda req: Answer(candidate_json(SUBSETS_Q, SUBSETS_RIGHT))) as writer_server,
        ScriptedServer(lambda req: Answer(r"\boxed{34}")) as solver_server,
    ):
        config = KeepConfig(solver_base_url=solver_server.base_url, solver_model="other-model")
        async with (
            Sandbox([], timeout_s=5.0) as sandbox,
            LLMClient(
                base_url=writer_server.base_url, model="writer", retry=RetryPolicy(max_attempts=1)
            ) as client,
        ):
            await run_generation(
                "toy_math", out=tmp_path / "out", n=1, max_attempts=1, client=client, sandbox=sandbox,
                seeds_root=seeds_root, keep_config=config, on_verdict=verdicts.append,
            )  # fmt: skip
        assert verdicts[0].accepted, (verdicts[0].reason, verdicts[0].detail)
        assert writer_server.solve_requests() == [] and len(writer_server.requests) == 1
        assert [r.body["model"] for r in solver_server.requests] == ["other-model"]
        assert solver_server.solve_requests() == solver_server.requests


def test_the_set_replay_resumes_from_its_solve_cache_and_applies_the_checks_first(tmp_path):
    """A cached solve is read back (a torn last line is skipped); records the checks reject need no solve."""
    from loong_env.generators.keep_set import SolveCache, replay, standard_configurations
    from loong_env.generators.verdict import SolveAttempt

    seed = DataPoint(question=SUBSETS_Q, final_answer="34", rationale=SUBSETS_RIGHT, domain="toy")
    right = SetRecord(
        key="r", id=seed.id, domain="toy", kind="seed_code", code=SUBSETS_RIGHT, answer="34", correct=True
    )
    dropped = SetRecord(
        key="w",
        id=seed.id,
        domain="toy",
        kind="dropped_condition",
        code=SUBSETS_DROPPED,
        answer="56",
        correct=False,
    )
    path = tmp_path / "solves.jsonl"
    cache = SolveCache(path)
    # the static checks and the solve cache; the perturbation check's replay: test_keep_perturbation.py
    static = KeepConfig(perturbation=False)
    default = standard_configurations(static)[0]
    cache.add("r|default|plain|0|1024|0", SolveAttempt(outcome="agree", boxed="34", tokens=100))
    with path.open("a") as f:
        f.write('{"key": "torn')  # a run killed mid-line
    resumed = SolveCache(path)
    assert list(resumed.solves) == ["r|default|plain|0|1024|0"]
    before = standard_configurations(static)[1]
    decisions = asyncio.run(
        replay([right, dropped], {seed.id: seed}, [default, before], solvers=None, cache=resumed)
    )
    assert decisions[default.name]["r"].kept and decisions[default.name]["w"].reason == "ungrounded"
    assert "w" not in decisions[before.name]  # today's rule needs a solve for it, and none is cached
    assert summarize(default.name, [right, dropped], decisions[default.name]).false_keeps == 0
