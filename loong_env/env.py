"""SingleStepEnv: the RL environment. reset() hands out questions, step() turns answers into rewards.

One episode is one question and one answer. The API is async and batched because RL trainers verify
hundreds of answers at once; every item is judged on its own, so one garbage answer never costs the
rest of the batch its reward. `reset_sync` / `step_sync` are the blocking twins (see loong_env.bridge).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loong_env import bridge
from loong_env.curriculum.pass_rates import PassRateConfig, PassRateTracker, draw_skipping
from loong_env.errors import (
    AlreadySteppedError,
    ConfigError,
    InvalidActionError,
    NotFoundError,
    NotResetError,
    UnknownIndexError,
)
from loong_env.rewards import RewardFn, named_reward_fns, score_extras
from loong_env.routing import DomainLookup, VerifierRouter
from loong_env.runs.metrics import StepRecord
from loong_env.runs.sinks import Sink
from loong_env.types import Action, DataPoint, Observation, StepResult
from loong_env.verifiers.base import Verifier

if TYPE_CHECKING:
    from loong_env.curriculum import CurriculumSampler

BOXED_INSTRUCTION = "Solve the problem. Put your final answer within \\boxed{}."
ENV_STATE_VERSION = 1


@runtime_checkable
class DataSource(Protocol):
    """Anything that hands out problems one at a time, e.g. a generator from loong_env.generators."""

    async def sample(self) -> DataPoint: ...


Source = Sequence[DataPoint] | DataSource
Actions = Action | Sequence[Action] | Mapping[int, str]


class _Slot:
    """One item of the current batch: its datapoint and whether it was answered."""

    __slots__ = ("datapoint", "observation", "stepped")

    def __init__(self, datapoint: DataPoint, observation: Observation) -> None:
        self.datapoint = datapoint
        self.observation = observation
        self.stepped = False


class SingleStepEnv:
    """A batch of independent one-step episodes: reset() draws questions, step() judges answers.

    Args:
        source: a SeedDataset (or any sequence of DataPoint), or a generator with `async sample()`.
        verifier: judges text answers; None means BoxedAnswerVerifier. A domain whose config names a
            plug-in is judged by the plug-in instead, and a response that is a ```python block with no
            \\boxed{} is run by PythonVerifier with the domain's requirements (set `route=False` to
            send every response to `verifier`).
        reward_fns: extra rewards by name (a sequence uses each function's __name__); each is
            f(response, datapoint, verification) -> float, sync or async. `format_reward` is built in.
        reward_weights: weight per reward name; `reward` is the weighted sum (default weight 1.0).
        instruction: text appended to every question (e.g. BOXED_INSTRUCTION); None leaves it verbatim.
        domain_config: how to find a domain's config; default `source.domain_config` when it exists,
            else the seed library's.
        seed: seeds the draw of reset() calls made without their own seed.
        sampler: how problems are drawn, e.g. a `loong_env.curriculum.CurriculumSampler`; it takes this
            env's source (unless it has its own) and learns from every step()'s results. None: seeded
            uniform draws.
        metrics: where each step() call's `step` record goes (verdict counts, zero-variance groups,
            verifiers, time, and the curriculum's arm values when there is a sampler): a
            `loong_env.runs.metrics.MetricsWriter`, or `loong_env.runs.sinks.open_sinks(...)` for the
            metrics file plus trackio / W&B.
        pass_rates: how the running per-item pass rates (`env.pass_rates`, a
            `loong_env.curriculum.pass_rates.PassRateTracker`) forget and what the filter reads.
        filter_zero_variance: reset() skips items whose recent groups (answers to one datapoint id in
            one step(), e.g. a CurriculumSampler's group_size copies) all scored the same, and draws
            others in their place; `env.skipped` says how many the last reset() skipped.
    """

    def __init__(
        self,
        source: Source,
        verifier: Verifier | None = None,
        *,
        reward_fns: Mapping[str, RewardFn] | Sequence[RewardFn] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        instruction: str | None = None,
        route: bool = True,
        domain_config: DomainLookup | None = None,
        seed: int | None = None,
        sampler: CurriculumSampler | None = None,
        metrics: Sink | None = None,
        pass_rates: PassRateConfig | None = None,
        filter_zero_variance: bool = False,
    ) -> None:
        self.source = source
        self._async_source = _is_async_source(source)
        if not self._async_source and not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
            raise ConfigError(
                "source must be a SeedDataset / sequence of DataPoint, or an object with `async sample()`; "
                f"got {type(source).__name__}"
            )
        if not self._async_source and sampler is None and len(source) == 0:  # type: ignore[arg-type]
            raise ConfigError("source is empty: there is nothing to reset() to")
        if domain_config is None and callable(getattr(source, "domain_config", None)):
            domain_config = source.domain_config  # type: ignore[union-attr]
        self.router = VerifierRouter(verifier, route=route, domain_config=domain_config)
        self.instruction = instruction
        self.reward_fns = named_reward_fns(reward_fns)
        self.reward_weights = dict(reward_weights or {})
        self._rng = random.Random(seed)
        sample_fn = getattr(source, "sample", None)
        seeded = (
            callable(sample_fn)
            and not self._async_source
            and "seed" in inspect.signature(sample_fn).parameters
        )
        self._seeded_sampler: Callable[..., Sequence[DataPoint]] | None = sample_fn if seeded else None
        self.sampler = sampler
        if sampler is not None and sampler.source is None:
            sampler.attach(source)  # type: ignore[arg-type]
        self.metrics = metrics
        self.pass_rates = PassRateTracker(pass_rates)
        self.filter_zero_variance = filter_zero_variance
        self.skipped = 0
        self.steps = 0
        self._slots: list[_Slot] | None = None
        self._started = False

    # ---------------------------------------------------------------------------------------- reset

    async def start(self) -> None:
        """Warm the verifiers (sympy workers, unit registry); the first reset() does this if you don't."""
        if not self._started:
            await self.router.start()
            self._started = True

    async def reset(self, *, batch_size: int = 1, seed: int | None = None) -> list[Observation]:
        """Draw `batch_size` independent questions, one Observation each, indexed 0..batch_size-1.

        The same seed gives the same questions (with a sampler: under the same curriculum state). Without
        a seed the env's own stream continues, so successive resets differ but a whole run is
        reproducible from the constructor's seed.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        await self.start()
        datapoints = await self._draw(batch_size, seed)
        self._slots = [_Slot(dp, self._observe(i, dp)) for i, dp in enumerate(datapoints)]
        return [slot.observation for slot in self._slots]

    async def _draw(self, n: int, seed: int | None) -> list[DataPoint]:
        """n datapoints; with the filter on, items the policy's recent groups found all-same are put back."""
        skip = self.pass_rates.stale_ids(self.steps) if self.filter_zero_variance else set()
        if self._async_source and self.sampler is None:
            points, self.skipped = await draw_skipping(self._draw_once, n, 0, skip)  # a generator has no seed
        else:
            draw_seed = seed if seed is not None else self._rng.getrandbits(63)
            if self.sampler is not None:
                points = await self.sampler.draw(n, seed=draw_seed, skip=skip)
                self.skipped = self.sampler.last_skipped
            else:
                points, self.skipped = await draw_skipping(self._draw_once, n, draw_seed, skip)
        for p in points:
            if not isinstance(p, DataPoint):
                raise ConfigError(f"source gave a {type(p).__name__}, expected loong_env.types.DataPoint")
        return points

    async def _draw_once(self, n: int, draw_seed: int) -> list[DataPoint]:
        """n datapoints from the source: a generator's, seeded draws of its own, or seeded uniform ones."""
        if self._async_source:
            return [await self.source.sample() for _ in range(n)]  # type: ignore[union-attr]
        if self._seeded_sampler is not None:
            return list(self._seeded_sampler(n, seed=draw_seed))
        rng = random.Random(draw_seed)
        items = self.source
        size = len(items)  # type: ignore[arg-type]
        idx = rng.sample(range(size), n) if n <= size else rng.choices(range(size), k=n)
        return [items[i] for i in idx]  # type: ignore[index]

    def _observe(self, index: int, dp: DataPoint) -> Observation:
        question = dp.question if not self.instruction else f"{dp.question}\n\n{self.instruction}"
        return Observation(
            index=index,
            question=question,
            domain=dp.domain,
            datapoint_id=dp.id,
            difficulty=dp.difficulty,
            tags=list(dp.tags),
        )

    @property
    def observations(self) -> list[Observation]:
        """The current batch's observations (empty before the first reset)."""
        return [slot.observation for slot in self._slots or []]

    @property
    def datapoints(self) -> list[DataPoint]:
        """The current batch's datapoints, answers included (for logging and datasets, not the policy)."""
        return [slot.datapoint for slot in self._slots or []]

    @property
    def pending(self) -> list[int]:
        """Indices of the current batch still waiting for an answer."""
        return [i for i, slot in enumerate(self._slots or []) if not slot.stepped]

    # ----------------------------------------------------------------------------------------- step

    async def step(self, actions: Actions) -> list[StepResult]:
        """Judge answers to the current batch, one StepResult per answer in the order given.

        `actions` is a list of Actions, `{index: response}`, or one Action. Partial batches are fine,
        each index once; misuse (no reset, unknown or repeated index) raises before anything is judged.
        """
        pairs = self._parse(actions)
        slots = self._claim(pairs)
        t0 = time.perf_counter()
        judged = (self._judge(slot, resp) for slot, (_, resp) in zip(slots, pairs))
        results = list(await asyncio.gather(*judged))
        seconds = time.perf_counter() - t0
        self.steps += 1
        self.pass_rates.record_results(self.steps, results)
        learned = self.sampler.record(results) if self.sampler is not None else None
        if self.metrics is not None:
            curriculum: dict[str, Any] = {}
            if self.sampler is not None:
                curriculum = {"values": self.sampler.values, "probabilities": self.sampler.probabilities()}
            if learned is not None:
                curriculum |= {"drawn": dict(learned.drawn), "gains": dict(learned.gains)}
            self.metrics.write(StepRecord.from_results(self.steps, results, seconds=seconds, **curriculum))
        return results

    def _parse(self, actions: Any) -> list[tuple[int, str]]:
        """Normalise every accepted action form to (index, response) pairs."""
        if isinstance(actions, Action):
            return [(actions.index, actions.llm_response)]
        if isinstance(actions, Mapping):
            pairs = list(actions.items())
        elif isinstance(actions, Sequence) and not isinstance(actions, str):
            pairs = []
            for i, a in enumerate(actions):
                if not isinstance(a, Action):
                    raise InvalidActionError(
                        f"actions[{i}] is a {type(a).__name__}, expected loong_env.Action"
                    )
                pairs.append((a.index, a.llm_response))
        else:
            raise InvalidActionError(
                "step() takes an Action, a list of Actions or {index: response}; "
                f"got {type(actions).__name__}"
            )
        for index, response in pairs:
            if not isinstance(index, int) or isinstance(index, bool):
                raise InvalidActionError(f"action index must be an int, got {index!r}")
            if not isinstance(response, str):
                raise InvalidActionError(
                    f"response for index {index} must be a str, got {type(response).__name__}"
                )
        return pairs

    def _claim(self, pairs: list[tuple[int, str]]) -> list[_Slot]:
        """Check every index before judging any, then mark them answered."""
        if self._slots is None:
            raise NotResetError("step() called before reset(): call `await env.reset()` first")
        seen: set[int] = set()
        slots = []
        for index, _ in pairs:
            if not 0 <= index < len(self._slots):
                raise UnknownIndexError(
                    f"action index {index} is not in the current batch (valid: 0..{len(self._slots) - 1})"
                )
            if index in seen:
                raise AlreadySteppedError(f"index {index} appears more than once in this step() call")
            if self._slots[index].stepped:
                raise AlreadySteppedError(
                    f"index {index} was already stepped in this batch; call reset() for new questions"
                )
            seen.add(index)
            slots.append(self._slots[index])
        for slot in slots:
            slot.stepped = True
        return slots

    async def _judge(self, slot: _Slot, response: str) -> StepResult:
        """Verify one answer and add the extra rewards; any failure stays inside this item."""
        dp = slot.datapoint
        verification, verifier_name = await self.router.judge(response, self.router.key(dp))
        extras, errors = await score_extras(self.reward_fns, response, dp, verification)
        rewards = {"correctness": float(verification.reward), **extras}
        total = sum(self.reward_weights.get(k, 1.0) * v for k, v in rewards.items())
        return StepResult(
            observation=slot.observation,
            datapoint=dp,
            verification=verification,
            verifier=verifier_name,
            verifier_version=self.router.version(verifier_name),
            dataset_version=dp.dataset_version,
            reward=total,
            rewards=rewards,
            reward_errors=errors,
        )

    # ------------------------------------------------------------------------------- saving, loading

    def state_dict(self) -> dict[str, Any]:
        """The env's resumable state as JSON-able data: random stream, step count, curriculum, pass rates."""
        version, internal, gauss = self._rng.getstate()
        return {
            "version": ENV_STATE_VERSION,
            "steps": self.steps,
            "rng": [version, list(internal), gauss],
            "sampler": self.sampler.state_dict() if self.sampler is not None else None,
            "pass_rates": self.pass_rates.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output, so a training run resumes with the same stream and curriculum."""
        if state.get("version") != ENV_STATE_VERSION:
            found = state.get("version")
            raise ConfigError(f"env state version {found!r} is not supported (expected {ENV_STATE_VERSION})")
        if (state.get("sampler") is None) != (self.sampler is None):
            saved = "a curriculum sampler" if state.get("sampler") is not None else "no sampler"
            raise ConfigError(
                f"the saved env state has {saved}; build the env the same way before loading it"
            )
        rng = state["rng"]
        self._rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        self.steps = int(state.get("steps", 0))
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        if state.get("pass_rates") is not None:  # states saved before pass rates existed have none
            self.pass_rates.load_state_dict(state["pass_rates"])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write `state_dict()` as JSON (atomically: a crash never leaves half a file)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.state_dict()), encoding="utf-8")
        os.replace(tmp, target)
        return target

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore what `save(path)` wrote."""
        target = Path(path)
        if not target.is_file():
            raise NotFoundError(f"no saved env state at {target}")
        self.load_state_dict(json.loads(target.read_text(encoding="utf-8")))

    # ------------------------------------------------------------------------------------- sync face

    def start_sync(self) -> None:
        """Blocking twin of `start`."""
        bridge.run(self.start())

    def reset_sync(self, *, batch_size: int = 1, seed: int | None = None) -> list[Observation]:
        """Blocking twin of `reset`; safe inside a running event loop."""
        return bridge.run(self.reset(batch_size=batch_size, seed=seed))

    def step_sync(self, actions: Actions) -> list[StepResult]:
        """Blocking twin of `step`; safe inside a running event loop."""
        return bridge.run(self.step(actions))


def _is_async_source(source: Any) -> bool:
    sampler = getattr(source, "sample", None)
    return sampler is not None and inspect.iscoroutinefunction(sampler)
