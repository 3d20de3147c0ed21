"""ToolEnv: a policy's tool output reaches its next observation, its boxed answer is rewarded, the turn rule
holds for both call forms, malformed and hostile calls are bounded observations, and a batch survives it all.
"""

from __future__ import annotations

import json

import pytest
from scripted_openai_server import Reply, tool_call

from loong_env.errors import AlreadySteppedError, InvalidActionError, NotResetError
from loong_env.llm import LLMClient
from loong_env.tool_env import NUDGE, ToolEnv
from loong_env.tools import PYTHON_TOOL, load_episodes, parse_turn
from loong_env.tools.calls import TurnKind
from loong_env.types import DataPoint

pytestmark = pytest.mark.timeout(120)

PROBLEMS = [
    DataPoint(question=f"What is {a} * {b} + 7?", final_answer=str(a * b + 7), domain="arith_tool_test")
    for a, b in [(1234, 5678), (987, 654), (111, 222), (31, 37)]
]


def _env(**kw) -> ToolEnv:
    return ToolEnv(PROBLEMS, seed=0, timeout_s=kw.pop("timeout_s", 5.0), **kw)


def _fenced(code: str) -> str:
    return f"Let me compute.\n```python\n{code}\n```"


def _computation(question: str) -> str:
    a, b = (int(x) for x in question.split("What is ")[1].split(" + 7")[0].split(" * "))
    return f"print({a} * {b} + 7)"


# -------------------------------------------------------------------------------- the turn rule, read


def test_a_turn_is_read_as_call_answer_or_neither() -> None:
    assert parse_turn({"content": _fenced("print(1)")}).kind is TurnKind.call
    assert parse_turn({"content": "so \\boxed{3}"}).kind is TurnKind.answer
    assert parse_turn({"content": "I think about it."}).kind is TurnKind.neither
    both = parse_turn({"content": "\\boxed{3}\n" + _fenced("print(3)")})
    assert both.kind is TurnKind.call  # a turn with a call is a call, whatever else it says
    openai = parse_turn({"content": None, "tool_calls": [tool_call("print(2)", id="c9")]})
    assert openai.kind is TurnKind.call and openai.calls[0].code == "print(2)" and openai.calls[0].id == "c9"


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"content": "```python\nprint(1)"}, "not closed"),
        ({"content": "```python\n\n```"}, "empty"),
        ({"tool_calls": [tool_call("", name="bash")]}, "unknown tool 'bash'"),
        ({"tool_calls": [tool_call("", arguments="{not json")]}, "not valid JSON"),
        ({"tool_calls": [tool_call("", arguments=json.dumps({"source": "print(1)"}))]}, '{"code"'),
        ({"tool_calls": ["garbage"]}, "must be an object"),
    ],
)
def test_a_malformed_call_is_read_with_a_clear_message(message: dict, says: str) -> None:
    [call] = parse_turn(message).calls
    assert call.error is not None and says in call.error


def test_the_python_tool_schema_requires_code() -> None:
    function = PYTHON_TOOL["function"]
    assert function["name"] == "python" and function["parameters"]["required"] == ["code"]


# ----------------------------------------------------------------------------------- episodes, scripted


async def test_a_scripted_policys_tool_output_reaches_its_next_observation_and_its_answer_is_rewarded(
    tmp_path,
) -> None:
    env = _env(tool_call_cost=0.1)
    observations = await env.reset(batch_size=4)
    first = await env.step({o.index: _fenced(_computation(o.question)) for o in observations})
    for obs, result in zip(observations, first):
        expected = env.episodes[obs.index].datapoint.final_answer
        assert not result.done and result.messages[0]["role"] == "user"
        assert expected in result.text and result.text.startswith("[python] ok")
        assert env.episodes[obs.index].messages[-1] == result.messages[0]  # kept as exchanged
    answers = {
        r.index: f"The code printed it: \\boxed{{{r.text.split('stdout:')[1].strip()}}}" for r in first
    }
    answers[3] = "\\boxed{0}"  # one wrong answer
    second = await env.step(answers)
    by_index = {r.index: r for r in second}
    for i in range(3):
        assert by_index[i].done and not by_index[i].truncated and by_index[i].end == "answer"
        assert by_index[i].rewards["correctness"] == 1.0 and by_index[i].rewards["tool_calls"] == -0.1
        assert by_index[i].reward == pytest.approx(0.9)
    assert by_index[3].rewards["correctness"] == 0.0
    episode = env.episodes[0]
    assert [m["role"] for m in episode.messages] == ["user", "assistant", "user", "assistant"]
    assert episode.result is not None and episode.result.verification.correct
    # save and load: the same episodes, and replaying the messages gives the same reward
    loaded = load_episodes(env.save(tmp_path / "batch.jsonl"))
    assert [e.model_dump() for e in loaded] == [e.model_dump() for e in env.episodes]
    replay = await env.score(loaded[0].messages, loaded[0].datapoint)
    assert replay.rewards == episode.result.rewards


