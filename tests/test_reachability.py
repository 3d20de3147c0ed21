"""Reachability: a seed whose own reference, spelled another correct way, is judged wrong gets flagged.

Spellings are judged through the env's VerifierRouter with the domain's config (tolerance, plug-in), the
same path a policy's answer takes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from loong_env.routing import VerifierRouter
from loong_env.seeds.dataset import load_seeds
from loong_env.seeds.precision import Precision, implied_precision, render, stated_precision
from loong_env.seeds.reachability import check_reachability
from loong_env.seeds.spellings import asked_name, numeric_reference, precision_warning, spellings
from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import SyncVerifier
from loong_env.verifiers.boxed import extract_boxed

pytestmark = pytest.mark.timeout(120)

ENERGY_Q = "A 2.0 H inductor carries 1.197 A. How much energy does it store? Give the answer in J"


def _domain(root: Path, name: str, records: list[dict], toml: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text(f'name = "{name}"\nrequirements = []\nlicense = "MIT"\n{toml}')
    lines = [{"rationale": "print(0)", "difficulty": 1, **r} for r in records]
    (folder / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def _flags(folder: Path, **options):
    report = asyncio.run(check_reachability(load_seeds(folder), **options))
    return report, {(int(f.origin.rsplit(":", 1)[1]), f.kind, f.blame) for f in report.flags}


def test_a_rounded_reference_under_a_tighter_tolerance_is_flagged_as_the_seeds_fault(tmp_path):
    records = [
        {"question": f"{ENERGY_Q}.", "final_answer": "1.433 J"},
        {"question": f"{ENERGY_Q}, with its unit, to 4 significant figures.", "final_answer": "1.433 J"},
    ]
    toml = 'answer_tolerance = { rel = 1e-3 }\nverifier = "physics_units"\n'
    folder = _domain(tmp_path, "units", records, toml=toml)
    report, flags = _flags(folder)
    assert (1, "no_precision", "seed") in flags
    assert (1, "at_precision", "seed") in flags  # 1.43 J (3 significant figures, as rel 1e-3 implies)
    # the plug-in wants a unit the question did not ask for
    assert (1, "without_unit", "comparison") in flags
    assert not {f for f in flags if f[0] == 2}  # stating the precision and the unit makes it reachable
    assert report.seeds_flagged("seed") == {"units": 1} and report.precision_warnings() == {"units": 1}


def test_a_tolerance_tighter_than_the_stated_precision_is_flagged_until_it_covers_half_a_unit(tmp_path):
    question = "A loan payment is computed monthly. What is the payment? Round to the nearest cent."
    records = [
        {"question": question, "final_answer": "43.75"},
        {"question": question, "final_answer": "43.75", "answer_tolerance": {"abs": 0.005}},
    ]
    folder = _domain(tmp_path, "money", records, toml="answer_tolerance = { rel = 1e-4 }\n")
    _, flags = _flags(folder, only="seed")
    assert flags == {(1, "more_digits", "seed")}  # 43.7545 is still 43.75 to the cent, but off by > rel 1e-4


class ExactText(SyncVerifier):
    """A deliberately literal comparison: the boxed text must equal the reference character for character."""

    name = "exact_text"

    def verify_sync(self, response, reference, *, tolerance=None):
        got = extract_boxed(response)
        ok = got == reference
        status = VerificationStatus.correct if ok else VerificationStatus.incorrect
        return VerificationResult(status=status, reward=float(ok), extracted=got, reference=reference)


def test_a_correct_form_the_comparison_rejects_is_flagged_as_the_comparisons_fault(tmp_path):
    records = [
        {"question": "What is the limit of (1 + 1/n)^n as n grows?", "final_answer": "E"},
        {"question": "In TO + GO = OUT with distinct digits, what number is OUT?", "final_answer": "102"},
    ]
    folder = _domain(tmp_path, "consts", records)
    router = VerifierRouter(ExactText(), route=False, domain_config=lambda d: None)
    report, flags = _flags(folder, router=router)
    comparison = "comparison"
    assert flags == {(1, "sympy_latex", comparison), (1, "labelled", comparison), (2, "labelled", comparison)}
    spelled = {f.spelling for f in report.flags}
    assert {"e", "x = E", "x = 102", "OUT = 102"} == spelled
    assert report.seeds_flagged("seed") == {"consts": 0}
    assert report.seeds_flagged("comparison") == {"consts": 2}


@pytest.mark.parametrize(
    ("question", "found"),
    [
        ("Give the answer to 4 significant figures.", Precision(kind="sig", digits=4)),
        ("rounded to two decimal places", Precision(kind="dec", digits=2)),
        ("Round to the nearest cent.", Precision(kind="dec", digits=2)),
        ("to 3 s.f.", Precision(kind="sig", digits=3)),
        ("Give the exact value.", Precision(kind="exact")),
        ("Every couple has exactly 2 children. What is the expected number?", None),
    ],
)
def test_stated_precision(question, found):
    got = stated_precision(question)
    assert (got.kind, got.digits) == (found.kind, found.digits) if found else got is None


def test_implied_precision_and_rendering():
    assert implied_precision(Tolerance(rel=1e-3)).digits == 3
    assert implied_precision(Tolerance(abs=0.01)).digits == 2
    assert implied_precision(Tolerance()) is None
    from decimal import Decimal

    assert render(Decimal("1.433"), Precision(kind="sig", digits=3)) == "1.43"
    assert render(Decimal("12569.61"), Precision(kind="sig", digits=4)) == "12570"
    assert render(Decimal("0.975"), Precision(kind="dec", digits=4)) == "0.9750"


def test_spellings_cover_sympy_forms_units_labels_and_option_letters():
    def kinds(reference, question="", tolerance=None):
        return {(s.kind, s.text) for s in spellings(reference, question, tolerance)}

    assert ("sympy_latex", "\\frac{\\pi}{2}") in kinds("pi/2")
    assert ("sympy_str", "sqrt(3)/2") in kinds("\\frac{\\sqrt{3}}{2}")
    assert ("without_unit", "24") in kinds("24 m/s", "Give the answer in m/s.")
    assert not any(k == "without_unit" for k, _ in kinds("24 m/s", "Give the answer in m/s, with its unit."))
    assert ("letter_case", "b") in kinds("B", "Which is right? (A) 1 (B) 2 (C) 3")
    assert not any(k == "letter_case" for k, _ in kinds("B", "A says B lies. Who is the knave?"))
    assert asked_name("What number is OUT?") == "OUT"
    assert numeric_reference("2B") is None and numeric_reference("$1,234.50").number == "1,234.50"


def test_sympy_spellings_never_evaluate_code_from_a_seed_file():
    assert [s.kind for s in spellings("__import__('os').getcwd()", "", None)] == ["as_written", "labelled"]


def test_our_library_states_the_precision_its_tolerances_need():
    """Every tolerance-compared or decimal answer states its precision; no tolerance is tighter than it."""
    report = asyncio.run(check_reachability(load_seeds(), only="seed"))
    assert not report.flags, "\n".join(str(f) for f in report.flags)


def test_precision_warning_is_quiet_for_exact_and_stated_answers():
    assert precision_warning("1.75", "What is the shadow price? Give the exact value.", None) is None
    assert precision_warning("0.2513 s", "Period? Give the answer in s.", None) is not None
    assert precision_warning("11", "How many years?", Tolerance()) is None  # `{}`: an explicitly exact answer
