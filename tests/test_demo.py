"""`loong demo`, the README's main job, end to end against a scripted OpenAI-compatible server.

The real local model runs the same command in `make demo`; here the server is scripted so the expected
verdicts and rewards are known exactly.
"""

from __future__ import annotations

import itertools
import json
import re

from scripted_openai_server import Answer, Request, ScriptedServer

from loong_env.cli import main
from loong_env.seeds.dataset import load_seeds

DOMAINS = ["number_theory_combinatorics", "probability_statistics"]


def test_demo_generates_then_rewards_the_policy_exactly(capsys, tmp_path) -> None:
    answers = {" ".join(p.question.split()): p.final_answer for d in DOMAINS for p in load_seeds(d)}
    counter = itertools.count(1)
    policy_verdicts: list[bool] = []

    def script(req: Request) -> Answer:
        user = req.user
        if "Problem: " in user:  # the demo's policy: right on every other question
            question = " ".join(user.split("Problem: ", 1)[1].split())
            right = len(policy_verdicts) % 2 == 0
            policy_verdicts.append(right)
            return Answer(f"Thinking... \\boxed{{{answers[question] if right else 'ZZZ'}}}")
        if req.is_solve:  # the generator's independent solve: multiply the two numbers it asks about
            a, b = map(int, re.findall(r"\d+", req.solve_question)[:2])
            return Answer(f"So the product is \\boxed{{{a * b}}}")
        n = next(counter)
        question = f"A crate holds {n + 10} boxes of {n + 20} pens each. How many pens are in the crate?"
        return Answer(json.dumps({"question": question, "code": f"print({n + 10} * {n + 20})"}))

    with ScriptedServer(script) as server:
        args = ["--base-url", server.base_url, "--model", "scripted", "--gen-seconds", "300", "--gen-attempts", "3"]
        args += ["--episodes", "4", "--env-domains", *DOMAINS, "--out", str(tmp_path / "gen")]
        code = main(["demo", *args])
    out = capsys.readouterr().out
    assert code == 0
    assert len(policy_verdicts) == 4
    kept = [json.loads(line) for line in (tmp_path / "gen" / "accepted.jsonl").read_text().splitlines()]
    assert len(kept) == 1  # the first is kept; the rest differ only in numbers, so they are too similar
    assert "kept" in out and "rejected (too_similar)" in out
    assert re.search(r"env: correct answers\s*│\s*2/4", out), out
    assert re.search(r"env: mean reward\s*│\s*0\.500", out), out
