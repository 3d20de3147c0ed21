"""Pass rates that follow the policy: a decayed per-item pass rate from the rewards the env hands out.

    env = SingleStepEnv(seeds, sampler=CurriculumSampler(group_size=4), filter_zero_variance=True)
    env.pass_rates.pass_rate(datapoint_id), env.pass_rates.rates()      # running, saved with the env
    env.skipped                                                          # items the last reset() put back

Each item keeps a decayed reward sum and a decayed answer count: at every group of its answers (a group is
the answers to one datapoint id within one `step()`, see loong_env.runs.diagnostics) both are multiplied by
`decay` before the group is added, so the rate follows a policy that changes, and its weight is the
effective number of recent answers. The item also keeps whether each of its latest `window` groups of two
or more answers had zero reward variance (all answers scored the same, so GRPO learns nothing from it).

The filter (`SingleStepEnv(filter_zero_variance=True)`) skips an item while all of its latest `window`
groups had zero variance, the newest no more than `max_age` steps ago; older evidence is forgotten, so a
skipped item is served again later and re-measured against the policy as it is by then.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import ConfigError
from loong_env.runs.diagnostics import has_zero_variance, reward_groups, zero_variance_fraction
from loong_env.types import DataPoint, StepResult

STATE_VERSION = 1
REDRAW_ROUNDS = 8


class PassRateConfig(BaseModel):
    """How fast a pass rate forgets, and what evidence the zero-variance filter reads."""

    model_config = ConfigDict(extra="forbid")

    decay: float = Field(default=0.8, gt=0.0, lt=1.0, description="Weight the past keeps at each new group.")
    window: int = Field(default=2, ge=1, description="Latest groups of an item the filter reads.")
    max_age: int | None = Field(
        default=50, ge=1, description="Steps after which zero-variance evidence is forgotten (None: never)."
    )


class ItemPassRate(BaseModel):
    """One item's running record."""

    reward: float = Field(default=0.0, description="Decayed sum of its pass scores.")
    weight: float = Field(default=0.0, description="Decayed count of its answers.")
    answers: int = Field(default=0, description="Answers seen, undecayed.")
    groups: list[tuple[int, bool]] = Field(
        default_factory=list, description="(step, zero variance) of its latest groups of >= 2 answers."
    )

    @property
    def pass_rate(self) -> float | None:
        return self.reward / self.weight if self.weight > 0 else None


class PassRateTracker:
    """Per-item decayed pass rates and zero-variance history, fed one step's answers at a time."""

    def __init__(self, config: PassRateConfig | None = None, **knobs: Any) -> None:
        if config is not None and knobs:
            raise ConfigError(f"pass either config= or keyword knobs, not both (got {sorted(knobs)})")
        self.config = config or PassRateConfig(**knobs)
        self.items: dict[str, ItemPassRate] = {}

    def record_results(self, step: int, results: Sequence[StepResult]) -> float | None:
        """Learn from one env step: pass = the correctness reward, variance = of the total reward."""
        return self.record(
            step,
            [(r.datapoint.id, float(r.reward)) for r in results],
            passes=[float(r.rewards.get("correctness", r.verification.reward)) for r in results],
        )

    def record(
        self, step: int, rewards: Iterable[tuple[str, float]], *, passes: Sequence[float] | None = None
    ) -> float | None:
        """Learn from one step's (datapoint id, reward) pairs; returns the step's zero-variance fraction.

        `passes` (one per pair, 0..1) is what counts as passing; default the reward itself.
        """
        pairs = list(rewards)
        scores = list(passes) if passes is not None else [r for _, r in pairs]
        if len(scores) != len(pairs):
            raise ConfigError(f"passes has {len(scores)} entries for {len(pairs)} rewards; expected one each")
        groups = reward_groups(pairs)
        passed = reward_groups((key, s) for (key, _), s in zip(pairs, scores, strict=True))
        decay = self.config.decay
        for key, group in groups.items():
            item = self.items.setdefault(key, ItemPassRate())
            item.reward = decay * item.reward + sum(passed[key])
            item.weight = decay * item.weight + len(group)
            item.answers += len(group)
            if len(group) >= 2:
                item.groups = [*item.groups, (step, has_zero_variance(group))][-self.config.window :]
        return zero_variance_fraction(groups)

    def pass_rate(self, datapoint_id: str) -> float | None:
        """The item's decayed pass rate (None: never answered)."""
        item = self.items.get(datapoint_id)
        return item.pass_rate if item is not None else None

    def rates(self) -> dict[str, float]:
        """Every answered item's decayed pass rate."""
        return {k: v.pass_rate for k, v in self.items.items() if v.pass_rate is not None}

    def is_stale(self, datapoint_id: str, step: int) -> bool:
        """All of the item's latest `window` groups had zero variance, and the newest is recent enough."""
        item = self.items.get(datapoint_id)
        if item is None or len(item.groups) < self.config.window:
            return False
        if not all(zero for _, zero in item.groups):
            return False
        newest = item.groups[-1][0]
        return self.config.max_age is None or step - newest < self.config.max_age

    def stale_ids(self, step: int) -> set[str]:
        """The ids the filter skips at this step."""
        return {key for key in self.items if self.is_stale(key, step)}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (saved inside the env's state_dict)."""
        return {
            "version": STATE_VERSION,
            "config": self.config.model_dump(mode="json"),
            "items": {k: v.model_dump(mode="json") for k, v in self.items.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"pass-rate state version {state.get('version')!r} is not supported "
                f"(expected {STATE_VERSION})"
            )
        self.config = PassRateConfig.model_validate(state["config"])
        self.items = {k: ItemPassRate.model_validate(v) for k, v in state["items"].items()}


Draw = Callable[[int, int], Awaitable[list[DataPoint]]]


async def draw_skipping(
    draw: Draw, n: int, seed: int, skip: Collection[str], *, rounds: int = REDRAW_ROUNDS
) -> tuple[list[DataPoint], int]:
    """n datapoints from `draw(n, seed)` with the items in `skip` put back and redrawn; (items, skipped).

    `skipped` counts the slots of the unfiltered draw that now hold another item. Replacement draws never
    repeat an item already in the batch. When `rounds` draws cannot fill the batch (nearly everything
    is skipped), skipped items fill the rest: the batch size always holds.
    """
    points = await draw(n, seed)
    if not skip:
        return points, 0
    kept = [p for p in points if p.id not in skip]
    put_back = [p for p in points if p.id in skip]
    skipped = len(put_back)
    rng = random.Random(seed)
    for _ in range(rounds):
        if len(kept) >= n:
            break
        held = {p.id for p in kept}
        more = await draw(n - len(kept), rng.getrandbits(63))
        kept += [p for p in more if p.id not in skip and p.id not in held]
    missing = n - len(kept)
    if missing > 0:  # never more than put back: the first draw's fresh items are all kept
        kept += put_back[:missing]
        skipped -= missing
    return kept[:n], skipped
