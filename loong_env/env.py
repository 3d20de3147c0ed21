"""SingleStepEnv: the RL environment. reset() hands out questions, step() turns answers into rewards.

One episode is one question and one answer. The API is async and batched because RL trainers verify
hundreds of answers at once; every item is judged on its own, so one garbage answer never costs the
rest of the batch its reward. `run_sync` gives scripts and notebooks a sync face that also works while
an event loop is already running (Jupyter).
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import random
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

from loong_env.errors import AlreadySteppedError, EnvError, NotResetError, UnknownIndexError
from loong_env.types import (
    Action,
    DataPoint,
    Observation,
    StepResult,
    Tolerance,
    VerificationResult,
    VerificationStatus,
)
from loong_env.verifiers.base import Verifier

T = TypeVar("T")

BOXED_INSTRUCTION = "Solve the problem. Put your final answer within \\boxed{}."

_PY_BLOCK = re.compile(r"```(?:python|py)[ \t]*\r?\n", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


# ---------------------------------------------------------------------------------------------- sources


@runtime_checkable
class DataSource(Protocol):
    """Anything that hands out problems one at a time, e.g. a generator from loong_env.generators."""

    async def sample(self) -> DataPoint: ...


class DomainInfo(Protocol):
    """The slice of a domain config the env reads (loong_env.seeds.DomainConfig fits)."""

    requirements: list[str]
    answer_tolerance: Tolerance | None
    verifier: str | None


Source = Sequence[DataPoint] | DataSource
RewardFn = Callable[[str, DataPoint, VerificationResult], float | Awaitable[float]]


def is_code_response(response: str) -> bool:
    """True when the answer is a ```python block and gives no \\boxed{} answer: run it, don't read it."""
    return bool(_PY_BLOCK.search(response)) and not _BOXED.search(response)


def is_well_formatted(response: str) -> bool:
    """The response commits to exactly one \\boxed{} answer, or is runnable code."""
    return is_code_response(response) or len(_BOXED.findall(response)) == 1


def format_reward(response: str, datapoint: DataPoint, verification: VerificationResult) -> float:
    """Extra reward: 1.0 for a well-formatted answer (one \\boxed{}, or code), else 0.0."""
    return 1.0 if is_well_formatted(response) else 0.0


# ------------------------------------------------------------------------------------------- sync face


class _LoopThread:
    """One private event loop in a daemon thread, so sync callers never fight a loop they don't own."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="loong-env-loop", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop())
        return fut.result(timeout)

    def close(self) -> None:
        with self._lock:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None


_RUNNER = _LoopThread()
atexit.register(_RUNNER.close)


def run_sync(coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (Jupyter, TRL callbacks).

    All sync calls share one background loop, so verifiers that hold loop-bound resources (worker
    pools, sandboxes) keep working across calls.
    """
    return _RUNNER.run(coro, timeout)


# ---------------------------------------------------------------------------------------------- the env


class VerifierRouter:
    """Picks the verifier for each answer, so the env and the TRL reward judge exactly alike.

    Order: a ```python block with no \\boxed{} runs in PythonVerifier with the domain's requirements;
    else the domain's plug-in (domain.toml `verifier = "..."`); else the default text verifier.
    With `route=False` every answer goes to the default verifier.
    """

    def __init__(
        self,
        verifier: Verifier | None = None,
        *,
        route: bool = True,
        domain_config: Callable[[str], DomainInfo | None] | None = None,
    ) -> None:
        self._verifier = verifier
        self.route = route
        self._domain_config = domain_config
        self._configs: dict[str, DomainInfo | None] = {}
        self._code_verifiers: dict[tuple[str, ...], Verifier] = {}

    @property
    def default_verifier(self) -> Verifier:
        """The verifier for text answers: the one given, else BoxedAnswerVerifier (created on first use)."""
        if self._verifier is None:
            from loong_env.verifiers.boxed import BoxedAnswerVerifier

            self._verifier = BoxedAnswerVerifier()
        return self._verifier

    def config(self, domain: str) -> DomainInfo | None:
        """The domain's config, looked up once per domain."""
        if domain not in self._configs:
            self._configs[domain] = self._domain_config(domain) if self._domain_config else None
        return self._configs[domain]

    def verifier_for(
        self,
        datapoint: DataPoint,
        response: str,
        *,
        plugin: str | None = None,
        requirements: Sequence[str] | None = None,
    ) -> Verifier:
        """The verifier for this answer; `plugin`/`requirements` override what the domain config says."""
        if not self.route:
            return self.default_verifier
        config = self.config(datapoint.domain)
        if is_code_response(response):
            if requirements is None:
                requirements = datapoint.required_dependencies or (config.requirements if config else [])
            return self.code_verifier(requirements)
        if plugin is None and config is not None:
            plugin = config.verifier
        if plugin:
            from loong_env.plugins import load_plugin

            return load_plugin(plugin)
        return self.default_verifier

    def code_verifier(self, requirements: Sequence[str]) -> Verifier:
        """One PythonVerifier per requirement set, created on first use."""
        key = tuple(sorted(requirements))
        if key not in self._code_verifiers:
            from loong_env.verifiers.python import PythonVerifier

            self._code_verifiers[key] = PythonVerifier(requirements=list(key))
        return self._code_verifiers[key]

    def tolerance(self, datapoint: DataPoint) -> Tolerance | None:
        """The datapoint's own tolerance, else its domain's default, else exact."""
        if datapoint.answer_tolerance is not None:
            return datapoint.answer_tolerance
        config = self.config(datapoint.domain)
        return config.answer_tolerance if config is not None else None

    async def judge(
        self,
        response: str,
        datapoint: DataPoint,
        *,
        plugin: str | None = None,
        requirements: Sequence[str] | None = None,
    ) -> tuple[VerificationResult, str | None]:
        """(verdict, verifier name) for one answer; a crashing verifier becomes an `error` verdict."""
        verifier: Verifier | None = None
        try:
            verifier = self.verifier_for(datapoint, response, plugin=plugin, requirements=requirements)
            result = await verifier.averify(
                response, datapoint.final_answer, tolerance=self.tolerance(datapoint)
            )
        except Exception as exc:  # noqa: BLE001  (a broken verifier or plug-in must not take the batch down)
            result = VerificationResult(
                status=VerificationStatus.error,
                reward=0.0,
                reference=datapoint.final_answer,
                reason=f"verifier failed: {type(exc).__name__}: {exc}",
            )
        name = getattr(verifier, "name", type(verifier).__name__) if verifier is not None else None
        return result, name


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
        domain_config: how to find a domain's config; default `source.domain_config` when it exists.
        seed: seeds the draw of reset() calls made without their own seed.
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
        domain_config: Callable[[str], DomainInfo | None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.source = source
        self._async_source = _is_async_source(source)
        if not self._async_source and not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
            raise TypeError(
                "source must be a SeedDataset / sequence of DataPoint, or an object with `async sample()`; "
                f"got {type(source).__name__}"
            )
        if not self._async_source and len(source) == 0:  # type: ignore[arg-type]
            raise ValueError("source is empty: there is nothing to reset() to")
        if domain_config is None and callable(getattr(source, "domain_config", None)):
            domain_config = source.domain_config  # type: ignore[union-attr]
        self.router = VerifierRouter(verifier, route=route, domain_config=domain_config)
        self.instruction = instruction
        self.reward_fns = _named_reward_fns(reward_fns)
        self.reward_weights = dict(reward_weights or {})
        self._rng = random.Random(seed)
        sampler = getattr(source, "sample", None)
        seeded = (
            callable(sampler) and not self._async_source and "seed" in inspect.signature(sampler).parameters
        )
        self._seeded_sampler: Callable[..., Sequence[DataPoint]] | None = sampler if seeded else None
        self._slots: list[_Slot] | None = None

    # ---------------------------------------------------------------------------------------- reset

    async def reset(self, *, batch_size: int = 1, seed: int | None = None) -> Observation | list[Observation]:
        """Draw `batch_size` independent questions; a batch of 1 returns the Observation itself.

        The same seed gives the same questions. Without a seed the env's own stream continues, so
        successive resets differ but a whole run is reproducible from the constructor's seed.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        datapoints = await self._draw(batch_size, seed)
        self._slots = [_Slot(dp, self._observe(i, dp)) for i, dp in enumerate(datapoints)]
        observations = [slot.observation for slot in self._slots]
        return observations[0] if batch_size == 1 else observations

    async def _draw(self, n: int, seed: int | None) -> list[DataPoint]:
        """n datapoints: seeded independent draws from a sequence, or n awaits of a generator."""
        if self._async_source:
            points = [await self.source.sample() for _ in range(n)]  # type: ignore[union-attr]
        else:
            draw_seed = seed if seed is not None else self._rng.getrandbits(63)
            if self._seeded_sampler is not None:
                points = list(self._seeded_sampler(n, seed=draw_seed))
            else:
                rng = random.Random(draw_seed)
                items = self.source
                idx = (
                    rng.sample(range(len(items)), n)
                    if n <= len(items)
                    else rng.choices(range(len(items)), k=n)
                )
                points = [items[i] for i in idx]  # type: ignore[index]
        for p in points:
            if not isinstance(p, DataPoint):
                raise TypeError(f"source gave a {type(p).__name__}, expected loong_env.types.DataPoint")
        return points

    def _observe(self, index: int, dp: DataPoint) -> Observation:
        question = dp.question if not self.instruction else f"{dp.question}\n\n{self.instruction}"
        info = {"difficulty": dp.difficulty, "tags": list(dp.tags)}
        return Observation(index=index, question=question, domain=dp.domain, datapoint_id=dp.id, info=info)

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

    async def step(
        self, action: Action | str | Sequence[Action] | Mapping[int, str]
    ) -> StepResult | list[StepResult]:
        """Judge answers to the current batch; partial batches are fine, each index once.

        `action` is an Action, a plain string (answers index 0 of a batch of 1), a list of Actions, or
        `{index: response}`. A single Action or string returns one StepResult, otherwise a list in the
        order given. Misuse (no reset, unknown or repeated index) raises before anything is judged.
        """
        single = isinstance(action, Action | str)
        pairs = self._parse(action)
        slots = self._claim(pairs)
        results = list(
            await asyncio.gather(*(self._judge(slot, response) for slot, (_, response) in zip(slots, pairs)))
        )
        return results[0] if single else results

    def _parse(self, action: Any) -> list[tuple[int, str]]:
        """Normalise every accepted action form to (index, response) pairs."""
        if isinstance(action, str):
            if self._slots is not None and len(self._slots) != 1:
                raise EnvError(
                    f"a plain string answers a batch of 1, but the current batch has {len(self._slots)} items; "
                    "pass Action(index=i, llm_response=...) or {index: response}"
                )
            return [(0, action)]
        if isinstance(action, Action):
            return [(action.index, action.llm_response)]
        if isinstance(action, Mapping):
            pairs = list(action.items())
        elif isinstance(action, Sequence):
            pairs = []
            for i, a in enumerate(action):
                if not isinstance(a, Action):
                    raise TypeError(f"actions[{i}] is a {type(a).__name__}, expected loong_env.types.Action")
                pairs.append((a.index, a.llm_response))
        else:
            raise TypeError(
                f"step() takes an Action, a str, a list of Actions or {{index: response}}; got {type(action).__name__}"
            )
        for index, response in pairs:
            if not isinstance(index, int) or isinstance(index, bool):
                raise TypeError(f"action index must be an int, got {index!r}")
            if not isinstance(response, str):
                raise TypeError(f"response for index {index} must be a str, got {type(response).__name__}")
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
        errors: dict[str, str] = {}
        verification, verifier_name = await self.router.judge(response, dp)
        rewards = {"correctness": float(verification.reward)}
        for name, fn in self.reward_fns.items():
            try:
                value = fn(response, dp, verification)
                if inspect.isawaitable(value):
                    value = await value
                rewards[name] = float(value)
            except Exception as exc:  # noqa: BLE001  (a user reward fn failing stays in its item)
                rewards[name] = 0.0
                errors[name] = f"{type(exc).__name__}: {exc}"
        total = sum(self.reward_weights.get(k, 1.0) * v for k, v in rewards.items())
        info: dict[str, Any] = {
            "datapoint": dp,
            "verification": verification,
            "verifier": verifier_name,
        }
        if errors:
            info["reward_errors"] = errors
        return StepResult(observation=slot.observation, reward=total, rewards=rewards, done=True, info=info)

    # -------------------------------------------------------------------------------- verifier choice

    def verifier_for(self, datapoint: DataPoint, response: str) -> Verifier:
        """Which verifier judges this answer (see VerifierRouter)."""
        return self.router.verifier_for(datapoint, response)

    @property
    def default_verifier(self) -> Verifier:
        """The verifier for text answers: the one given, else BoxedAnswerVerifier."""
        return self.router.default_verifier

    # ------------------------------------------------------------------------------------- sync face

    def reset_sync(self, *, batch_size: int = 1, seed: int | None = None) -> Observation | list[Observation]:
        """reset() for scripts and notebooks; safe inside a running event loop."""
        return run_sync(self.reset(batch_size=batch_size, seed=seed))

    def step_sync(
        self, action: Action | str | Sequence[Action] | Mapping[int, str]
    ) -> StepResult | list[StepResult]:
        """step() for scripts and notebooks; safe inside a running event loop."""
        return run_sync(self.step(action))


def _is_async_source(source: Any) -> bool:
    sampler = getattr(source, "sample", None)
    return sampler is not None and inspect.iscoroutinefunction(sampler)


def _named_reward_fns(fns: Mapping[str, RewardFn] | Sequence[RewardFn] | None) -> dict[str, RewardFn]:
    """Extra reward functions by name; 'correctness' is reserved for the verifier's reward."""
    if fns is None:
        return {}
    named = (
        dict(fns)
        if isinstance(fns, Mapping)
        else {getattr(f, "__name__", f"reward_{i}"): f for i, f in enumerate(fns)}
    )
    if "correctness" in named:
        raise ValueError("'correctness' is the verifier's reward; give your reward function another name")
    for name, fn in named.items():
        if not callable(fn):
            raise TypeError(f"reward function {name!r} is not callable")
    return named