async def test_openai_tool_calls_through_the_llm_client_get_tool_messages(openai_stub) -> None:
    calls = (tool_call("print(6 * 7)", id="call_a"), tool_call("", id="call_b", name="shell"))
    server = openai_stub([Reply("", finish_reason="tool_calls", tool_calls=calls), Reply("\\boxed{42}")])
    env = ToolEnv([PROBLEMS[0].model_copy(update={"final_answer": "42"})], failed_call_penalty=0.5)
    await env.reset()
    async with LLMClient(base_url=server.base_url, model="scripted") as client:
        completion = await client.chat(env.episodes[0].messages, tools=[PYTHON_TOOL])
        assert completion.tool_calls[0]["function"]["name"] == "python"
        [result] = await env.step({0: completion})
        assert [m["role"] for m in result.messages] == ["tool", "tool"]
        assert [m["tool_call_id"] for m in result.messages] == ["call_a", "call_b"]
        assert (
            "42" in result.messages[0]["content"] and "unknown tool 'shell'" in result.messages[1]["content"]
        )
        completion = await client.chat(env.episodes[0].messages, tools=[PYTHON_TOOL])
        [result] = await env.step({0: completion})
    assert server.requests[1].body["messages"] == env.episodes[0].messages[:-1]  # exactly as exchanged
    assert server.requests[0].body["tools"] == [PYTHON_TOOL]
    assert result.done and result.rewards == {"correctness": 1.0, "tool_calls": 0.0, "failed_calls": -0.5}


async def test_a_turn_with_neither_is_nudged_and_max_turns_ends_the_episode() -> None:
    env = _env(max_turns=2)
    await env.reset()
    [first] = await env.step(["Hmm, let me think."])
    assert first.messages == [{"role": "user", "content": NUDGE}] and not first.done
    [second] = await env.step(["Still thinking."])
    assert second.done and second.truncated and second.end == "max_turns"
    assert env.episodes[0].result.verification.status == "no_answer"


async def test_a_thousand_tool_calls_end_the_episode_with_a_bounded_reply() -> None:
    env = _env(max_tool_calls=3, tool_call_cost=0.1, failed_call_penalty=0.5)
    await env.reset(batch_size=2)
    flood = {
        "role": "assistant",
        "content": "",
        "tool_calls": [tool_call("print(1)", id=f"c{i}") for i in range(1000)],
    }
    results = await env.step({0: flood, 1: _fenced("print(2)")})
    assert results[0].done and results[0].end == "max_tool_calls"
    assert env.episodes[0].calls_run == 3 and len(env.episodes[0].tool_calls) == 1000
    assert len(results[0].text) < 1000 * 120  # one short line per refused call
    assert results[0].rewards == pytest.approx({"correctness": 0.0, "tool_calls": -0.4, "failed_calls": -0.5})
    assert not results[1].done and "2" in results[1].text  # the batch went on


async def test_hostile_calls_end_in_bounded_observations_and_the_batch_goes_on() -> None:
    attacks = {
        "timeout": "while True:\n    pass",
        "memory_limit": "x = bytearray(8 * 1024**3)\nprint(len(x))",
        "fork": "import os\nfor _ in range(10_000):\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "host": "print(open('/etc/shadow').read())",
        "output": "print('y' * 10_000_000)",
    }
    env = _env(timeout_s=1.0, max_output_chars=500)
    await env.reset(batch_size=len(attacks) + 1)
    actions = {i: _fenced(code) for i, code in enumerate(attacks.values())}
    actions[len(attacks)] = _fenced("print(2 + 2)")
    results = await env.step(actions)
    for (name, _), result in zip(attacks.items(), results):
        assert not result.done, name
        assert result.text.startswith("[python]") and len(result.text) < 5_000, (name, result.text[:300])
    by_name = dict(zip(attacks, results))
    assert "time limit" in by_name["timeout"].text
    assert "memory limit" in by_name["memory_limit"].text or "MemoryError" in by_name["memory_limit"].text
    assert "root:" not in by_name["host"].text
    assert results[-1].text.startswith("[python] ok") and "4" in results[-1].text
    answers = await env.step({i: "\\boxed{4}" for i in range(len(results))})
    assert all(r.done for r in answers)  # every episode still finishes with a reward


async def test_misuse_raises_before_anything_runs() -> None:
    env = _env()
    with pytest.raises(NotResetError):
        await env.step(["\\boxed{1}"])
    await env.reset()
    with pytest.raises(InvalidActionError):
        await env.step({0: {"role": "user", "content": "hi"}})
    await env.step(["\\boxed{1}"])
    with pytest.raises(AlreadySteppedError):
        await env.step(["\\boxed{1}"])


