"""CurriculumSampler: how SingleStepEnv draws problems when a curriculum chooses the category of each.

    sampler = CurriculumSampler(temperature=0.05, group_size=4)
    env = SingleStepEnv(load_seeds(), sampler=sampler)     # the env attaches its source and feeds results
    obs = await env.reset(batch_size=16)                    # 4 problems x 4 copies: 4 GRPO groups
    results = await env.step(actions)                       # the bandit updates from these rewards
    sampler.values, sampler.probabilities(), sampler.history

Groups: the answers of one `step()` call (or one `record()` call) that share a datapoint id form a group;
its advantages are |r - mean of the group|. Set `group_size` so a batch holds several copies of each
problem; a lone answer is compared with its category's running mean reward instead.

With a CategorySource (e.g. `loong_env.generators.CategoryGenerators`), a category holding fewer than
`min_items` items asks the source for more before it is drawn from, instead of starving.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from loong_env.curriculum.bandit import CurriculumConfig, CurriculumStep, SECBandit
from loong_env.curriculum.categories import CategoryKey, CategorySource, domain_difficulty
from loong_env.errors import ConfigError
from loong_env.types import DataPoint, StepResult

STATE_VERSION = 1


class ArmStatus(BaseModel):
    """One category as the curriculum sees it now."""

    category: str
    value: float
    probability: float
    drawn: int = Field(description="Problems drawn from it so far.")
    updates: int = Field(description="Batches whose answers updated its value.")
    items: int = Field(description="Items it holds now.")


class CurriculumState(BaseModel):
    """All a resumed run needs: knobs, arm values and counts, history, random stream, generated items."""

    version: int = STATE_VERSION
    config: CurriculumConfig
    step: int = 0
    bandit: dict[str, dict[str, float]] = Field(default_factory=dict)
    history: list[CurriculumStep] = Field(default_factory=list)
    pending: dict[str, int] = Field(default_factory=dict, description="Drawn since the last update.")
    rng: list[Any] | None = None
    generated: list[DataPoint] = Field(default_factory=list, description="Items a CategorySource made.")


class CurriculumSampler:
    """Draws each problem's category from the SEC bandit, then an item of that category; learns from rewards.

    Args:
        source: the items (a SeedDataset or any sequence of DataPoint) and/or a CategorySource that makes
            items of a category on demand. None: SingleStepEnv attaches its own source.
        key: category of a datapoint; default `"<domain>/d<difficulty>"`.
        config: a CurriculumConfig; or pass its fields as keywords (alpha=, temperature=, group_size=, ...).
    """

    def __init__(
        self,
        source: Sequence[DataPoint] | CategorySource | None = None,
        *,
        key: CategoryKey = domain_difficulty,
        config: CurriculumConfig | None = None,
        **knobs: Any,
    ) -> None:
        if config is not None and knobs:
            raise ConfigError(f"pass either config= or keyword knobs, not both (got {sorted(knobs)})")
        self.config = config or CurriculumConfig(**knobs)
        self.key = key
        self.source: Sequence[DataPoint] | CategorySource | None = None
        self.generator: CategorySource | None = None
        self.bandit = SECBandit((), self.config)
        self.history: list[CurriculumStep] = []
        self.step = 0
        self._pool: dict[str, list[DataPoint]] = defaultdict(list)
        self._category_of: dict[str, str] = {}
        self._generated: list[DataPoint] = []
        self._pending: Counter[str] = Counter()
        self._starved: set[str] = set()
        self.last_skipped = 0  # items the last draw() swapped out because they were in its `skip`
        self._rng = random.Random(self.config.seed)
        if source is not None:
            self.attach(source)

    # ------------------------------------------------------------------------------------- the items

    def attach(self, source: Sequence[DataPoint] | CategorySource) -> None:
        """Take the items of `source` (and its generator face, if it has one); the env calls this."""
        if self.source is not None:
            raise ConfigError("this CurriculumSampler already has a source; use one sampler per env")
        is_generator = isinstance(source, CategorySource)
        is_sequence = hasattr(source, "__len__") and hasattr(source, "__getitem__")
        if not is_generator and not is_sequence:
            raise ConfigError(
                "a curriculum draws by category, so its source must be a sequence of DataPoint or a "
                f"CategorySource (categories() + async generate_for()); got {type(source).__name__}"
            )
        self.source = source
        if is_generator:
            self.generator = source  # type: ignore[assignment]
            for category in source.categories():  # type: ignore[union-attr]
                self.bandit.add_arm(category)
        if is_sequence:
            self.add_items(source)  # type: ignore[arg-type]
        if not self.bandit.arms:
            raise ConfigError("the curriculum's source is empty and can generate no category")

    def add_items(self, items: Sequence[DataPoint]) -> None:
        """File items under their category (duplicates by id are kept once); new categories become arms."""
        for dp in items:
            if not isinstance(dp, DataPoint):
                raise ConfigError(
                    f"curriculum items must be loong_env.types.DataPoint, got {type(dp).__name__}"
                )
            if dp.id in self._category_of:
                continue
            category = self.key(dp)
            self._category_of[dp.id] = category
            self._pool[category].append(dp)
            self.bandit.add_arm(category)
            self._starved.discard(category)

    def items(self, category: str) -> list[DataPoint]:
        """The items a category holds now."""
        return list(self._pool.get(category, []))

    def category_of(self, datapoint: DataPoint | str) -> str | None:
        """The category of a datapoint (or of a datapoint id the sampler holds); None for an unknown id."""
        if isinstance(datapoint, DataPoint):
            return self._category_of.get(datapoint.id) or self.key(datapoint)
        return self._category_of.get(datapoint)

    # -------------------------------------------------------------------------------------- drawing

    async def draw(self, n: int, *, seed: int | None = None, skip: Collection[str] = ()) -> list[DataPoint]:
        """n datapoints: ceil(n / group_size) problems by category, each repeated group_size times in a row.

        The same seed and the same curriculum state give the same problems. Within one draw a category's
        items are distinct while they last. Items whose id is in `skip` (the env's zero-variance filter)
        are replaced by other items of the category the bandit chose, counted in `last_skipped`; a
        category holding nothing else is not chosen this time (unless no category is left).
        """
        if n < 1:
            raise ConfigError(f"n must be a positive int, got {n!r}")
        rng = random.Random(seed) if seed is not None else self._rng
        problems = math.ceil(n / self.config.group_size)
        chosen: list[str] = []
        while len(chosen) < problems:
            arms = [a for a in self.bandit.arms if a not in self._starved and self._can_serve(a)]
            fresh = [a for a in arms if self._has_fresh(a, skip)]
            for category in self.bandit.choose(problems - len(chosen), rng, fresh or arms):
                if await self._ensure_items(category):
                    chosen.append(category)
        picks, skipped = self._pick(chosen, rng, skip)
        self.last_skipped = skipped * self.config.group_size
        self.bandit.count(chosen)
        self._pending.update(chosen)
        copies = [dp for dp in picks for _ in range(self.config.group_size)]
        return copies[:n]

    def _has_fresh(self, category: str, skip: Collection[str]) -> bool:
        """The category can serve an item not in `skip` (a generator can always make one)."""
        if not skip or self.generator is not None:
            return True
        return any(dp.id not in skip for dp in self._pool.get(category, ()))

    def _can_serve(self, category: str) -> bool:
        return bool(self._pool.get(category)) or self.generator is not None

    async def _ensure_items(self, category: str) -> bool:
        """Top a low category up from the CategorySource; False if it has nothing to serve (then starved)."""
        held = len(self._pool.get(category, []))
        if self.generator is not None and held < self.config.min_items:
            made = await self.generator.generate_for(category, self.config.min_items - held)
            made = [dp for dp in made if dp.id not in self._category_of]
            self._generated.extend(made)
            self.add_items(made)
        if self._pool.get(category):
            return True
        self._starved.add(category)
        return False

    def _pick(
        self, chosen: list[str], rng: random.Random, skip: Collection[str] = ()
    ) -> tuple[list[DataPoint], int]:
        """One item per chosen slot, distinct within a category while its items last; skipped items are
        swapped for fresh ones of the same category. Returns (picks, swaps made)."""
        wanted = Counter(chosen)
        queues: dict[str, list[DataPoint]] = {}
        swapped = 0
        for category in sorted(wanted):
            pool = self._pool[category]
            k = wanted[category]
            picks = rng.sample(pool, k) if k <= len(pool) else rng.choices(pool, k=k)
            if skip and any(dp.id in skip for dp in picks):
                taken = {dp.id for dp in picks}
                fresh = [dp for dp in pool if dp.id not in skip]
                spare = [dp for dp in fresh if dp.id not in taken]
                rng.shuffle(spare)
                for i, dp in enumerate(picks):
                    if dp.id in skip and fresh:  # distinct fresh items while they last, then repeats
                        picks[i] = spare.pop() if spare else rng.choice(fresh)
                        swapped += 1
            queues[category] = picks[::-1]
        return [queues[c].pop() for c in chosen], swapped

    # ------------------------------------------------------------------------------------- learning

    def record(self, results: Sequence[StepResult]) -> CurriculumStep | None:
        """Update the bandit from one step()'s results (SingleStepEnv calls this for you)."""
        return self._update(
            [(self.category_of(r.datapoint), r.datapoint.id, float(r.reward)) for r in results]
        )

    def record_rewards(self, rewards: Sequence[tuple[str, float]]) -> CurriculumStep | None:
        """Update from (datapoint id, reward) pairs, e.g. a TRL reward call; unknown ids are skipped."""
        return self._update([(self._category_of.get(i), i, float(r)) for i, r in rewards])

    def _update(self, answers: list[tuple[str | None, str, float]]) -> CurriculumStep | None:
        """One bandit update from (category, group id, reward) triples; None when none is of a known arm."""
        known = [(c, g, r) for c, g, r in answers if c is not None and c in self.bandit.values]
        if not known:
            return None
        gains = self.bandit.update(known)
        self.step += 1
        entry = CurriculumStep(
            step=self.step,
            drawn=dict(self._pending),
            answers=dict(Counter(c for c, _, _ in known)),
            gains=gains,
            mean_reward=sum(r for _, _, r in known) / len(known),
            values=dict(self.bandit.values),
        )
        self._pending.clear()
        self.history.append(entry)
        return entry

    # ------------------------------------------------------------------------------------ inspecting

    @property
    def categories(self) -> list[str]:
        """Every arm, sorted."""
        return self.bandit.arms

    @property
    def values(self) -> dict[str, float]:
        """Each category's current value (its smoothed learning gain)."""
        return dict(self.bandit.values)

    @property
    def counts(self) -> dict[str, int]:
        """Problems drawn per category so far."""
        return dict(self.bandit.pulls)

    def probabilities(self) -> dict[str, float]:
        """The Boltzmann policy the next draw uses, over the categories that can serve an item."""
        return self.bandit.probabilities([a for a in self.bandit.arms if a not in self._starved])

    def overview(self) -> list[ArmStatus]:
        """One row per category: value, probability, draws, updates, items held (best value first)."""
        policy = self.probabilities()
        rows = [
            ArmStatus(
                category=a,
                value=v,
                probability=policy.get(a, 0.0),
                drawn=self.bandit.pulls[a],
                updates=self.bandit.updates[a],
                items=len(self._pool.get(a, [])),
            )
            for a, v in self.bandit.values.items()
        ]
        return sorted(rows, key=lambda r: (-r.value, r.category))

    # -------------------------------------------------------------------------------- saving, loading

    def state_dict(self) -> dict[str, Any]:
        """All of the curriculum's state as a JSON-able dict (see CurriculumState)."""
        version, internal, gauss = self._rng.getstate()
        state = CurriculumState(
            config=self.config,
            step=self.step,
            bandit=self.bandit.state(),
            history=self.history,
            pending=dict(self._pending),
            rng=[version, list(internal), gauss],
            generated=self._generated,
        )
        return state.model_dump(mode="json")

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output: the saved knobs, values, counts, history and generated items."""
        loaded = CurriculumState.model_validate(state)
        if loaded.version != STATE_VERSION:
            raise ConfigError(
                f"curriculum state version {loaded.version} is not supported (expected {STATE_VERSION})"
            )
        self.config = loaded.config
        self.bandit.config = loaded.config
        self.add_items(loaded.generated)
        self._generated = list(loaded.generated)
        self.bandit.load(loaded.bandit)
        self.step = loaded.step
        self.history = list(loaded.history)
        self._pending = Counter(loaded.pending)
        if loaded.rng is not None:
            self._rng.setstate((loaded.rng[0], tuple(loaded.rng[1]), loaded.rng[2]))
