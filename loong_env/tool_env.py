"""ToolEnv: episodes where the policy may run Python in the sandbox before it answers.

An episode is a conversation. It starts with the question (as `SingleStepEnv` words it, plus an instruction
that mentions the tool); then every policy turn is read by one rule (docs/tool_env.md):

- a turn with a tool call is a call: OpenAI-style `tool_calls` of the `python` tool (schema:
  `loong_env.tools.PYTHON_TOOL`), else each fenced ```python block in its text. Each call runs in a fresh
  interpreter in the shared warm sandbox of the problem's requirement set; the env answers with what it
  printed (cut to `max_output_chars`, and says so) or the limit it hit: `tool` messages for `tool_calls`,
  one `user` message for fenced blocks. A malformed call (unknown tool, bad JSON, empty or unclosed block)
  gets an observation saying what is wrong; it never raises.
- a turn with a \\boxed{} answer and no call ends the episode; the answer is judged by the same router,
  verifiers and reward functions as `SingleStepEnv`.
- a turn with neither gets a short nudge, and counts against `max_turns`.

The episode also ends when `max_turns` policy turns are spent, or when a turn asks for a call after
`max_tool_calls` calls were made (calls past the budget are not run). Reward components, each reported:
`correctness` (the verifier's verdict; 0 with no answer), `tool_calls` (-tool_call_cost per call made),
`failed_calls` (-failed_call_penalty per call that failed, was malformed or was over budget), both counted
up to max_tool_calls + 1 so the reward stays bounded, and any extra reward functions; `reward` is their
weighted sum.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loong_env import bridge
from loong_env.env import SingleStepEnv, Source
from loong_env.errors import (
    AlreadySteppedError,
    ConfigError,
    InvalidActionError,
    NotResetError,
    UnknownIndexError,
)
from loong_env.rewards import RewardFn, score_extras
from loong_env.routing import DomainLookup
from loong_env.runs.metrics import MetricsWriter, StepRecord
from loong_env.tools.calls import Turn, TurnKind, parse_turn
from loong_env.tools.episode import Episode, ToolCallRecord, ToolStepResult, load_episodes, save_episodes
from loong_env.tools.python_tool import ToolOutput, malformed, not_run, run_python, tool_sandbox
from loong_env.tools.scoring import read_conversation, shaping
from loong_env.types import DataPoint, Observation, StepResult, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier

if TYPE_CHECKING:
    from loong_env.curriculum import CurriculumSampler
    from loong_env.sandbox import Sandbox

TOOL_INSTRUCTION = (
    "You can run Python to help you: write a ```python code block (or call the `python` tool) and you will "
    "see what it prints. Each run starts fresh, so print every value you need. When you know the answer, "
    "reply with it within \\boxed{} and no code."
)
NUDGE = "Run code with a ```python block (or the `python` tool), or give your final answer within \\boxed{}."
SHAPING = ("tool_calls", "failed_calls")

Message = Mapping[str, Any]
ToolAction = str | Message
ToolActions = Mapping[int, ToolAction] | Sequence[ToolAction | None]


class ToolEnv:
    """A batch of multi-turn episodes in which the policy may call a `python` tool before it answers.

    Args (those shared with SingleStepEnv mean the same there: source, verifier, reward_fns,
    reward_weights, route, domain_config, seed, sampler, metrics):
        instruction: appended to every question (default TOOL_INSTRUCTION; None: the question verbatim).
        system_prompt: an optional system message opening every conversation.
        max_turns: policy turns per episode (answers, calls and nudged turns all count).
        max_tool_calls: calls per episode; a turn asking for more ends the episode.
        tool_call_cost: shaping, subtracted per call made (reward `tool_calls`); 0 turns it off.
        failed_call_penalty: shaping, subtracted per failed / malformed / over-budget call (`failed_calls`).
        max_output_chars: stdout and stderr are each cut to this many characters (head and tail kept).
        timeout_s, memory_mb: the sandbox limits of one call (the defaults share PythonVerifier's pool).
    """

    def __init__(
        self,
        source: Source,
        verifier: Verifier | None = None,
        *,
        reward_fns: Mapping[str, RewardFn] | Sequence[RewardFn] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        instruction: str | None = TOOL_INSTRUCTION,
        system_prompt: str | None = None,
        route: bool = True,
        domain_config: DomainLookup | None = None,
        seed: int | None = None,
        sampler: CurriculumSampler | None = None,
        metrics: MetricsWriter | None = None,
        max_turns: int = 8,
        max_tool_calls: int = 4,
        tool_call_cost: float = 0.0,
        failed_call_penalty: float = 0.0,
        max_output_chars: int = 2000,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
    ) -> None:
        if max_turns < 1 or max_tool_calls < 0 or max_output_chars < 100:
            raise ConfigError(
                "expected max_turns >= 1, max_tool_calls >= 0 and max_output_chars >= 100; got "
                f"{max_turns}, {max_tool_calls}, {max_output_chars}"
            )
        self.core = SingleStepEnv(
            source,
            verifier,
            reward_fns=reward_fns,
            reward_weights=reward_weights,
            instruction=instruction,
            route=route,
            domain_config=domain_config,
            seed=seed,
            sampler=sampler,
        )
        clash = set(SHAPING) & set(self.core.reward_fns)
        if clash:
            raise ConfigError(f"reward names {sorted(clash)} are the env's shaping components; rename yours")
        self.metrics = metrics
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self.max_tool_calls = max_tool_calls
        self.tool_call_cost = tool_call_cost
        self.failed_call_penalty = failed_call_penalty
        self.max_output_chars = max_output_chars
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.steps = 0
        self.episodes: list[Episode] = []
        self._observations: list[Observation] = []
        self._sandboxes: dict[tuple[str, ...], Sandbox] = {}

    @property
    def router(self) -> Any:
        """The verifier router, shared with the inner SingleStepEnv."""
        return self.core.router

    # ---------------------------------------------------------------------------------------- reset

    async def start(self) -> None:
        """Warm the verifiers (as SingleStepEnv.start); sandboxes start on their first call."""
        await self.core.start()

    async def reset(self, *, batch_size: int = 1, seed: int | None = None) -> list[Observation]:
        """Draw `batch_size` problems (as SingleStepEnv.reset) and open one conversation each.

        Each episode's opening messages are in `env.episodes[i].messages`; send them to the policy.
        """
        observations = await self.core.reset(batch_size=batch_size, seed=seed)
        opening = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        self._observations = observations
        self.episodes = [
            Episode(
                index=obs.index,
                datapoint=dp,
                messages=[*opening, {"role": "user", "content": obs.question}],
            )
            for obs, dp in zip(observations, self.core.datapoints)
        ]
        return observations

    @property
    def pending(self) -> list[int]:
        """Indices of episodes still running."""
        return [e.index for e in self.episodes if not e.done]

    # ----------------------------------------------------------------------------------------- step

    async def step(self, actions: ToolActions) -> list[ToolStepResult]:
        """Take one policy turn for some running episodes, all at once; one result per action, in order.

        An action is the assistant's turn: its text, or an OpenAI assistant message (a dict with
        `content` and optional `tool_calls`, e.g. `Completion.message()`). `actions` is `{index: action}`
        or a list by index (None skips an episode). Misuse (no reset, unknown index, a finished episode, a
        non-message action) raises before anything runs; whatever the policy wrote never does.
        """
        pairs = self._parse(actions)
        results = list(await asyncio.gather(*(self._advance(self.episodes[i], m) for i, m in pairs)))
        self.steps += 1
        finished = [self.episodes[r.index].result for r in results if r.done]
        done = [r for r in finished if r is not None]
        if done:
            if self.core.sampler is not None:
                self.core.sampler.record(done)
            if self.metrics is not None:
                self.metrics.write(StepRecord.from_results(self.steps, done))
        return results

    def _parse(self, actions: Any) -> list[tuple[int, dict[str, Any]]]:
        """Normalise the accepted action forms to (index, assistant message) pairs; check every index."""
        if not self.episodes:
            raise NotResetError("step() called before reset(): call `await env.reset()` first")
        if isinstance(actions, Mapping):
            items = list(actions.items())
        elif isinstance(actions, Sequence) and not isinstance(actions, str):
            items = [(i, a) for i, a in enumerate(actions) if a is not None]
        else:
            raise InvalidActionError(
                f"step() takes {{index: action}} or a list of actions by index; got {type(actions).__name__}"
            )
        pairs = []
        seen: set[int] = set()
        for index, action in items:
            if not isinstance(index, int) or not 0 <= index < len(self.episodes):
                raise UnknownIndexError(
                    f"action index {index!r} is not in the current batch (valid: 0..{len(self.episodes) - 1})"
                )
            if index in seen:
                raise AlreadySteppedError(f"index {index} appears more than once in this step() call")
            if self.episodes[index].done:
                raise AlreadySteppedError(f"episode {index} is done; call reset() for new episodes")
            seen.add(index)
            pairs.append((index, as_message(action, index)))
        return pairs

    async def _advance(self, episode: Episode, message: dict[str, Any]) -> ToolStepResult:
        """One policy turn of one episode: run its calls, or judge its answer, or nudge."""
        episode.messages.append(message)
        episode.turns += 1
        turn = parse_turn(message, first_id=len(episode.tool_calls) + 1)
        reply: list[dict[str, Any]] = []
        end = None
        if turn.kind is TurnKind.call:
            reply, over_budget = await self._run_calls(episode, turn)
            end = "max_tool_calls" if over_budget else None
        elif turn.kind is TurnKind.answer:
            end = "answer"
        else:
            reply = [{"role": "user", "content": NUDGE}]
        if end is None and episode.turns >= self.max_turns:
            end = "max_turns"
        episode.messages.extend(reply)
        if end is not None:
            answer = turn.content if end == "answer" else None
            counted = episode.tool_calls[: self.max_tool_calls + 1]  # the budget and the call that broke it
            failed = sum(c.failed for c in counted)
            episode.result = await self._score(
                episode.datapoint, answer, len(episode.tool_calls), failed, end, episode.index
            )
            episode.done, episode.end = True, end  # type: ignore[assignment]
        result = episode.result
        return ToolStepResult(
            index=episode.index,
            messages=reply,
            text="\n\n".join(str(m["content"]) for m in reply),
            done=episode.done,
            truncated=episode.truncated,
            reward=result.reward if result is not None else 0.0,
            rewards=dict(result.rewards) if result is not None else {},
            end=episode.end,
        )

    async def _run_calls(self, episode: Episode, turn: Turn) -> tuple[list[dict[str, Any]], bool]:
        """Run a turn's calls in order, within the budget; (the env's reply messages, budget exceeded)."""
        outputs: list[ToolOutput] = []
        over_budget = False
        for call in turn.calls:
            if len(episode.tool_calls) >= self.max_tool_calls:
                out, over_budget = not_run(self.max_tool_calls), True
            elif call.error is not None:
                out = malformed(call.error)
            else:
                out = await self._run(episode.datapoint, call.code)
            outputs.append(out)
            episode.tool_calls.append(
                ToolCallRecord(
                    id=call.id,
                    turn=episode.turns,
                    form=call.form,
                    code=call.code,
                    status=out.status,
                    failed=out.failed,
                    duration_s=out.duration_s,
                    truncated=out.truncated,
                )
            )
        if turn.calls[0].form == "tool_calls":
            return [
                {"role": "tool", "tool_call_id": call.id, "content": out.text}
                for call, out in zip(turn.calls, outputs)
            ], over_budget
        if len(outputs) == 1:
            return [{"role": "user", "content": outputs[0].text}], over_budget
        parts = [f"Block {k}:\n{out.text}" for k, out in enumerate(outputs, 1)]
        return [{"role": "user", "content": "\n\n".join(parts)}], over_budget

    async def _run(self, datapoint: DataPoint, code: str) -> ToolOutput:
        """One call in the warm sandbox of the problem's requirements; a broken sandbox is an observation."""
        sandbox = self._sandbox(self.router.key(datapoint).requirements)
        return await run_python(code, sandbox, max_chars=self.max_output_chars)

    def _sandbox(self, requirements: Sequence[str]) -> Sandbox:
        key = tuple(sorted(requirements))
        if key not in self._sandboxes:
            from loong_env.seeds.dataset import warmup_rationales

            self._sandboxes[key] = tool_sandbox(
                key, timeout_s=self.timeout_s, memory_mb=self.memory_mb, warmup=warmup_rationales(key)
            )
        return self._sandboxes[key]

    async def _score(
        self, datapoint: DataPoint, answer: str | None, calls: int, failed: int, end: str, index: int = 0
    ) -> StepResult:
        """The verdict on the final answer plus the shaping terms, as a SingleStepEnv StepResult."""
        name = None
        if answer is not None:
            verification, name = await self.router.judge(answer, self.router.key(datapoint))
        else:
            verification = VerificationResult(
                status=VerificationStatus.no_answer,
                reward=0.0,
                reference=datapoint.final_answer,
                reason=f"the episode ended at {end} without a \\boxed{{}} answer",
            )
        extras, errors = await score_extras(self.core.reward_fns, answer or "", datapoint, verification)
        calls = min(calls, self.max_tool_calls + 1)  # a bounded reward, however many calls were asked for
        failed = min(failed, calls)
        rewards = {
            "correctness": float(verification.reward),
            **shaping(calls, failed, cost=self.tool_call_cost, penalty=self.failed_call_penalty),
            **extras,
        }
        weights = self.core.reward_weights
        live = index < len(self._observations) and self._observations[index].datapoint_id == datapoint.id
        return StepResult(
            observation=self._observations[index] if live else self.core._observe(index, datapoint),
            datapoint=datapoint,
            verification=verification,
            verifier=name,
            reward=sum(weights.get(k, 1.0) * v for k, v in rewards.items()),
            rewards=rewards,
            reward_errors=errors,
        )

    async def score(self, messages: Sequence[Message], datapoint: DataPoint) -> StepResult:
        """Score a finished conversation (a replayed episode, or one a trainer ran) by the same rule: the
        last assistant turn is the answer if it is one; calls are counted from the assistant turns,
        failures from the env's `[python] failed` observations."""
        facts = read_conversation(messages)
        end = "answer" if facts.answer is not None else "max_turns"
        return await self._score(datapoint, facts.answer, facts.tool_calls, facts.failed_calls, end)

    # ------------------------------------------------------------------------------- saving, loading

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the current batch of episodes (messages, calls, rewards) as JSON Lines, atomically."""
        return save_episodes(path, self.episodes)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> list[Episode]:
        """Read a batch `save` wrote, for replay (`score(ep.messages, ep.datapoint)`) or a trainer."""
        return load_episodes(path)

    # ------------------------------------------------------------------------------------- sync face

    def reset_sync(self, *, batch_size: int = 1, seed: int | None = None) -> list[Observation]:
        """Blocking twin of `reset`; safe inside a running event loop."""
        return bridge.run(self.reset(batch_size=batch_size, seed=seed))

    def step_sync(self, actions: ToolActions) -> list[ToolStepResult]:
        """Blocking twin of `step`; safe inside a running event loop."""
        return bridge.run(self.step(actions))

    def score_sync(self, messages: Sequence[Message], datapoint: DataPoint) -> StepResult:
        """Blocking twin of `score`."""
        return bridge.run(self.score(messages, datapoint))


def as_message(action: Any, index: int) -> dict[str, Any]:
    """The assistant message of an action: text becomes {"role": "assistant", "content": text}; a message
    (or anything with `.message()`, like an LLM Completion) is kept as given."""
    if isinstance(action, str):
        return {"role": "assistant", "content": action}
    if callable(getattr(action, "message", None)):
        action = action.message()
    if isinstance(action, Mapping):
        role = action.get("role", "assistant")
        if role != "assistant":
            raise InvalidActionError(f"the action for index {index} has role {role!r}; expected 'assistant'")
        return {"role": "assistant", **action}
    raise InvalidActionError(
        f"the action for index {index} is a {type(action).__name__}; expected the assistant's text or message"
    )
