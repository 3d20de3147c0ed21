"""`loong seeds validate`: every seed's code, run in the sandbox, must print its own answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loong_env.cli import main
from loong_env.seeds import load_seeds
from loong_env.validation import CheckStatus, validate_seeds

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
    code = main(["seeds", "validate", str(folder)])
    out = capsys.readouterr().out
    assert code == 1
    assert "seeds.jsonl:2" in out and "printed '6', expected '7'" in out
    assert "seeds.jsonl:3" in out and "ZeroDivisionError" in out
    assert "seeds.jsonl:1" not in out and "seeds.jsonl:4" not in out  # 0.5 is equivalent to 1/2
    assert "2 of 4 seeds do not reproduce" in out


def test_allow_failures_reports_but_exits_zero(tmp_path: Path, capsys) -> None:
    assert main(["seeds", "validate", "--allow-failures", str(_domain(tmp_path))]) == 0
    assert "50.0%" in capsys.readouterr().out


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


def test_checks_are_judged_per_seed(tmp_path: Path) -> None:
    import asyncio

    report = asyncio.run(validate_seeds(load_seeds(_domain(tmp_path))))
    assert [c.status for c in report.checks] == [CheckStatus.passed, CheckStatus.failed, CheckStatus.error,
                                                 CheckStatus.passed]  # fmt: skip
    assert report.domains[0].passed == 2 and report.domains[0].failed == 1 and report.domains[0].errors == 1


def test_prepare_creates_each_requirement_set_once(tmp_path: Path, capsys) -> None:
    assert main(["seeds", "prepare", str(_domain(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.count("ready: [standard library only] -> ") == 1
