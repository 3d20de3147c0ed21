"""Upstream Loong files in every shape seen in the wild load; only unusable records are rejected.

Fixtures: tests/data/loong_shapes/ (records written for these tests, one shape per record).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loong_env.seeds.dataset import SeedFormatError, load_seeds
from loong_env.seeds.loong_format import parse_difficulty
from loong_env.types import Tolerance

SHAPES = Path(__file__).parent / "data" / "loong_shapes"


@pytest.fixture(scope="module")
def ds():
    return load_seeds(SHAPES / "varied", on_error="skip", report=True)


def _point(ds, question_number: int):
    return next(p for p in ds if f"holds {question_number} red" in p.question)


def test_only_records_without_question_or_answer_are_rejected_with_file_record_and_field(ds):
    rejected = {(i.record, i.field) for i in ds.issues}
    assert rejected == {(16, "question"), (17, "final_answer"), (18, "question")}
    assert all(i.file.endswith("varied/seed_dataset.json") and i.line for i in ds.issues)
    assert len(ds) == 17
    with pytest.raises(SeedFormatError, match=r"\(record 16\): field 'question'"):
        load_seeds(SHAPES / "varied")


def test_lists_where_one_value_is_expected_are_unwrapped(ds):
    assert _point(ds, 1).source == "https://example.org/a, https://example.org/b"
    assert _point(ds, 2).date_created == "2025-01-31"


def test_numbers_given_as_strings_become_tolerances(ds):
    assert _point(ds, 3).answer_tolerance == Tolerance(rel=0.1)
    assert _point(ds, 4).answer_tolerance == Tolerance(abs=0.01)


@pytest.mark.parametrize(
    ("number", "level", "kept_original"),
    [(5, 5, "Competition"), (6, 4, "Hard"), (7, 5, None), (8, 3, None), (9, None, None),
     (10, None, "tricky")],
    ids=["competition", "hard", "level-5", "3-of-5", "missing", "unreadable"],
)
def test_free_text_difficulty_maps_to_a_level_or_none_keeping_the_original(ds, number, level, kept_original):
    point = _point(ds, number)
    assert point.difficulty == level
    assert point.metadata.get("as_found", {}).get("difficulty") == kept_original


def test_answer_only_records_load_with_empty_rationale(ds):
    assert _point(ds, 11).rationale == ""
    assert next(p for p in ds if "holds 12 red" in p.question).rationale == ""


def test_null_or_odd_metadata_is_coerced_or_kept_as_found(ds):
    assert _point(ds, 14).metadata.keys() == {"origin"}  # metadata: null
    odd = _point(ds, 15)
    assert odd.license == "5" and odd.tags == ["counting", "addition"] and odd.contributor == []
    assert odd.required_dependencies == ["sympy==1.14.0"] and odd.date_created == "20250131"
    assert odd.answer_tolerance is None and odd.difficulty is None
    as_found = {"contributor": {"name": "X"}, "answer_tolerance": "loose", "difficulty": True}
    assert odd.metadata["as_found"] == as_found
    assert odd.metadata["subject"] == ["arithmetic"]  # a key the schema does not know stays as found


def test_answers_given_as_numbers_or_literals_become_text(ds):
    assert _point(ds, 16).final_answer == "33"
    assert _point(ds, 17).final_answer == "[17, 18]"


def test_unexpected_top_level_keys_are_kept_in_metadata(ds):
    point = _point(ds, 21)
    assert point.metadata["id"] == "up-21" and point.metadata["notes"] == {"reviewed": False}


def test_the_report_lists_every_coercion_located(ds):
    report = ds.load_report
    assert report is not None and report.records == 20
    kinds = {(field, rule) for field, rule, _ in report.counts()}
    assert ("source", "list -> joined text") in kinds
    assert ("date_created", "one-element list -> value") in kinds
    assert ("answer_tolerance", "str -> tolerance") in kinds
    assert ("difficulty", "difficulty word -> level") in kinds
    assert ("final_answer", "int -> text") in kinds
    located = next(c for c in report.coercions if c.field == "source")
    assert located.record == 0 and located.line == 2 and "example.org/a" in located.found
    assert report.kept_in_metadata["subject"] == 1


def test_a_record_that_is_not_json_is_reported_and_the_records_after_it_still_load():
    ds = load_seeds(SHAPES / "broken_json", on_error="skip")
    assert [p.final_answer for p in ds] == ["61", "63"]
    [issue] = ds.issues
    assert issue.record == 1 and issue.line == 16 and "not valid JSON" in issue.message


@pytest.mark.parametrize(
    ("found", "level"),
    [("Level 5", 5), ("level: 2", 2), ("3/5", 3), ("6/10", 3), ("4 out of 5", 4), ("Hard", 4),
     ("Competition", 5), ("easy", 2), (3, 3), (4.0, 4), ("9", None), (0, None), ("?", None), (None, None)],
)
def test_difficulty_rules(found, level):
    assert parse_difficulty(found)[0] == level
