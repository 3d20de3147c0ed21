"""The keep rule, promise by promise, through a scripted OpenAI-compatible server on loopback.

Each test scripts what the "model" writes (a candidate, and its chain-of-thought solve) and asserts the one
verdict and reason the real pipeline (LLMClient over HTTP, the real sandbox, the real equivalence engine)
gives it, plus what lands on disk.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted_openai_server import Answer, Request, ScriptedServer, Status, candidate_json

from loong_env.generators import (
    KeepConfig,
    RejectReason,
    Verdict,
    read_accepted,
    read_manifest,
    read_rejected,
    run_generation,
)
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import load_seeds

pytestmark = pytest.mark.timeout(60)

SEEDS = [
    {"question": "A farmer has 12 cows and buys 7 more. How many cows does the farmer have now?",
     "final_answer": "19", "rationale": "print(12 + 7)", "difficulty": 1},
    {"question": "What is the sum of the first 10 positive integers?",
     "final_answer": "55", "rationale": "print(sum(range(1, 11)))", "difficulty": 1},
    {"question": "How many edges does a complete graph on 6 vertices have, counting each edge once?",
     "final_answer": "15", "rationale": "print(6 * 5 // 2)", "difficulty": 1},
]  # fmt: skip

NOVEL_Q = "A library shelf holds 23 novels and 18 atlases. How many books are on the shelf altogether?"
NOVEL_CODE = "print(23 + 18)"


@pytest.fixture
def seeds_root(tmp_path: Path) -> Path:
    """A tiny stdlib-only domain, so the sandbox needs no package install."""
    folder = tmp_path / "seeds" / "toy_math"
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text('name = "toy_math"\ndescription = "Arithmetic word problems."\n'
                                        'requirements = []\nlicense = "MIT"\n')  # fmt: skip
    (folder / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SEEDS))
    return tmp_path / "seeds"


@pytest.fixture
async def sandbox():
    box = Sandbox(requirements=[], timeout_s=2.0)
    try:
        yield box
    finally:
        await box.close()


def script_of(candidate: Answer, solve: Answer | list[Answer]) -> callable:
    """Generation requests get `candidate`; solve requests get `solve` (or the next of a list, in order)."""
    solves = list(solve) if isinstance(solve, list) else None

    def script(req: Request) -> Answer:
        if req.is_solve:
            return solves.pop(0) if solves is not None else solve
        return candidate

    return script


async def run_once(
    seeds_root: Path,
    out: Path,
    sandbox: Sandbox,
    script,
    *,
    method: str = "few-shot",
    attempts: int = 1,
    concurrency: int = 1,
    keep_config: KeepConfig | None = None,
    n: int = 1,
) -> tuple[list[Verdict], ScriptedServer]:
    verdicts: list[Verdict] = []
    with ScriptedServer(script) as server:
        async with LLMClient(base_url=server.base_url, model="scripted", timeout_s=20,
                             retry=RetryPolicy(max_attempts=1)) as client:  # fmt: skip
            await run_generation(
                "toy_math", out=out, n=n, method=method, max_attempts=attempts, client=client,
                sandbox=sandbox, seeds_root=seeds_root, concurrency=concurrency, keep_config=keep_config,
                on_verdict=verdicts.append,
            )  # fmt: skip
    return verdicts, server


async def test_a_novel_problem_whose_code_and_solve_agree_is_kept_with_provenance(
    seeds_root, tmp_path, sandbox
):
    script = script_of(Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("23 + 18 = 41, so \\boxed{41}."))
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script)

    assert [v.accepted for v in verdicts] == [True]
    kept = read_accepted(tmp_path / "out")
    assert len(kept) == 1
    dp = kept[0]
    assert (dp.question, dp.final_answer, dp.rationale, dp.domain) == (NOVEL_Q, "41", NOVEL_CODE, "toy_math")
    meta = dp.metadata
    assert meta["generator"] == "few-shot" and meta["model"] == "scripted" and meta["attempt"] == 0
    seed_ids = {s.id for s in load_seeds("toy_math", root=seeds_root)}
    assert meta["seed_ids"] and set(meta["seed_ids"]) <= seed_ids
    assert meta["agreement"]["agreed"] == 1 and meta["agreement"]["solves"][0]["boxed"] == "41"
    assert {"generate_s", "sandbox_s", "solve_s"} <= meta["timings"].keys()
    assert meta["novelty"]["max_rouge_l"] < 0.7
    # the independent solve never saw the code
    solve = server.solve_requests()[0]
    assert NOVEL_CODE not in json.dumps(solve.body) and NOVEL_Q in solve.user
    # the generation request asked for structured output
    gen = next(r for r in server.requests if not r.is_solve)
    assert gen.body["response_format"]["type"] == "json_schema"
    manifest = read_manifest(tmp_path / "out")
    assert (manifest.accepted, manifest.rejected) == (1, 0)


async def test_free_text_reply_with_fenced_code_is_parsed_and_can_be_kept(seeds_root, tmp_path, sandbox):
    text = f"Question: {NOVEL_Q}\n\n```python\n{NOVEL_CODE}\n```\n"
    verdicts, _ = await run_once(
        seeds_root, tmp_path / "out", sandbox, script_of(Answer(text), Answer("\\boxed{41}"))
    )
    assert verdicts[0].accepted, verdicts[0].detail
    assert verdicts[0].datapoint.metadata["parsed_by"] == "free_text"


SOLVE_OK = Answer("\\boxed{41}")
REJECTIONS = {
    "unparsable": (Answer("I am not sure what you want me to do here."), SOLVE_OK),
    "truncated": (Answer('{"question": "A library shelf holds 23 nov', finish_reason="length"), SOLVE_OK),
    "code_error": (Answer(candidate_json(NOVEL_Q, "print(23 + undefined_name)")), SOLVE_OK),
    "code_timeout": (Answer(candidate_json(NOVEL_Q, "while True:\n    pass")), SOLVE_OK),
    "empty_output": (Answer(candidate_json(NOVEL_Q, "x = 23 + 18")), SOLVE_OK),
    "answer_too_long": (Answer(candidate_json(NOVEL_Q, "print('41 ' * 200)")), SOLVE_OK),
    "too_short": (Answer(candidate_json("What is 2+2?", "print(4)")), Answer("\\boxed{4}")),
    "too_long": (Answer(candidate_json("How many apples? " + "There are many apples here. " * 100, "print(1)")), SOLVE_OK),
    "degenerate": (Answer(candidate_json("apple apple apple apple " * 10 + "how many?", "print(40)")), SOLVE_OK),
    "scaffold_copy": (Answer(candidate_json(NOVEL_Q + " Reply with JSON only.", NOVEL_CODE)), SOLVE_OK),
    "duplicate": (Answer(candidate_json("  what is the SUM of the first 10 positive   integers?", "print(55)")),
                  Answer("\\boxed{55}")),
    "too_similar": (Answer(candidate_json(
        "A farmer has 12 goats and buys 7 more. How many goats does the farmer have now?", "print(19)")),
        Answer("\\boxed{19}")),
    "disagreement": (Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("23 + 18 = 42. \\boxed{42}")),
    "solve_truncated": (Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("Let me think. " * 50, finish_reason="length")),
    "solver_gave_up": (Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("There is not enough information to answer.")),
    "no_boxed_answer": (Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("The answer is forty-one.")),
    "llm_error": (Status(400, message="bad request"), SOLVE_OK),
}  # fmt: skip


@pytest.mark.parametrize("reason", sorted(REJECTIONS))
async def test_each_failure_is_rejected_with_its_specific_reason_and_written_to_the_side_file(
    reason, seeds_root, tmp_path, sandbox
):
    candidate, solve = REJECTIONS[reason]
    verdicts, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script_of(candidate, solve))

    assert len(verdicts) == 1
    verdict = verdicts[0]
    assert not verdict.accepted
    assert verdict.reason == RejectReason(reason), verdict.detail
    assert verdict.detail  # a reason always comes with a human-readable detail
    assert read_accepted(tmp_path / "out") == []
    rejected = read_rejected(tmp_path / "out")
    assert [r["reason"] for r in rejected] == [reason]
    assert read_manifest(tmp_path / "out").rejected_by_reason == {reason: 1}


@pytest.mark.parametrize("rewrite", ["verbatim", "one_phrase_added"])
async def test_evol_rewrite_too_close_to_its_parent_is_no_information_gain(
    rewrite, seeds_root, tmp_path, sandbox
):
    def script(req: Request) -> Answer:
        if req.is_solve:
            return Answer("\\boxed{19}")
        parent = json.loads(req.user.split("Given problem:\n")[1].split("\n\n")[0])
        question = (
            parent["question"] if rewrite == "verbatim" else parent["question"].replace("?", " in total?")
        )
        return Answer(candidate_json(question, parent["code"]))

    verdicts, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script, method="evol-instruct")
    assert verdicts[0].reason == RejectReason.no_information_gain, verdicts[0].detail
    assert "to its parent" in verdicts[0].detail


@pytest.mark.parametrize(("parent_threshold", "kept"), [(None, False), (0.85, True)])
async def test_evol_parent_bar_is_the_novelty_bar_unless_loosened(
    parent_threshold, kept, seeds_root, tmp_path, sandbox
):
    """A rewrite that adds a condition is ~0.75 ROUGE-L to its parent: rejected at the default 0.7 bar,
    kept when a looser parent bar is configured."""
    answers = {s["question"]: int(s["final_answer"]) for s in SEEDS}
    extra = " Then double it and add five."

    def script(req: Request) -> Answer:
        if req.is_solve:
            parent_question = req.solve_question.removesuffix(extra)
            return Answer(f"\\boxed{{{2 * answers[parent_question] + 5}}}")
        parent = json.loads(req.user.split("Given problem:\n")[1].split("\n\n")[0])
        code = (
            "import contextlib, io\nbuf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n"
            f"    exec({parent['code']!r})\nprint(2 * int(buf.getvalue()) + 5)"
        )
        return Answer(candidate_json(parent["question"] + extra, code))

    config = KeepConfig(parent_threshold=parent_threshold)
    verdicts, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script, method="evol-instruct",
                                 keep_config=config)  # fmt: skip
    v = verdicts[0]
    parent = next(s["question"] for s in SEEDS if v.question.startswith(s["question"]))
    from loong_env.generators import rouge_l

    assert 0.7 < rouge_l(v.question, parent) <= 0.85
    assert v.accepted is kept, (v.reason, v.detail)
    if kept:
        meta = v.datapoint.metadata
        assert meta["parent_id"] in {dp.id for dp in load_seeds("toy_math", root=seeds_root)}
        assert meta["evolution"] and meta["kind"] in ("in-depth", "in-breadth") and meta["generation"] == 1
    else:
        assert v.reason == RejectReason.no_information_gain and "to its parent" in v.detail


@pytest.mark.parametrize(
    ("attempts", "rule", "outcomes", "step"),
    [
        (1, "any", [], "solve"),
        (1, "any", ["agree"], "keep"),
        (1, "any", ["disagree"], "reject"),
        (1, "any", ["truncated"], "solve"),  # boxed nothing: the slot asks again (one retry)
        (1, "any", ["truncated", "no_answer"], "reject"),  # the retry budget is spent
        (3, "majority", ["agree", "agree"], "keep"),  # certain after two: the third is never drawn
        (3, "majority", ["disagree", "disagree"], "reject"),
        (3, "majority", ["agree", "disagree"], "solve"),
        (3, "all", ["agree", "gave_up"], "reject"),
        (3, "all", ["agree", "llm_error", "agree", "agree"], "keep"),
    ],
)
def test_agreement_decision_draws_solves_only_until_the_outcome_is_certain(attempts, rule, outcomes, step):
    config = KeepConfig(solve_attempts=attempts, agreement=rule, unanswered_retries=1)
    assert config.decide(outcomes) == step


@pytest.mark.parametrize(("rule", "kept"), [("majority", True), ("all", False)])
async def test_agreement_rule_counts_independent_solves(rule, kept, seeds_root, tmp_path, sandbox):
    solves = [Answer("\\boxed{41}"), Answer("\\boxed{40}"), Answer("\\boxed{41}")]
    config = KeepConfig(solve_attempts=3, agreement=rule)
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox,
                                      script_of(Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), solves),
                                      keep_config=config)  # fmt: skip
    assert verdicts[0].accepted is kept
    assert [s.outcome for s in verdicts[0].solves] == (
        ["agree", "disagree", "agree"] if kept else ["agree", "disagree"]
    )
    if not kept:
        assert verdicts[0].reason == RejectReason.disagreement
    # later solves use a non-zero temperature so they are not copies of the first
    temps = [r.body.get("temperature") for r in server.solve_requests()]
    assert temps[0] == 0.0 and all(t > 0 for t in temps[1:])


async def test_concurrent_twins_are_kept_once(seeds_root, tmp_path, sandbox):
    script = script_of(
        Answer(candidate_json(NOVEL_Q, NOVEL_CODE), delay_s=0.1), Answer("\\boxed{41}", delay_s=0.1)
    )
    verdicts, _ = await run_once(
        seeds_root, tmp_path / "out", sandbox, script, attempts=4, concurrency=4, n=4
    )
    assert sorted(str(v.reason) for v in verdicts) == ["None", "duplicate", "duplicate", "duplicate"]
    assert len(read_accepted(tmp_path / "out")) == 1


async def test_rerun_sees_kept_items_as_pool_so_a_resumed_run_never_duplicates(seeds_root, tmp_path, sandbox):
    script = script_of(Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), Answer("\\boxed{41}"))
    first, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script, n=5)
    second, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script, n=5)
    assert first[0].accepted and second[0].reason == RejectReason.duplicate
    assert second[0].attempt == 1  # attempt numbers continue across runs
    manifest = read_manifest(tmp_path / "out")
    assert (manifest.accepted, manifest.rejected, len(manifest.runs)) == (1, 1, 2)


async def test_stops_at_the_target_even_with_attempts_left(seeds_root, tmp_path, sandbox):
    counter = iter(range(100))

    def script(req: Request) -> Answer:
        if req.is_solve:
            return Answer(f"\\boxed{{{req.solve_question.split('holds ')[1].split(' ')[0]}}}")
        k = next(counter)
        animals = ["owls", "foxes", "deer", "bears", "wolves", "hares"][k % 6]
        q = f"Zoo number {k} holds {k + 3} {animals} in a park near river {k * 13}; count the {animals} there."
        return Answer(candidate_json(q, f"print({k + 3})"))

    config = KeepConfig(novelty_threshold=0.99)
    verdicts, _ = await run_once(seeds_root, tmp_path / "out", sandbox, script, attempts=20, n=2,
                                 keep_config=config)  # fmt: skip
    assert sum(v.accepted for v in verdicts) == 2 and len(verdicts) == 2
    assert read_manifest(tmp_path / "out").runs[-1].status == "target"


def test_parser_accepts_json_in_prose_and_raw_newlines_in_strings():
    from loong_env.generators import parse_candidate

    reply = 'Sure! Here it is:\n```json\n{"question": "How many?", "code": "x = 3\nprint(x)"}\n```'
    parsed = parse_candidate(reply)
    assert (parsed.question, parsed.code, parsed.parsed_by) == (
        "How many?",
        "x = 3\nprint(x)",
        "embedded_json",
    )
    # what Qwen2.5-Coder-0.5B did here without a schema: one object, then the start of a second
    reply = '{"question": "How many?", "code": "print(3)"}\n\n{"question": "What is the chrom'
    assert parse_candidate(reply).code == "print(3)"


def test_rouge_l_flags_the_one_word_change_seen_with_the_small_model():
    from loong_env.generators import rouge_l

    a = SEEDS[0]["question"]
    assert rouge_l(a, a.replace("cows", "goats")) > 0.7
    assert rouge_l(a, NOVEL_Q) < 0.5  # shared function words ("a", "how many", "?") only


async def test_sample_serves_kept_items_from_a_background_refilled_buffer(seeds_root, sandbox):
    from loong_env.generators import FewShotGenerator, KeepRule, StaticGenerator

    counter = iter(range(1000))

    def script(req: Request) -> Answer:
        if req.is_solve:
            return Answer(f"\\boxed{{{req.solve_question.split('holds ')[1].split(' ')[0]}}}")
        k = next(counter)
        q = f"Barn number {k} holds {k + 5} sheep after {k} of them came home from hill {k * 7}; count them all."
        return Answer(candidate_json(q, f"print({k + 5})"))

    seeds = load_seeds("toy_math", root=seeds_root)
    with ScriptedServer(script) as server:
        async with LLMClient(base_url=server.base_url, model="scripted", timeout_s=20) as client:
            keep = KeepRule(sandbox, client, config=KeepConfig(novelty_threshold=0.99))
            async with FewShotGenerator(seeds, client, keep, concurrency=2, buffer_size=3) as gen:
                got = [await asyncio.wait_for(gen.sample(), 30) for _ in range(4)]
                assert len({dp.id for dp in got}) == 4
                assert all(dp.final_answer == str(int(dp.rationale[6:-1])) for dp in got)
                for _ in range(400):  # the buffer refills in the background without being asked
                    if gen._buffer.qsize() >= 1:
                        break
                    await asyncio.sleep(0.05)
                assert gen._buffer.qsize() >= 1
    static = StaticGenerator(seeds, seed=3)
    first_pass = [await static.sample() for _ in range(len(seeds))]
    assert sorted(dp.id for dp in first_pass) == sorted(dp.id for dp in seeds)  # every seed once per pass


# -- code repair: one follow-up to the writer when its code crashes or prints nothing -----------------

BROKEN = {
    "code_error": ("total = 23 + undefined_name\nprint(total)", "undefined_name"),
    "empty_output": ("total = 23 + 18", "printed nothing"),
}


def repair_script(broken: str, repaired: Answer, solve: Answer = SOLVE_OK) -> callable:
    """Generation gets the broken candidate, a repair request gets `repaired`, a solve gets `solve`."""

    def script(req: Request) -> Answer:
        if req.is_solve:
            return solve
        if req.is_repair:
            return repaired
        return Answer(candidate_json(NOVEL_Q, broken))

    return script


@pytest.mark.parametrize("failure", sorted(BROKEN))
async def test_failing_code_is_repaired_once_and_kept_with_provenance(failure, seeds_root, tmp_path, sandbox):
    broken, shown = BROKEN[failure]
    script = repair_script(broken, Answer(candidate_json(NOVEL_Q, NOVEL_CODE)))
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script)

    v = verdicts[0]
    assert v.accepted, (v.reason, v.detail)
    dp = read_accepted(tmp_path / "out")[0]
    assert (dp.final_answer, dp.rationale) == ("41", NOVEL_CODE)  # the repaired code is the rationale
    repair = dp.metadata["repair"]
    assert repair["repaired"] is True and repair["original_code"] == broken
    assert [(r["failed_with"], r["outcome"], r["code"]) for r in repair["rounds"]] == [
        (failure, "fixed", NOVEL_CODE)
    ]
    assert "repair_s" in dp.metadata["timings"]
    repairs = [r for r in server.requests if r.is_repair]
    assert len(repairs) == 1
    # the writer saw its own code and what went wrong, and was asked for the same JSON as before
    assert broken in repairs[0].user and NOVEL_Q in repairs[0].user and shown in repairs[0].repair_failure
    assert repairs[0].body["response_format"]["type"] == "json_schema"
    # the independent solve saw neither the broken nor the repaired code
    for solve in server.solve_requests():
        assert NOVEL_CODE not in json.dumps(solve.body) and broken not in json.dumps(solve.body)


@pytest.mark.parametrize(
    ("repaired", "reason", "detail_has"),
    [
        (Answer(candidate_json(NOVEL_Q, "print(41 / zero)")), "code_error", "after 1 repair"),
        (Answer(candidate_json(NOVEL_Q, "answer = 41")), "empty_output", "after 1 repair"),
        (Answer("Sorry, I cannot fix this."), "code_error", "unparsable"),
        (Status(400, message="bad request"), "code_error", "llm_error"),
    ],
    ids=["still_raises", "now_prints_nothing", "unparsable_reply", "request_failed"],
)
async def test_a_repair_that_fails_too_is_rejected_with_the_specific_reason(
    repaired, reason, detail_has, seeds_root, tmp_path, sandbox
):
    script = repair_script(BROKEN["code_error"][0], repaired)
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script)

    v = verdicts[0]
    assert not v.accepted and v.reason == RejectReason(reason), v.detail
    assert detail_has in v.detail
    assert len(v.repairs) == 1 and v.repairs[0].failed_with == "code_error"
    assert server.solve_requests() == []  # nothing is solved for code that never printed an answer
    assert len([r for r in server.requests if r.is_repair]) == 1  # one round by default, never more
    rejected = read_rejected(tmp_path / "out")
    assert [r["reason"] for r in rejected] == [reason] and len(rejected[0]["repairs"]) == 1


async def test_repair_disabled_sends_no_extra_request(seeds_root, tmp_path, sandbox):
    script = repair_script(BROKEN["code_error"][0], Answer(candidate_json(NOVEL_Q, NOVEL_CODE)))
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script,
                                      keep_config=KeepConfig(repair_attempts=0))  # fmt: skip
    v = verdicts[0]
    assert v.reason == RejectReason.code_error and v.repairs == []
    assert "undefined_name" in v.detail
    assert len(server.requests) == 1 and not server.requests[0].is_repair


async def test_code_that_runs_first_time_gets_no_repair_request(seeds_root, tmp_path, sandbox):
    script = repair_script(NOVEL_CODE, Answer("unused"))
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script)
    assert verdicts[0].accepted and verdicts[0].datapoint.metadata["repair"] == {"repaired": False}
    assert not any(r.is_repair for r in server.requests)


# -- solve retries: only a solve that boxed nothing is asked again ----------------------------------


@pytest.mark.parametrize(
    ("first", "retries", "kept", "outcomes"),
    [
        (Answer("Let me think. " * 50, finish_reason="length"), 1, True, ["truncated", "agree"]),
        (Answer("The answer is forty-one."), 1, True, ["no_answer", "agree"]),
        (Answer("Let me think. " * 50, finish_reason="length"), 0, False, ["truncated"]),
        (Answer("23 + 18 = 42. \\boxed{42}"), 1, False, ["disagree"]),  # evidence: never retried
    ],
    ids=["truncated_then_agrees", "unboxed_then_agrees", "retries_off", "disagreement_is_final"],
)
async def test_only_unanswered_solves_are_retried(
    first, retries, kept, outcomes, seeds_root, tmp_path, sandbox
):
    script = script_of(Answer(candidate_json(NOVEL_Q, NOVEL_CODE)), [first, Answer("\\boxed{41}")])
    config = KeepConfig(unanswered_retries=retries)
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script, keep_config=config)
    v = verdicts[0]
    assert v.accepted is kept, (v.reason, v.detail)
    assert [s.outcome for s in v.solves] == outcomes
    temps = [r.body.get("temperature") for r in server.solve_requests()]
    assert len(temps) == len(outcomes) and temps[0] == 0.0 and all(t > 0 for t in temps[1:])
    if kept:
        assert v.datapoint.metadata["agreement"]["agreed"] == 1


def test_repair_reply_parser_takes_json_then_a_fenced_block_then_bare_code():
    from loong_env.generators import ParseFailure, parse_code

    assert parse_code(candidate_json(NOVEL_Q, NOVEL_CODE)) == NOVEL_CODE
    assert parse_code("Here is the fix:\n```python\nx = 41\nprint(x)\n```") == "x = 41\nprint(x)"
    assert parse_code("x = 41\nprint(x)") == "x = 41\nprint(x)"
    with pytest.raises(ParseFailure, match="found"):
        parse_code("I could not fix it.")


async def test_repair_request_names_the_missing_import_without_file_paths(seeds_root, tmp_path, sandbox):
    """What Qwen2.5-Coder-0.5B did here: `from sympy import Bell`; shown only the traceback it re-imported it."""
    broken = "from math import bell\nprint(bell(4))"
    script = repair_script(broken, Answer(candidate_json(NOVEL_Q, NOVEL_CODE)))
    verdicts, server = await run_once(seeds_root, tmp_path / "out", sandbox, script)
    assert verdicts[0].accepted, verdicts[0].detail
    shown = next(r for r in server.requests if r.is_repair).repair_failure
    assert "cannot import name 'bell' from 'math'" in shown
    assert "`bell` does not exist in `math`" in shown
    assert " (/" not in shown  # the interpreter's file path is cut


async def test_code_that_logs_before_its_answer_is_kept_with_the_answer_validation_would_compare(
    seeds_root, tmp_path, sandbox
):
    from loong_env.verifiers.code_output import judge_output

    code = "total = 0\nfor x in (23, 18):\n    total += x\n    print('running total', total)\nprint(total)"
    verdicts, _ = await run_once(
        seeds_root, tmp_path / "out", sandbox, script_of(Answer(candidate_json(NOVEL_Q, code)), SOLVE_OK)
    )
    assert verdicts[0].accepted, verdicts[0].detail
    dp = read_accepted(tmp_path / "out")[0]
    assert dp.final_answer == "41" and dp.metadata["answer_read_by"] == "last_line"
    assert judge_output(await sandbox.run(dp.rationale), dp.final_answer).passed  # what validation will do
