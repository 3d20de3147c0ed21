"""Promises of loong_env.equivalence: right on our labelled set (zero false positives), bounded, thread-safe."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from loong_env.equivalence import Comparison, compare, warm_up
from loong_env.equivalence.normalize import normalize
from loong_env.equivalence.pool import CAN_FORK, get_pool
from loong_env.types import Tolerance, VerificationStatus
from loong_env.verifiers import BoxedAnswerVerifier

DATA = Path(__file__).parent / "data"
CASES = [json.loads(line) for line in (DATA / "equivalence_cases.jsonl").open()]
PAIRS = [c for c in CASES if "candidate" in c]
# Shapes real model outputs take (issues 17 and 19), one category per cause; written by us, not copied.
REAL_SHAPES = [json.loads(line) for line in (DATA / "equivalence_realshapes.jsonl").open()]
ACCURACY_FLOOR = 0.97  # measured 1.00 on this set; the floor leaves room for a slow machine's timeouts


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


@pytest.mark.timeout(240)
def test_labelled_set_has_zero_false_positives_and_high_accuracy() -> None:
    misses, false_positives = [], []
    for case in PAIRS:
        got = compare(case["candidate"], case["reference"], tolerance=Tolerance.coerce(case["tolerance"]))
        if got.equal != case["expected"]:
            misses.append((case["category"], case["candidate"], case["reference"], got.reason, got.error))
            if got.equal:
                false_positives.append(misses[-1])
    for miss in misses:
        print("MISS", miss)
    assert not false_positives, false_positives
    assert 1 - len(misses) / len(PAIRS) >= ACCURACY_FLOOR, misses


def test_set_covers_every_category_with_positives_and_negatives() -> None:
    cats = {c["category"] for c in CASES}
    assert len(CASES) >= 300
    for cat in cats:
        expected = {c["expected"] for c in CASES if c["category"] == cat}
        assert expected == {True, False}, cat


@pytest.mark.timeout(240)
def test_real_output_shapes_are_judged_right_with_zero_false_positives() -> None:
    verifier = BoxedAnswerVerifier()
    wrong, undecided = [], []
    for case in REAL_SHAPES:
        tol = Tolerance.coerce(case["tolerance"])
        if "candidate" in case:
            got = compare(case["candidate"], case["reference"], tolerance=tol)
            equal, error = got.equal, got.error
        else:
            res = verifier.verify_sync(case["response"], case["reference"], tolerance=tol)
            equal, error = res.correct, res.reason if res.status is VerificationStatus.error else None
        if equal != case["expected"]:
            miss = (case["category"], case.get("candidate", case.get("response")), case["reference"], error)
            (undecided if error and not equal else wrong).append(miss)
    for miss in wrong + undecided:
        print("MISS", miss)
    assert not wrong, wrong  # only a time-out on a loaded machine may miss, and never as a false positive
    assert 1 - len(undecided) / len(REAL_SHAPES) >= ACCURACY_FLOOR, undecided


def test_real_output_shapes_cover_every_cause_with_positives_and_negatives() -> None:
    causes = {"clock_times", "undefined", "labels", "word_lists", "double_escape", "multi_box", "number_formats",
              "big_operators", "reordered", "function_conditions", "scalar_matrix", "constants", "choice_letters",
              "log_base"}
    assert {c["category"] for c in REAL_SHAPES} == causes
    for cause in causes:
        rows = [c["expected"] for c in REAL_SHAPES if c["category"] == cause]
        assert rows.count(True) >= 3 and rows.count(False) >= 3, cause


@pytest.mark.parametrize(("candidate", "reference"), [("2:30", "1:15"), ("12:00", "1:00"), ("10:30", "1/3")])
def test_a_clock_time_is_never_read_as_a_ratio(candidate: str, reference: str) -> None:
    got = compare(candidate, reference)
    assert not got.equal and "clock" in got.reason


@pytest.mark.timeout(60)
@pytest.mark.parametrize("answer", ["1/0", r"\frac{2}{1-1}", r"\infty - \infty", "zoo", "nan"])
def test_an_undefined_value_equals_nothing_not_even_itself_and_says_why(answer: str) -> None:
    got = compare(answer, answer)
    assert not got.equal and "undefined" in got.reason, got


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\\frac{1}{2}", r"\frac{1}{2}"),
        (r"\\left(1, \\sqrt{2}\\right)", r"(1, \sqrt{2})"),
        (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
        (r"1 & 2 \\ 3 & 4", r"1 & 2 \\ 3 & 4"),
    ],
)
def test_double_escaping_is_undone_but_a_row_break_is_kept(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("candidate", "reference", "equal"),
    [
        ("5 m", "5 cm", False),
        ("500 cm", "5 m", True),
        ("{'a': '1'}", "{'a': 1}", False),
        ("1.23456788", "1.23456789", False),
        (r"1.6 \times 10^{-19}", "1.6e-19", True),
        ("1\u2009000", "1000", True),
        (r"x \le 2", r"(-\infty, 2]", True),
        (r"x \le 2", r"(-\infty, 2)", False),
        ("[1, 2, 3]", "[3, 2, 1]", False),
    ],
)
def test_known_math_verify_failures_are_judged_right(candidate: str, reference: str, equal: bool) -> None:
    got = compare(candidate, reference)
    assert got.error is None
    assert got.equal is equal, got.reason


def test_tolerance_is_used_only_when_given() -> None:
    assert not compare("3.14", r"\pi").equal
    assert compare("3.14", r"\pi", tolerance=Tolerance(rel=1e-3)).equal
    assert not compare("3.15", r"\pi", tolerance=Tolerance(rel=1e-3)).equal


@pytest.mark.timeout(120)
def test_compare_from_several_threads_at_once() -> None:
    jobs = [(r"\frac{x^2-1}{x-1}", "x+1", True), (r"\sqrt{8}", r"2\sqrt{3}", False), ("1,000", "1000", True),
            (r"x < 3", r"(-\infty, 3)", True)] * 3
    results: list[tuple[bool, bool]] = [(False, False)] * len(jobs)

    def run(i: int) -> None:
        a, b, want = jobs[i]
        results[i] = (compare(a, b).equal, want)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got == want for got, want in results), results


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "answer",
    [r"10^{10^{10}}", "1000000!", "{" * 10_000 + "1" + "}" * 10_000, "1" * 1_000_000],
    ids=["power-tower", "factorial", "nesting-10k", "1MB"],
)
def test_pathological_input_is_an_error_not_a_hang(answer: str) -> None:
    got = compare(answer, "5")
    assert isinstance(got, Comparison)
    assert got.error is not None and not got.equal


@pytest.mark.timeout(60)
def test_sympy_that_runs_away_is_killed_and_the_engine_still_works() -> None:
    assert compare(r"2^{3^{4^{5}}}", "7").error is not None  # passes the cheap guards; the worker is killed
    assert compare(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}").equal


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.timeout(60)
@pytest.mark.skipif(not (CAN_FORK and Path("/proc/self/stat").exists()), reason="needs fork and /proc")
def test_replacement_workers_are_forks_of_the_warm_zygote() -> None:
    pool = get_pool()
    assert compare(r"2^{3^{4^{5}}}", "7").error is not None  # kills one worker
    assert compare(r"(x+1)^2", "x^2+2x+1").equal
    stats = pool.stats()
    assert stats.zygote_pid is not None and Path(f"/proc/{stats.zygote_pid}").exists()
    assert len(stats.worker_pids) == pool.size
    assert all(_ppid(pid) == stats.zygote_pid for pid in stats.worker_pids)


