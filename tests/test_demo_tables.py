"""The demo's tables fit the width the demo sets (120 columns): every header whole, each kept item's checks."""

from __future__ import annotations

import io

from rich.console import Console

from loong_env.cli.demo import env_table, kept_table
from loong_env.generators.verdict import RejectReason, Verdict
from loong_env.types import DataPoint, Observation, StepResult, VerificationResult, VerificationStatus

WIDTH = 120
LONG_Q = (
    "A fair six-sided die is rolled 6 times. What is the expected number of distinct faces that appear, "
    "given as an exact fraction in lowest terms?"
)


def render(table) -> list[str]:
    console = Console(width=WIDTH, file=io.StringIO(), record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def _step(i: int) -> StepResult:
    dp = DataPoint(question=LONG_Q, final_answer="31031/7776", domain="probability_statistics", difficulty=2)
    ver = VerificationResult(
        status=VerificationStatus.incorrect, reward=0.0, extracted="4.0123456789", reference=dp.final_answer
    )
    obs = Observation(index=i, question=dp.question, domain=dp.domain, datapoint_id=dp.id, difficulty=2)
    return StepResult(observation=obs, datapoint=dp, verification=ver, reward=0.0, rewards={"correctness": 0.0})


def test_the_env_table_fits_120_columns_with_every_header_whole():
    lines = render(env_table([_step(i) for i in range(3)]))
    assert max(len(line) for line in lines) <= WIDTH
    header = next(line for line in lines if "question" in line)
    for name in ("#", "domain", "d", "question", "answer", "reference", "verdict", "reward"):
        assert f" {name} " in header, (name, header)
    text = "\n".join(lines)
    assert "probability_st" in text and "incorrect" in text and "0.00" in text
    assert "faces that appear" in text  # the question folds instead of being cut to a few characters


def test_each_kept_item_shows_the_checks_it_passed():
    checks = ["shape", "novelty", "well_posed", "code_ran", "grounded", "sensitive", "solve_agreed"]
    kept = Verdict(
        attempt=3, method="few-shot", accepted=True, question=LONG_Q, answer="31031/7776", checks=checks
    )
    lines = render(kept_table([kept]))
    assert max(len(line) for line in lines) <= WIDTH
    text = "\n".join(lines)
    assert "shape novel posed ran grounded sensitive solve agreed" in " ".join(text.split())


def test_with_nothing_kept_the_closest_candidate_and_its_stop_are_shown():
    early = Verdict(
        attempt=0, method="few-shot", accepted=False, reason=RejectReason.too_short, detail="short"
    )
    late = Verdict(
        attempt=1,
        method="few-shot",
        accepted=False,
        question=LONG_Q,
        answer="6",
        reason=RejectReason.disagreement,
        detail="0/1 solves agreed; solver boxed ['4']",
        checks=["shape", "novelty", "well_posed", "code_ran", "grounded"],
    )
    lines = render(kept_table([late, early]))
    assert max(len(line) for line in lines) <= WIDTH
    text = " ".join("\n".join(lines).split())
    assert "#1" in text and "disagreement: 0/1 solves agreed" in text and "grounded" in text
