"""The keep-precision measurement counts right: scripted code and solves with known truth -> known numbers.

Four seeds with known answers go through the real pipeline (LLMClient over HTTP to a scripted server, the
real sandbox, the real equivalence engine). The writer's code is right for two, wrong for one, crashing
(even after its repair) for one; the solver agrees or not depending on its temperature. Every number of
every setting follows from that script by hand, and every solve is asked once however many settings read it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from scripted_openai_server import Answer, Request, ScriptedServer, candidate_json

from loong_env.generators import KeepConfig
from loong_env.generators.keep_precision import CODE_ONLY, measure_keep, standard_settings
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.sandbox import Sandbox
from loong_env.types import DataPoint

pytestmark = pytest.mark.timeout(60)

RIGHT, WRONG_AGREES_GREEDY, RIGHT_SLIPS_GREEDY, CRASHES = (
    "A shelf holds 23 novels and 18 atlases. How many books are on the shelf altogether?",
    "How many edges does a complete graph on 6 vertices have, counting each edge once?",
    "What is the sum of the first 10 positive integers, from 1 up to and including 10?",
    "A farmer has 12 cows and buys 7 more. How many cows does the farmer have now?",
)
KNOWN = {RIGHT: "41", WRONG_AGREES_GREEDY: "15", RIGHT_SLIPS_GREEDY: "55", CRASHES: "19"}
CODE = {
    RIGHT: "print(23 + 18)",
    WRONG_AGREES_GREEDY: "print(6 * 5)",  # forgets to halve: 30
    RIGHT_SLIPS_GREEDY: "print(sum(range(1, 11)))",
    CRASHES: "print(cows)",
}
# What the solver boxes, by question and temperature (0 = greedy first solve, 0.7 later ones, 1.0 the alt).
BOXED = {
    RIGHT: {0.0: "41", 0.7: "41", 1.0: "41"},
    WRONG_AGREES_GREEDY: {0.0: "30", 0.7: "15", 1.0: "15"},  # greedy makes the code's mistake
    RIGHT_SLIPS_GREEDY: {0.0: "54", 0.7: "55", 1.0: "55"},  # greedy slips, sampling gets it
}


def script(req: Request) -> Answer:
    if req.is_solve:
        return Answer(f"Step by step. \\boxed{{{BOXED[req.solve_question][req.body['temperature']]}}}")
    if req.is_repair:  # the crashing code comes back unchanged: still failing after one repair
        return Answer(candidate_json(CRASHES, CODE[CRASHES]))
    question = req.user.split("Problem: ", 1)[1].split("\n\nWrite Python code", 1)[0]
    return Answer(candidate_json(question, CODE[question]))


async def test_each_setting_reports_the_precision_and_recall_its_solves_imply_from_shared_samples():
    seeds = [DataPoint(question=q, final_answer=a, domain="toy_math") for q, a in KNOWN.items()]
    settings = standard_settings(KeepConfig(), alt_temperature=1.0)
    box = Sandbox(requirements=[], timeout_s=2.0)
    try:
        with ScriptedServer(script) as server:
            retry = RetryPolicy(max_attempts=1)
            async with LLMClient(
                base_url=server.base_url, model="scripted", timeout_s=20, retry=retry
            ) as client:
                report = await measure_keep(
                    seeds,
                    writer=client,
                    solvers={"default": client},
                    settings=settings,
                    sandbox_for=lambda dp: box,
                )
    finally:
        await box.close()

    by_name = {s.name: s for s in report.settings}
    assert list(by_name) == [
        CODE_ONLY,
        "1/any",
        "3/majority",
        "3/all",
        "1/any T=1",
        "3/majority T=1",
        "3/all T=1",
    ]
    # (kept, kept and right, precision, recall); recall's denominator: the 2 questions whose code is right
    expected = {
        CODE_ONLY: (3, 2, 2 / 3, 1.0),
        "1/any": (2, 1, 0.5, 0.5),  # keeps the wrong 30 (greedy agrees), loses 55 (greedy slips)
        "3/majority": (2, 2, 1.0, 1.0),  # sampled solves outvote the greedy one both ways
        "3/all": (1, 1, 1.0, 0.5),  # the slip alone rejects 55
        "1/any T=1": (2, 2, 1.0, 1.0),
        "3/majority T=1": (2, 2, 1.0, 1.0),
        "3/all T=1": (2, 2, 1.0, 1.0),
    }
    for name, (kept, right, precision, recall) in expected.items():
        s = by_name[name]
        assert (s.questions, s.code_correct, s.kept, s.kept_correct) == (4, 2, kept, right), name
        assert s.precision == pytest.approx(precision) and s.recall == pytest.approx(recall), name
        assert s.acceptance == pytest.approx(kept / 4), name
        assert [f.known_answer for f in s.false_keeps] == (["15"] if right < kept else []), name
        assert s.code_wrong == 1 and s.false_keep_rate == (kept - right) / 1, name
        assert s.rejected.get("code_error") == 1, name  # crashing code: no setting sees it
    assert [(f.kept_answer, f.question) for f in by_name["1/any"].false_keeps] == [
        ("30", WRONG_AGREES_GREEDY)
    ]
    assert by_name["3/majority"].rejected == {"code_error": 1, "disagreement": 1}

    rows = {q.question: q for q in report.questions}
    assert rows[CRASHES].code.status == "code_error" and rows[CRASHES].code.repaired
    assert rows[RIGHT].decisions["3/majority"].outcomes == ["agree", "agree"]  # stops once certain
    assert rows[RIGHT_SLIPS_GREEDY].decisions["3/all"].outcomes == ["disagree"]

    # Samples are shared: each (question, temperature, seed) is asked once, whichever settings read it.
    solves = [r for r in server.requests if r.is_solve]
    keys = Counter((r.solve_question, r.body["temperature"], r.body["seed"]) for r in solves)
    assert max(keys.values()) == 1
    assert len(solves) == report.solve_requests == 17 < report.solves_read
    assert report.solves_read == sum(s.solves_read for s in report.settings)
    # cost per kept item: every question's code route (4 writes + 1 repair) plus the solves the setting read,
    # at the 30 tokens the scripted server reports per request
    assert by_name["1/any"].tokens_per_kept == pytest.approx(30 * (4 + 1 + by_name["1/any"].solves_read) / 2)
