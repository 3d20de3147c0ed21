"""A resumed run gets its novelty index from the output folder: saved at close, topped up after a kill."""

from __future__ import annotations

from pathlib import Path

from test_generators_output import accepted_verdict

from loong_env.generators import GenerationWriter
from loong_env.generators.output import NOVELTY


def _open(path: Path) -> GenerationWriter:
    return GenerationWriter(path, domain="toy_math").open(method="few-shot")


def _kept_ids(index) -> set[str]:
    return {item_id for item_id, kind in index.held() if kind == "kept"}


def _saved_run(path: Path, count: int) -> None:
    """A run that kept and wrote `count` items, then saved its index and closed."""
    writer = _open(path)
    index = writer.novelty_index(floor=0.5)
    for k in range(count):
        writer.record(accepted_verdict(k))
        index.add(accepted_verdict(k).datapoint.question, accepted_verdict(k).datapoint.id, "kept")
    writer.save_novelty_index(index)
    writer.close("done")


def test_the_saved_index_holds_exactly_what_accepted_jsonl_holds(tmp_path) -> None:
    writer = _open(tmp_path)
    index = writer.novelty_index(floor=0.5)
    index.add("What is the capital of the seed country?", "seed-1", "seed")
    written = [accepted_verdict(k) for k in range(3)]
    for verdict in written:
        index.add(verdict.datapoint.question, verdict.datapoint.id, "kept")  # the claim, then the write
        writer.record(verdict)
    lost = accepted_verdict(9)  # claimed, then abandoned at the target: never written
    index.add(lost.datapoint.question, lost.datapoint.id, "kept")
    writer.save_novelty_index(index)
    writer.close("target")

    again = _open(tmp_path)
    resumed = again.novelty_index(floor=0.7)
    assert _kept_ids(resumed) == {v.datapoint.id for v in written}
    assert resumed.floor == 0.7 and not resumed.contains("What is the capital of the seed country?")
    assert resumed.contains(written[1].datapoint.question) and not resumed.contains(lost.datapoint.question)
    assert [dp.id for dp in again.recent] == [v.datapoint.id for v in written]
    again.close("done")


def test_items_written_after_the_last_save_are_indexed_on_resume(tmp_path) -> None:
    _saved_run(tmp_path, 2)
    killed = _open(tmp_path)  # this run writes two more and dies before it can save the index
    killed.novelty_index(floor=0.5)
    for k in (5, 6):
        killed.record(accepted_verdict(k))
    killed.close("killed")

    again = _open(tmp_path)
    expected = {accepted_verdict(k).datapoint.id for k in (0, 1, 5, 6)}
    assert _kept_ids(again.novelty_index(floor=0.5)) == expected
    again.close("done")


def test_an_index_that_does_not_match_the_file_is_rebuilt_from_it(tmp_path) -> None:
    _saved_run(tmp_path, 3)
    accepted = tmp_path / "accepted.jsonl"
    accepted.write_text(accepted.read_text().splitlines(keepends=True)[2])  # someone edited the file
    again = _open(tmp_path)
    assert _kept_ids(again.novelty_index(floor=0.5)) == {accepted_verdict(2).datapoint.id}
    again.close("done")
    (tmp_path / NOVELTY).write_bytes(b"garbage")  # an unreadable index is rebuilt too
    third = _open(tmp_path)
    assert _kept_ids(third.novelty_index(floor=0.5)) == {accepted_verdict(2).datapoint.id}
    third.close("done")


def test_a_copy_of_the_handed_index_is_saved_only_when_said_so(tmp_path) -> None:
    import pickle

    writer = _open(tmp_path)
    index = writer.novelty_index(floor=0.5)
    copy = pickle.loads(pickle.dumps(index))  # what the Ray pool actor sends back
    copy.add(accepted_verdict(1).datapoint.question, accepted_verdict(1).datapoint.id, "kept")
    writer.record(accepted_verdict(1))
    writer.save_novelty_index(copy)  # not the one handed out: ignored
    assert not (tmp_path / NOVELTY).exists()
    writer.save_novelty_index(copy, copy=True)
    writer.close("done")
    again = _open(tmp_path)
    assert _kept_ids(again.novelty_index(floor=0.5)) == {accepted_verdict(1).datapoint.id}
    again.close("done")