def test_the_gymnasium_face_runs_a_tool_episode_in_text() -> None:
    import gymnasium

    env = gymnasium.make("loong_env/Tool-v0", source=PROBLEMS, max_tool_calls=2, disable_env_checker=True)
    question, info = env.reset(seed=3)
    assert info["messages"] == [{"role": "user", "content": question}]
    observation, reward, terminated, truncated, info = env.step(_fenced(_computation(question)))
    answer = env.unwrapped.core.episodes[0].datapoint.final_answer
    assert answer in observation and not (terminated or truncated) and reward == 0.0
    _, reward, terminated, truncated, info = env.step(f"\\boxed{{{answer}}}")
    assert terminated and not truncated and reward == 1.0 and info["status"] == "correct"
    assert [m["role"] for m in info["messages"]] == ["user", "assistant", "user", "assistant"]


def test_the_reward_server_scores_a_finished_tool_conversation() -> None:
    pytest.importorskip("fastapi")
    import httpx
    from reward_server_helpers import RunningServer

    from loong_env.integrations.reward_server import create_app

    conversation = [
        {"role": "user", "content": "What is 6 * 7?"},
        {"role": "assistant", "content": "", "tool_calls": [tool_call("print(6 * 7)"), tool_call("", name="sh")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[python] ok (0.01 s)\nstdout:\n42"},
        {"role": "tool", "tool_call_id": "call_1", "content": "[python] failed: malformed call: unknown tool"},
        {"role": "assistant", "content": "So \\boxed{42}."},
    ]
    body = {"messages": conversation, "reference": "42", "tool_call_cost": 0.1, "failed_call_penalty": 0.2}
    running = RunningServer(create_app()).start()
    try:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            scored = client.post("/v1/score_conversation", json=body).json()
            unanswered = client.post("/v1/score_conversation", json={**body, "messages": conversation[:4]}).json()
    finally:
        running.stop()
    assert scored["rewards"] == pytest.approx({"correctness": 1.0, "tool_calls": -0.2, "failed_calls": -0.2})
    assert scored["reward"] == pytest.approx(0.6) and scored["answered"] and scored["verdict"]["status"] == "correct"
    assert not unanswered["answered"] and unanswered["rewards"]["correctness"] == 0.0


def _well_formed(messages: list[dict]) -> None:
    """User first; then each assistant turn followed by the env's reply (tool messages answering every
    tool_call id, or one user message), the last assistant turn possibly unanswered."""
    assert messages[0]["role"] == "user" and messages[1]["role"] == "assistant"
    i = 1
    while i < len(messages):
        turn = messages[i]
        assert turn["role"] == "assistant", messages
        ids = [c["id"] for c in turn.get("tool_calls") or []]
        j = i + 1
        replies = []
        while j < len(messages) and messages[j]["role"] != "assistant":
            replies.append(messages[j])
            j += 1
        if ids and replies:
            assert [r["tool_call_id"] for r in replies] == ids and all(r["role"] == "tool" for r in replies)
        elif replies:
            assert len(replies) == 1 and replies[0]["role"] == "user"
        i = j


@pytest.mark.llm
@pytest.mark.timeout(600)
async def test_an_episode_with_the_local_model_ends_with_a_reward_and_well_formed_messages(local_qwen) -> None:
    from loong_env.seeds.dataset import load_seeds
    from loong_env.tools.rollout import fixed_draw, run_tool_episodes

    problems = fixed_draw(load_seeds(), per_domain=1, seed=1, max_difficulty=2)[:2]
    env = ToolEnv(problems, max_turns=2, max_tool_calls=2, max_output_chars=500)
    async with LLMClient(base_url=local_qwen.base_url, model=local_qwen.model, timeout_s=300) as client:
        episodes = await run_tool_episodes(env, client, batch_size=2, seed=0, max_tokens=128, temperature=0.0)
    for episode in episodes:
        assert "error" not in episode.metadata, episode.metadata
        assert episode.done and episode.result is not None and episode.end is not None
        assert set(episode.result.rewards) >= {"correctness", "tool_calls", "failed_calls"}
        _well_formed(episode.messages)
        assert len([m for m in episode.messages if m["role"] == "assistant"]) == episode.turns


def test_loong_eval_measures_prose_and_tool_pass_at_1_per_domain(openai_stub, tmp_path, capsys) -> None:
    from loong_env.cli.main import main

    def script(request):
        if "tools" in request.body and not any(m["role"] == "tool" for m in request.messages):
            return Reply("", finish_reason="tool_calls", tool_calls=(tool_call("print(1 + 1)"),))
        return Reply("It is \\boxed{2}.")

    server = openai_stub(script)
    out = tmp_path / "gap.json"
    common = ["--base-url", server.base_url, "--model", "scripted", "--domains", "logic", "--per-domain", "2"]
    assert main(["eval", *common, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| logic | 2 |" in printed and "pass@1 tools" in printed
    gap = json.loads(out.read_text())
    tools = [o for o in gap["outcomes"] if o["mode"] == "tools"]
    assert len(tools) == 2 and all(o["tool_calls"] == 1 and o["model_calls"] == 2 for o in tools)
    assert {o["mode"] for o in gap["outcomes"]} == {"prose", "tools"}
    assert main(["eval", *common, "--no-tools", "--out", str(out)]) == 0
    assert {o["mode"] for o in json.loads(out.read_text())["outcomes"]} == {"prose"}
