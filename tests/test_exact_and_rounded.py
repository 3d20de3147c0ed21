"""Exact answers compare exactly, at any size; a rounded reference quantity accepts what rounds to it.

Property-based (hypothesis, a fixed number of examples so the file stays fast): an exact value equals every
exact rewriting of it and never its neighbours; a tiny value never equals its half or 0; a quantity rounded to
k significant figures accepts the value it was rounded from and rejects one unit off in its last place.
"""

from __future__ import annotations

import asyncio
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from loong_env.equivalence import compare, warm_up
from loong_env.plugins import load_plugin
from loong_env.seeds import load_seeds
from loong_env.seeds.reachability import check_reachability
from loong_env.seeds.validation import CheckStatus, validate_seeds
from loong_env.types import Tolerance

ROUNDED_DOMAIN = Path(__file__).parent / "data" / "loong_rounded" / "rounded_physics"
PROPERTY = settings(
    max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


# --------------------------------------------------------------------------------- exact values, any size


def _rational(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else rf"\frac{{{x.numerator}}}{{{x.denominator}}}"


@st.composite
def exact_values(draw: st.DrawFn) -> tuple[Fraction, list[str]]:
    """A non-zero exact value and several exact spellings of it (the written form first)."""
    form = draw(st.sampled_from(["factorial", "binomial", "power", "fraction", "digits"]))
    if form == "factorial":
        n = draw(st.integers(2, 300))
        x = Fraction(math.factorial(n))
        forms = [f"{n}!", rf"{n} \cdot {n - 1}!", rf"\frac{{{n + 1}!}}{{{n + 1}}}"]
    elif form == "binomial":
        n = draw(st.integers(2, 300))
        k = draw(st.integers(1, n - 1))
        x = Fraction(math.comb(n, k))
        forms = [
            rf"\binom{{{n}}}{{{k}}}",
            rf"\binom{{{n}}}{{{n - k}}}",
            rf"\frac{{{n}!}}{{{k}! \cdot {n - k}!}}",
        ]
    elif form == "power":
        b, e = draw(st.integers(2, 12)), draw(st.integers(2, 400))
        x = Fraction(b) ** e
        forms = [f"{b}^{{{e}}}", rf"{b}^{{{e - 1}}} \cdot {b}", f"{b}**{e}"]
    elif form == "fraction":
        p, q = draw(st.integers(1, 10**40)), draw(st.integers(2, 10**40))
        x = Fraction(p, q)
        forms = [rf"\frac{{{p}}}{{{q}}}", rf"\frac{{{2 * p}}}{{{2 * q}}}", f"{p}/{q}"]
    else:
        x = Fraction(draw(st.integers(1, 10**90)))
        forms = [str(x.numerator), rf"\frac{{{2 * x.numerator}}}{{2}}", rf"{x.numerator} \cdot 1"]
    return x, [*forms, _rational(x)]


@PROPERTY
@given(exact_values(), st.data())
def test_an_exact_value_equals_every_exact_rewriting_of_it(value, data) -> None:
    _, forms = value
    a, b = data.draw(st.permutations(forms))[:2]
    got = compare(a, b)
    assert got.equal, (a, b, got)


@PROPERTY
@given(exact_values(), st.data())
def test_an_exact_value_never_equals_its_neighbours(value, data) -> None:
    x, forms = value
    written = data.draw(st.sampled_from(forms))
    neighbours = [
        (x + 1, f"{written} + 1"),
        (x - 1, f"{written} - 1"),
        (2 * x, rf"2 \cdot {written}" if "/" in written or "+" in written else rf"2 \cdot ({written})"),
        (x / 2, rf"\frac{{{written}}}{{2}}"),
    ]
    for value_, spelled in neighbours:
        other = data.draw(st.sampled_from([spelled, _rational(value_)]))
        got = compare(other, written)
        assert not got.equal, (other, written, got)


@st.composite
def tiny_values(draw: st.DrawFn) -> tuple[str, str, str]:
    """(a tiny non-zero value, another spelling of it, its half)."""
    kind = draw(st.sampled_from(["inverse_factorial", "two_power", "exp", "subnormal"]))
    if kind == "inverse_factorial":
        n = draw(st.integers(25, 300))
        return rf"\frac{{1}}{{{n}!}}", rf"\frac{{{n + 1}}}{{{n + 1}!}}", rf"\frac{{1}}{{2 \cdot {n}!}}"
    if kind == "two_power":
        k = draw(st.integers(170, 1000))
        return f"2^{{-{k}}}", rf"\frac{{1}}{{2^{{{k}}}}}", f"2^{{-{k + 1}}}"
    if kind == "exp":
        k = draw(st.integers(120, 2000))
        return f"e^{{-{k}}}", rf"\frac{{1}}{{e^{{{k}}}}}", rf"\frac{{e^{{-{k}}}}}{{2}}"
    m = draw(st.integers(1, 9))
    k = draw(st.integers(308, 323))
    return f"{m}e-{k}", rf"{m} \times 10^{{-{k}}}", f"{Decimal(m) / 2}e-{k}"


@PROPERTY
@given(tiny_values(), st.booleans())
def test_a_tiny_value_equals_itself_but_never_its_half_or_zero(value, swap) -> None:
    x, same, half = value
    assert compare(same, x).equal, (same, x)
    for other in (half, "0"):
        a, b = (x, other) if swap else (other, x)
        assert not compare(a, b).equal, (a, b)


# ----------------------------------------------------------------------------- rounded quantities


def _at_figures(value: Decimal, k: int) -> tuple[Decimal, Decimal, str]:
    """(value rounded to k significant figures, its last place, the rounding written so it states k figures)."""
    place = Decimal(1).scaleb(value.adjusted() - k + 1)
    rounded = value.quantize(place) if place < 1 else (value / place).quantize(Decimal(1)) * place
    if rounded.adjusted() > value.adjusted():  # 9.5e9 at 1 figure is 1e10: its last place grew too
        place *= 10
        rounded = rounded.quantize(place) if place < 1 else rounded
    if place < 1:
        text = format(rounded, "f")
    elif place == 1 and rounded % 10 != 0:
        text = format(rounded.quantize(Decimal(1)), "f")  # `51`: an integer states its units
    else:
        text = f"{rounded:.{k - 1}e}"  # `1.3e+02`: trailing zeros need an exponent to count
    return rounded, place, text


UNITS = [("atm", "atm", 1), ("K", "K", 1), ("kPa", "Pa", 1000), ("J", "mJ", 1000), ("m/s", "cm/s", 100)]


@st.composite
def measured(draw: st.DrawFn) -> tuple[Decimal, int]:
    """A value printed to 10 significant figures (as code prints it) and a number of figures k < 10."""
    mantissa = draw(st.integers(10**9, 10**10 - 1))
    value = Decimal(mantissa).scaleb(draw(st.integers(-14, 6)))
    return value * draw(st.sampled_from([1, -1])), draw(st.integers(1, 6))


@PROPERTY
@given(measured(), st.sampled_from(UNITS))
def test_a_quantity_rounded_to_k_figures_accepts_its_value_and_rejects_one_unit_off(sample, units) -> None:
    (value, k), (unit, finer, factor) = sample, units
    rounded, place, text = _at_figures(value, k)
    reference = f"{text} {unit}"
    assert compare(f"{value} {unit}", reference).equal, (value, reference)
    assert compare(f"{value * factor} {finer}", reference).equal, (value * factor, finer, reference)
    assert compare(reference, reference).equal
    for off in (rounded - place, rounded + place):
        _, _, off_text = _at_figures(off, k) if off else (0, 0, "0")
        got = compare(f"{off_text} {unit}", reference)
        assert not got.equal, (off_text, reference, got)
    stated = compare(f"{value} {unit}", reference, tolerance=Tolerance(rel=0.0))
    assert stated.equal is (value == rounded)  # a stated tolerance wins over the rounding


@PROPERTY
@given(measured())
def test_bare_numbers_are_rounded_only_where_the_domain_opts_in(sample) -> None:
    value, k = sample
    rounded, place, text = _at_figures(value, k)
    opted = Tolerance(sig_figs=True)
    assert compare(str(value), text, tolerance=opted).equal, (value, text)
    assert compare(str(value), text).equal is (value == rounded)  # exact, as before
    off_text = _at_figures(rounded + place, k)[2]
    assert not compare(off_text, text, tolerance=opted).equal


@pytest.mark.parametrize(
    ("candidate", "reference", "equal"),
    [
        ("50.704 atm", "51 atm", True),
        ("5137 kPa", "51 atm", True),  # converted: 50.70 atm
        ("52 atm", "51 atm", False),
        ("5e1 atm", "51 atm", False),  # coarser than the reference
        ("131.3 K", "1.3e+02 K", True),
        ("126 K", "130 K", True),  # the integer 130 states tens
        ("136 K", "130. K", False),  # a decimal point makes its zero significant
        ("0.02449 kPa", "0.0245 kPa", True),
        ("-101 J", "-1e+02 J", True),
        ("1 atm", "101.3 kPa", False),  # 1 atm states one figure
        ("0 °C", "273 K", False),  # a bare 0 states none
        ("25.2 °C", "298 K", True),
        ("30.4^\\circ", "30^\\circ", False),  # angles are exact
        ("50.7", "51 atm", True),  # a bare number read in the reference's unit
        ("50.7 atm", "51", False),  # a bare reference stays exact
    ],
)
def test_rounded_quantity_shapes(candidate: str, reference: str, equal: bool) -> None:
    got = compare(candidate, reference)
    assert got.equal is equal, got


def test_the_physics_plugin_uses_the_same_rounding_rule() -> None:
    physics = load_plugin("physics_units")
    assert physics.verify_sync(r"\boxed{50.704 atm}", "51 atm").correct
    assert physics.verify_sync(r"\boxed{5137 kPa}", "51 atm").correct
    assert not physics.verify_sync(r"\boxed{52 atm}", "51 atm").correct
    assert not physics.verify_sync(r"\boxed{5e1 atm}", "51 atm").correct
    assert not physics.verify_sync(r"\boxed{50.704 atm}", "51 atm", tolerance=Tolerance(rel=1e-3)).correct


def test_sig_figs_does_not_combine_with_a_stated_bound() -> None:
    with pytest.raises(ValidationError, match="sig_figs"):
        Tolerance(rel=1e-3, sig_figs=True)


# ----------------------------------------------------------------------------------------- labelled ratios


@pytest.mark.parametrize(
    ("candidate", "reference", "equal"),
    [
        ("V_1:V_2 = 11:21", "11:21", True),
        ("11:21", "V_1:V_2 = 11:21", True),
        ("22:42", "V_1:V_2 = 11:21", True),
        (r"\frac{11}{21}", "V_1:V_2=11:21", True),
        ("21:11", "V_1:V_2 = 11:21", False),
        ("A:B = 1", "1", True),
        ("1:1", "A:B = 1", True),
        ("2", "A:B = 1", False),
        (r"S_{MBCN}:S = 7:32", r"\frac{7}{32}", True),
        (r"S_{MBCN}:S = 7:32", "7:31", False),
    ],
)
def test_a_ratio_labelled_by_names_answers_its_value(candidate: str, reference: str, equal: bool) -> None:
    got = compare(candidate, reference)
    assert got.equal is equal, got


# ------------------------------------------------------------------------------- validation and reachability


def test_validate_reproduces_every_rounded_seed_the_rounding_allows() -> None:
    dataset = load_seeds(ROUNDED_DOMAIN)
    report = asyncio.run(validate_seeds(dataset))
    expected = [p.metadata["expect"] for p in dataset]
    assert [c.status.value for c in report.checks] == expected, [
        (c.origin, c.status.value, c.reason) for c in report.checks
    ]
    assert expected.count("passed") == 14 and expected.count("wrong_answer") == 6
    reach = asyncio.run(check_reachability(dataset))
    assert not reach.unreachable(), "\n".join(map(str, reach.unreachable()))


def test_a_domain_opts_bare_numbers_in_and_a_seed_tolerance_still_wins(tmp_path: Path) -> None:
    folder = tmp_path / "rounded_bare"
    folder.mkdir()
    (folder / "domain.toml").write_text(
        'name = "rounded_bare"\nrequirements = []\nlicense = "MIT"\nanswer_tolerance = { sig_figs = true }\n'
    )
    code = "print(2.00 * 0.082057 * 300.0 / 0.9720)"  # 50.652...
    records = [
        {"question": "Pressure in atm?", "final_answer": "51", "rationale": code, "difficulty": 1},
        {"question": "Pressure, to 3 figures?", "final_answer": "50.7", "rationale": code, "difficulty": 1},
        {"question": "Pressure, wrongly rounded?", "final_answer": "52", "rationale": code, "difficulty": 1},
        {
            "question": "Exact?",
            "final_answer": "51",
            "rationale": code,
            "difficulty": 1,
            "answer_tolerance": {},
        },
    ]
    (folder / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    dataset = load_seeds(folder)
    assert dataset.domain_config("rounded_bare").answer_tolerance == Tolerance(sig_figs=True)
    report = asyncio.run(validate_seeds(dataset))
    assert [c.status for c in report.checks] == [
        CheckStatus.passed,
        CheckStatus.passed,
        CheckStatus.wrong_answer,
        CheckStatus.wrong_answer,
    ]
