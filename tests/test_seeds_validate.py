"""`loong seeds validate`: every seed's code, run in the sandbox, must print its own answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loong_env.cli import main
from loong_env.seeds.dataset import load_seeds
from loong_env.seeds.validation import CheckStatus, validate_seeds

LOONG_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "loong_sample"


def _domain(root: Path) -> Path:
    folder = root / "tiny"
    folder.mkdir()
    (folder / "domain.toml").write_text('name = "tiny"\nrequirements = []\nlicense = "MIT"\n')
    records = [
        {"question": "2+3?", "final_answer": "5", "rationale": "print(2 + 3)", "difficulty": 1},
        {"question": "2*3?", "final_answer": "7", "rationale": "print(2 * 3)", "difficulty": 1},
        {"question": "1/0?", "final_answer": "1", "rationale": "print(1 / 0)", "difficulty": 1},
        {"question": "half?", "final_answer": "1/2", "rationale": "print(0.5)", "difficulty": 1},
    ]
    (folder / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_failures_are_listed_with_file_line_and_reason_and_exit_nonzero(tmp_path: Path, capsys) -> None:
    folder = _domain(tmp_path)
    code = main(["seeds", "validate", "--no-reachability", str(folder)])
    out = capsys.readouterr().out
    assert code == 1
    assert "seeds.jsonl:2" in out and "printed '6', expected '7'" in out and "wrong_answer" in out
    assert "seeds.jsonl:3" in out and "ZeroDivisionError" in out
    assert "seeds.jsonl:1" not in out and "seeds.jsonl:4" not in out  # 0.5 is equivalent to 1/2
    assert "2 of 4 seeds do not reproduce" in out


def test_allow_failures_reports_but_exits_zero(tmp_path: Path, capsys) -> None:
    assert main(["seeds", "validate", "--no-reachability", "--allow-failures", str(_domain(tmp_path))]) == 0
    assert "50%" in capsys.readouterr().out


@pytest.mark.slow  # runs all ~400 seed programs in the jail (~55 CPU-s): `make test` and CI, not `make test-fast`
def test_every_seed_of_our_library_reproduces_its_answer() -> None:
    import asyncio

    report = asyncio.run(validate_seeds(load_seeds()))
    failures = [f"{c.origin}: {c.reason}" for c in report.failures]
    assert not failures, "\n".join(failures)
    assert {s.domain for s in report.domains} == set(load_seeds().domains)


@pytest.mark.skipif(not LOONG_SAMPLE.is_dir(), reason="../shared/loong_sample is not present")
def test_loong_format_folder_reports_its_reproduction_rate(capsys) -> None:
    folder = LOONG_SAMPLE / "graph_discrete_math"
    code = main(["seeds", "validate", "--limit", "12", "--allow-failures", str(folder)])
    out = capsys.readouterr().out
    assert code == 0
    assert "graph_discrete_math" in out and "of 12 seeds reproduce" in out
    assert "reachability" in out and "kept in metadata as found" in out


def test_checks_are_judged_per_seed(tmp_path: Path) -> None:
    import asyncio

    report = asyncio.run(validate_seeds(load_seeds(_domain(tmp_path))))
    statuses = [c.status.value for c in report.checks]
    assert statuses == ["passed", "wrong_answer", "code_error", "passed"]
    summary = report.domains[0]
    assert (summary.passed, summary.wrong_answer, summary.code_error, summary.total) == (2, 1, 1, 4)


def test_prepare_creates_each_requirement_set_once(tmp_path: Path, capsys) -> None:
    assert main(["seeds", "prepare", str(_domain(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.count("ready: [standard library only] -> ") == 1


# -- environments that cannot be installed, answer-only records, relaxed pins (all offline) -----------------

UNINSTALLABLE = "no-such-package-xyz==1.0"


def _loong_folder(root: Path, records: list[dict]) -> Path:
    folder = root / "upstream"
    folder.mkdir()
    (folder / "seed_dataset.json").write_text(json.dumps(records, indent=1))
    return folder


def _record(n: int, requirements: list[str], code: str | None = None) -> dict:
    return {
        "question": f"What is {n} + {n}?",
        "final_answer": str(2 * n),
        "rationale": f"print({n} + {n})" if code is None else code,
        "metadata": {"license": "MIT", "required_dependencies": requirements},
    }


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network for uv and a private environment cache: an uninstallable requirement must fail fast."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("LOONG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.timeout(180)
def test_an_uninstallable_requirement_marks_its_seeds_env_error_and_the_others_still_run(offline, capsys):
    import asyncio

    # mpmath is in uv's cache (sympy needs it), so it installs offline
    other = _record(2, ["mpmath==1.3.0"], code="import mpmath\nprint(int(mpmath.mpf(2) + 2))")
    records = [_record(1, [UNINSTALLABLE]), other, _record(3, [UNINSTALLABLE]), _record(4, [], code="")]
    folder = _loong_folder(offline, records)
    report = asyncio.run(validate_seeds(load_seeds(folder)))
    statuses = [c.status.value for c in report.checks]
    assert statuses == ["env_error", "passed", "env_error", "no_code"]
    failed = [e for e in report.environments if e.error is not None]
    assert len(failed) == 1 and failed[0].seeds == 2  # resolved once for both records
    assert "no-such-package-xyz" in failed[0].error and "\n" not in failed[0].error  # uv's one-line reason
    assert report.checks[0].reason == failed[0].error
    summary = report.domains[0]
    assert (summary.passed, summary.env_error, summary.no_code, summary.runnable) == (1, 2, 1, 3)

    assert main(["seeds", "validate", "--no-reachability", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "env_error [no-such-package-xyz==1.0] (2 seeds, not run)" in out and "Traceback" not in out


def test_answer_only_records_are_reported_as_no_code_not_as_failures(tmp_path: Path) -> None:
    import asyncio

    folder = _loong_folder(tmp_path, [_record(1, []), {**_record(2, []), "rationale": None}])
    report = asyncio.run(validate_seeds(load_seeds(folder)))
    assert [c.status for c in report.checks] == [CheckStatus.passed, CheckStatus.no_code]
    assert report.ok and report.domains[0].no_code == 1


@pytest.mark.timeout(180)
def test_relax_pins_retries_an_impossible_pin_with_the_newest_compatible_version(offline) -> None:
    import asyncio

    code = "import sympy\nprint(sympy.Integer(5) + 5)"
    folder = _loong_folder(offline, [{**_record(5, ["sympy==0.0.1"], code=code)}])
    strict = asyncio.run(validate_seeds(load_seeds(folder)))
    assert strict.checks[0].status is CheckStatus.env_error
    relaxed = asyncio.run(validate_seeds(load_seeds(folder), relax=True))
    assert relaxed.checks[0].status is CheckStatus.passed and relaxed.checks[0].relaxed
    assert relaxed.environments[0].installed == ["sympy"] and relaxed.domains[0].relaxed == 1


def test_a_seed_that_logs_before_its_answer_passes_on_its_last_line(tmp_path: Path) -> None:
    import asyncio

    code = "for i in range(3):\n    print('step', i)\nprint(12)"
    folder = _loong_folder(tmp_path, [_record(6, [], code=code)])
    check = asyncio.run(validate_seeds(load_seeds(folder))).checks[0]
    assert check.status is CheckStatus.passed and check.rule == "last_line" and check.output == "12"


def test_a_requirement_uv_cannot_even_parse_is_an_environment_error_not_a_crash() -> None:
    from loong_env.seeds.validation import resolve_environment

    outcome = resolve_environment(["numpy>>=1"])
    assert outcome.installed is None and "invalid requirement 'numpy>>=1'" in outcome.error


def test_the_installers_reason_is_one_line() -> None:
    from loong_env.seeds.validation import installer_reason

    old_style = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because numpy==1.16.0 has no wheels with a matching Python ABI tag and you require"
        " numpy==1.16.0, we can conclude that your requirements are unsatisfiable.\n"
    )
    new_style = "error: Failed to build `pkg==1.0`\n  cause: Build backend failed to build wheel\n"
    expected = "No solution found when resolving dependencies: Because numpy"
    assert installer_reason(old_style).startswith(expected)
    assert installer_reason(new_style) == "Failed to build `pkg==1.0`: Build backend failed to build wheel"
