"""Datasets you can reproduce: an export's card says how it was made, its version tracks exactly the kept items,
and the export reads back as seeds the env reports the version of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loong_env.env import SingleStepEnv
from loong_env.publish import ExportError, content_hash, export, read_card
from loong_env.publish.export import item_content
from loong_env.seeds.dataset import load_seeds
from loong_env.types import Action, DataPoint

pytestmark = pytest.mark.timeout(60)


def kept(question: str, answer: str, *, seed_ids: list[str], seconds: float = 1.0) -> DataPoint:
    """A kept item as the generation run writes it (provenance in metadata)."""
    return DataPoint(
        question=question,
        final_answer=answer,
        rationale=f"print({answer})",
        domain="logic",
        difficulty=2,
        source="loong_env:few-shot",
        metadata={
            "generator": "few-shot",
            "model": "qwen2.5-coder-0.5b",
            "seed_ids": seed_ids,
            "novelty": {"threshold": 0.7},
            "agreement": {"rule": "any", "attempts": 1},
            "timings": {"total": seconds},
        },
    )


ITEMS = [
    kept("How many truthful knights are there if exactly two of five people lie?", "3", seed_ids=["s1"]),
    kept("A box holds 4 red and 6 blue balls; how many balls are not red?", "6", seed_ids=["s2", "s1"]),
]


def write_run(folder: Path, items: list[DataPoint]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dp.model_dump(mode="json")) for dp in items]
    (folder / "accepted.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def test_an_export_writes_a_card_and_reads_back_as_seeds_carrying_its_version(tmp_path):
    card = export(write_run(tmp_path / "run", ITEMS), tmp_path / "out", keep_precision=0.93)
    assert read_card(tmp_path / "out") == card
    assert (card.kind, card.items, card.domains, card.models) == (
        "generation",
        2,
        ["logic"],
        ["qwen2.5-coder-0.5b"],
    )
    assert (
        card.generators == {"few-shot": 2} and card.seed_ids == ["s1", "s2"] and card.keep_precision == 0.93
    )
    assert card.config["keep_rule"] == {
        "novelty_threshold": [0.7],
        "agreement_rule": ["any"],
        "solve_attempts": [1],
    }
    assert card.seed_library_version is not None and len(card.dataset_version) == 16
    text = (tmp_path / "out" / "README.md").read_text()
    assert text.startswith("---\n") and card.dataset_version in text and "93.0%" in text

    seeds = load_seeds(tmp_path / "out")
    assert sorted(dp.id for dp in seeds) == sorted(dp.id for dp in ITEMS)
    assert {dp.dataset_version for dp in seeds} == {card.dataset_version}

    env = SingleStepEnv(seeds)
    (obs,) = env.reset_sync(batch_size=1, seed=0)
    (result,) = env.step_sync([Action(index=0, llm_response="\\boxed{3}")])
    assert result.dataset_version == card.dataset_version and obs.datapoint_id == result.datapoint.id


def test_the_version_changes_exactly_when_the_kept_items_change(tmp_path):
    def version(items: list[DataPoint], name: str) -> str:
        return export(write_run(tmp_path / name, items), tmp_path / f"{name}-out").dataset_version

    base = version(ITEMS, "base")
    assert version(list(reversed(ITEMS)), "reordered") == base  # order is not content
    retimed = [kept(dp.question, dp.final_answer, seed_ids=["s9"], seconds=9.0) for dp in ITEMS]
    assert version(retimed, "retimed") == base  # nor is provenance metadata
    assert version(ITEMS[:1], "fewer") != base
    assert (
        version([*ITEMS, kept("What is the smallest prime above twenty?", "23", seed_ids=[])], "more") != base
    )
    changed = [ITEMS[0], ITEMS[1].model_copy(update={"final_answer": "7"})]
    assert version(changed, "changed") != base
    rationale = [ITEMS[0], ITEMS[1].model_copy(update={"rationale": "print(10 - 4)"})]
    assert version(rationale, "rationale") != base
    assert content_hash(item_content(dp) for dp in ITEMS) == base


def test_exporting_an_empty_or_unknown_folder_or_over_an_export_says_why(tmp_path):
    with pytest.raises(ExportError, match="neither a generation output"):
        export(tmp_path, tmp_path / "out")
    with pytest.raises(ExportError, match="no kept items"):
        export(write_run(tmp_path / "empty", []), tmp_path / "out")
    export(write_run(tmp_path / "run", ITEMS), tmp_path / "out")
    with pytest.raises(ExportError, match="not empty"):
        export(tmp_path / "run", tmp_path / "out")
    assert export(tmp_path / "run", tmp_path / "out", overwrite=True).items == 2


def test_loong_export_command_writes_the_export_and_says_its_version(tmp_path, capsys):
    from loong_env.cli.main import main

    assert main(["export", str(write_run(tmp_path / "run", ITEMS)), str(tmp_path / "out")]) == 0
    version = read_card(tmp_path / "out").dataset_version
    assert version in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 2  # not empty, no --overwrite


def test_a_cot_export_reads_back_with_load_from_disk_and_carries_the_settings(tmp_path):
    import datasets

    from loong_env.pipeline import CoTStore, ProblemResult, Trace
    from loong_env.pipeline.prompts import solve
    from loong_env.types import VerificationStatus

    def solved(index: int) -> ProblemResult:
        question = f"What is {index} + {index}?"
        text = f"{index} + {index} = \\boxed{{{2 * index}}}"
        good = Trace(kind="sample", round=0, text=text, status=VerificationStatus.correct, tokens=5)
        return ProblemResult(
            index=index, id=f"id{index}", question=question, reference=str(2 * index), domain="toy",
            mode="rejection", prompt=solve(question), traces=[good], best=0,
        )  # fmt: skip

    store = CoTStore(tmp_path / "cot").open({"mode": "rejection", "model": "qwen2.5-coder-0.5b"})
    for i in range(3):
        store.record(solved(i))
    store.close("done")
    card = export(tmp_path / "cot", tmp_path / "out")
    assert (card.kind, card.items, card.models, card.domains) == ("cot", 3, ["qwen2.5-coder-0.5b"], ["toy"])
    assert card.config["settings"]["mode"] == "rejection" and read_card(tmp_path / "out") == card
    rows = datasets.load_from_disk(str(tmp_path / "out" / "data"))
    assert len(rows) == 3 and set(rows["dataset_version"]) == {card.dataset_version}
    assert rows[0]["messages"][-1]["role"] == "assistant"
