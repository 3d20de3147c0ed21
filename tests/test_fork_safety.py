"""Fork safety: after the parent used the env, forked workers (gymnasium's async vector env, a multiprocessing
fork pool) work, the parent keeps working, and nothing leaks once everything is closed."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import gymnasium
import pytest

import loong_env  # noqa: F401  (registers loong_env/SingleStep-v0)
from loong_env.seeds.dataset import load_seeds
from loong_env.verifiers.boxed import BoxedAnswerVerifier
from loong_env.verifiers.python import PythonVerifier

pytestmark = pytest.mark.timeout(180)
DOMAIN = "graph_discrete_math"


def _descendants() -> set[int]:
    """Every live process below this one (workers, zygotes, sandboxes), by walking /proc."""
    out: set[int] = set()
    stack = [os.getpid()]
    while stack:
        pid = stack.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            out.add(child)
            stack.append(child)
    return out


def _answers(env: gymnasium.Env) -> str:
    return "\\boxed{" + env.unwrapped.core.datapoints[0].final_answer + "}"


def test_async_vector_env_works_under_fork_after_the_parent_stepped() -> None:
    parent = gymnasium.make("loong_env/SingleStep-v0", domains=[DOMAIN])
    parent.reset(seed=0)
    assert parent.step(_answers(parent))[1] == 1.0  # the parent's loop, pools and workers now exist
    before = _descendants()

    # Two forked copies show it as well as more would: each one builds its own verifier pools (CPU-heavy).
    vec = gymnasium.make_vec("loong_env/SingleStep-v0", num_envs=2, vectorization_mode="async",
                             vector_kwargs={"context": "fork", "shared_memory": False}, domains=[DOMAIN])
    try:
        questions, _infos = vec.reset(seed=1)
        assert len(questions) == 2 and all(q for q in questions)
        seeds = {dp.question: dp.final_answer for dp in load_seeds(DOMAIN)}
        right = ["\\boxed{" + seeds[q.split("\n\nSolve the problem.")[0]] + "}" for q in questions]
        _, rewards, terminated, _, _ = vec.step(right)
        assert list(rewards) == [1.0, 1.0] and all(terminated)
    finally:
        vec.close()

    parent.reset(seed=2)
    assert parent.step(_answers(parent))[1] == 1.0  # the parent's pools survived the children
    leftover = _descendants() - before
    assert leftover == set(), f"processes left behind by the vector env's workers: {leftover}"


def _verify_in_child(args: tuple[str, str]) -> tuple[bool, bool]:
    response, reference = args
    boxed = BoxedAnswerVerifier().verify_sync(response, reference).correct
    code = PythonVerifier().verify_sync("```python\nprint(2 * 21)\n```", "42").correct
    return boxed, code


def test_a_fork_pool_can_verify_after_the_parent_did_and_the_parent_still_can() -> None:
    boxed, python = BoxedAnswerVerifier(), PythonVerifier()
    assert boxed.verify_sync(r"\boxed{\sqrt{8}}", r"2\sqrt{2}").correct  # sympy worker pool started here
    assert python.verify_sync("```python\nprint(6 * 7)\n```", "42").correct  # sandbox workers started here

    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(_verify_in_child, [(r"\boxed{\frac{1}{2}}", "0.5"), (r"\boxed{3}", "4")])
    assert got == [(True, True), (False, True)]

    assert boxed.verify_sync(r"\boxed{x^2+2x+1}", "(x+1)^2").correct
    assert python.verify_sync("```python\nprint(40 + 2)\n```", "42").correct
