"""The seed loader's promises: our format, Loong's format, and errors that name file, line and field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from loong_env.seeds.dataset import SeedDataset, SeedFormatError, default_root, load_seeds
from loong_env.types import DataPoint, Tolerance

LOONG_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "loong_sample"
needs_sample = pytest.mark.skipif(not LOONG_SAMPLE.is_dir(), reason="../shared/loong_sample is not present")

GOOD = {"question": "What is 2 + 3?", "final_answer": "5", "rationale": "print(2 + 3)", "difficulty": 1}


def make_domain(root: Path, name: str, records: list, toml: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if toml is None:
        toml = f'name = "{name}"\ndescription = "test"\nrequirements = []\nlicense = "MIT"\n'
    (folder / "domain.toml").write_text(toml)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (folder / "seeds.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_our_format_loads_with_domain_defaults(tmp_path: Path) -> None:
    other = {**GOOD, "question": "What is 3 + 4?", "final_answer": "7", "rationale": "print(3 + 4)"}
    other["answer_tolerance"] = {"abs": 0.5}
    toml = 'name = "arith"\nrequirements = ["sympy==1.14.0"]\nlicense = "CC0-1.0"\n'
    make_domain(tmp_path, "arith", [GOOD, other], toml=toml + "answer_tolerance = { rel = 1e-6 }\n")
    ds = load_seeds("arith", root=tmp_path)
    assert len(ds) == 2 and ds.domains == ["arith"]
    first, second = ds
    assert first.license == "CC0-1.0" and first.required_dependencies == ["sympy==1.14.0"]
    assert first.answer_tolerance == Tolerance(rel=1e-6)  # the domain default
    assert second.answer_tolerance == Tolerance(abs=0.5)  # the record overrides it
    assert first.metadata["origin"].endswith("seeds.jsonl:1")
    assert ds.domain_config("arith").requirements == ["sympy==1.14.0"]


def test_every_bad_record_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    make_domain(tmp_path, "broken", [
        GOOD,
        {**GOOD, "difficulty": 9},                 # line 2: out of range
        "{not json",                               # line 3: syntax
        {**GOOD, "final_answer": ""},              # line 4: empty answer
        {k: v for k, v in GOOD.items() if k != "rationale"},  # line 5: missing rationale
        {**GOOD, "answr": "5"},                    # line 6: typo'd field
        ["a", "list"],                             # line 7: not an object
    ])  # fmt: skip
    with pytest.raises(SeedFormatError) as info:
        load_seeds(tmp_path / "broken")
    found = {(i.line, i.field) for i in info.value.issues}
    expected = {(2, "difficulty"), (3, None), (4, "final_answer"), (5, "rationale"), (6, "answr"), (7, None)}
    assert found == expected
    text = str(info.value)
    assert "broken/seeds.jsonl:2: field 'difficulty'" in text
    assert "6 problem(s)" in text


def test_skip_mode_keeps_usable_records_and_lists_the_rest(tmp_path: Path) -> None:
    make_domain(tmp_path, "mixed", [GOOD, {**GOOD, "difficulty": "hard"}])
    ds = load_seeds(tmp_path / "mixed", on_error="skip")
    assert len(ds) == 1
    assert [(i.line, i.field) for i in ds.issues] == [(2, "difficulty")]


def test_bad_domain_toml_is_named(tmp_path: Path) -> None:
    make_domain(tmp_path, "cfg", [GOOD], toml='name = "other"\nrequirements = "sympy"\n')
    with pytest.raises(SeedFormatError) as info:
        load_seeds(tmp_path / "cfg")
    fields = {(Path(i.file).name, i.field) for i in info.value.issues}
    assert ("domain.toml", "requirements") in fields


def test_unknown_domain_lists_known_ones(tmp_path: Path) -> None:
    make_domain(tmp_path, "arith", [GOOD])
    with pytest.raises(FileNotFoundError, match="known: arith"):
        load_seeds("nope", root=tmp_path)


def test_loong_format_difficulty_and_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    records = [
        {"question": "Q1?", "final_answer": "1", "rationale": "print(1)",
         "metadata": {"difficulty": "Level 4", "license": "MIT", "contributor": "A. B.",
                      "subdomains": "Algebra", "required_dependencies": ["sympy==1.13.3"]}},
        {"question": "Q2?", "final_answer": 2, "rationale": "print(2)", "metadata": {"difficulty": 3}},
        {"question": "Q3?", "final_answer": "3", "rationale": "print(3)",
         "metadata": {"difficulty": "very hard"}},
        {"question": "", "final_answer": "4", "rationale": "print(4)", "metadata": {}},
    ]  # fmt: skip
    (folder / "seed_dataset.json").write_text(json.dumps(records, indent=1))
    with pytest.raises(SeedFormatError) as info:
        load_seeds(folder)
    assert {(i.record, i.field) for i in info.value.issues} == {(3, "question")}  # only the unusable record
    assert all(i.line is not None and i.line > 1 for i in info.value.issues)
    ds = load_seeds(folder, on_error="skip")
    assert [p.difficulty for p in ds] == [4, 3, 5]
    assert ds[0].contributor == ["A. B."] and ds[0].metadata["subdomains"] == "Algebra"
    assert ds[1].final_answer == "2"
    assert ds[2].metadata["as_found"] == {"difficulty": "very hard"}
    assert ds.domain_config("up").format == "loong"


@needs_sample
@pytest.mark.parametrize("domain,count", [("advanced_math", 1611), ("graph_discrete_math", 178)])
def test_reads_every_record_of_the_public_loong_sample(domain: str, count: int) -> None:
    ds = load_seeds(LOONG_SAMPLE / domain, report=True)
    assert len(ds) == count and ds.load_report.records == count
    assert all(p.rationale and p.final_answer for p in ds)
    assert ds.domain_config(domain).requirements  # taken from the records' required_dependencies
    if domain == "advanced_math":
        assert Counter(p.difficulty for p in ds) == Counter({5: 866, 4: 745})


def test_ids_are_stable_and_ignore_whitespace() -> None:
    a = DataPoint(question="What is  2+2?", final_answer="4", domain="x")
    b = DataPoint(question="what is 2+2? ", final_answer="4", domain="y", difficulty=2)
    assert a.id == b.id and len(a.id) == 16
    assert a.id != DataPoint(question="What is 2+2?", final_answer="5", domain="x").id


def test_sampling_is_seeded_and_not_a_slice(tmp_path: Path) -> None:
    records = [{**GOOD, "question": f"What is {i} + 1?", "final_answer": str(i + 1)} for i in range(50)]
    ds = load_seeds(make_domain(tmp_path, "many", records))
    a, b = ds.sample(8, seed=7), ds.sample(8, seed=7)
    assert [p.id for p in a] == [p.id for p in b]
    assert len({p.id for p in a}) == 8
    assert [p.id for p in a] != [p.id for p in ds[:8]]
    assert [p.id for p in ds.sample(8, seed=8)] != [p.id for p in a]
    assert len(ds.sample(120, seed=1)) == 120  # more than there are: with replacement


def test_filter_by_domain_and_difficulty(tmp_path: Path) -> None:
    make_domain(tmp_path, "one", [GOOD, {**GOOD, "question": "Hard?", "difficulty": 5}])
    make_domain(tmp_path, "two", [{**GOOD, "question": "Other?"}])
    ds = load_seeds(root=tmp_path)
    assert ds.domains == ["one", "two"]
    assert len(ds.filter(domain="one")) == 2 and len(ds.filter(difficulty=5)) == 1
    assert len(ds.filter(domain=["one", "two"], difficulty=[1])) == 2
    with pytest.raises(KeyError, match="unknown domain .three. .known: one, two"):
        ds.filter(domain="three")


def test_hf_round_trip_keeps_everything(tmp_path: Path) -> None:
    make_domain(tmp_path, "rt", [{**GOOD, "tags": ["add"], "answer_tolerance": {"rel": 0.01}}])
    ds = load_seeds(tmp_path / "rt")
    hf = ds.to_hf()
    assert hf.num_rows == 1 and "question" in hf.column_names
    back = SeedDataset.from_hf(hf)
    assert back[0] == ds[0] and back[0].id == ds[0].id


def test_our_seed_library_meets_the_bar() -> None:
    """At least 8 domains of at least 30 seeds each, spread over difficulty 1-5, MIT or CC0."""
    ds = load_seeds(root=default_root())
    assert len(ds.domains) >= 8, ds.domains
    for domain in ds.domains:
        part = ds.filter(domain=domain)
        assert len(part) >= 30, (domain, len(part))
        assert {p.difficulty for p in part} == {1, 2, 3, 4, 5}, domain
        assert all(p.license in {"MIT", "CC0-1.0"} for p in part), domain
        assert all(p.rationale.strip() for p in part), domain
