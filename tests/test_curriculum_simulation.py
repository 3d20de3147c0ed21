"""SEC against uniform sampling on synthetic learners with known per-category learning curves.

The learner (loong_env.curriculum.simulation.default_curves) has eight categories: two learnable now
(success 0.25-0.3), two too hard until those are learned (locked at 0 until their prerequisites reach
0.75), two already saturated (0.95+) and two hopeless (0). Both strategies get the same number of steps
(8 problems x 8 answers each) and the same seeds; uniform draws items uniformly, as the env does by default.
"""

from __future__ import annotations

import pytest

from loong_env.curriculum import CurriculumConfig
from loong_env.curriculum.simulation import SimulationResult, default_curves, simulate_sync

pytestmark = pytest.mark.timeout(60)

SEEDS = (0, 1, 2)
STEPS = 100
MARGIN = 1.25  # SEC's total learning gain must be at least 25% above uniform's, on every seed
LEARNABLE_NOW = ("arithmetic/d2", "logic/d2")
LOCKED_AT_FIRST = ("arithmetic/d3", "logic/d3")
NOTHING_TO_LEARN = ("arithmetic/d1", "logic/d1", "arithmetic/d5", "logic/d5")


@pytest.fixture(scope="module")
def runs() -> dict[int, tuple[SimulationResult, SimulationResult]]:
    return {
        seed: (
            simulate_sync(default_curves(), strategy="sec", steps=STEPS, seed=seed),
            simulate_sync(default_curves(), strategy="uniform", steps=STEPS, seed=seed),
        )
        for seed in SEEDS
    }


def share(result: SimulationResult, categories: tuple[str, ...], start: int, stop: int) -> float:
    shares = result.shares(start, stop)
    return sum(shares[c] for c in categories)


def test_sec_beats_uniform_on_total_learning_gain_by_the_stated_margin(runs):
    for seed, (sec, uniform) in runs.items():
        ratio = sec.total_gain / uniform.total_gain
        print(f"seed {seed}: SEC {sec.total_gain:.3f} vs uniform {uniform.total_gain:.3f} (x{ratio:.2f})")
        assert sec.total_gain >= MARGIN * uniform.total_gain, (seed, sec.total_gain, uniform.total_gain)


def test_sec_first_concentrates_on_what_is_learnable_now(runs):
    for sec, uniform in runs.values():
        assert share(sec, LEARNABLE_NOW, 0, 15) > 0.6  # uniform gives them 2/8
        assert share(uniform, LEARNABLE_NOW, 0, 15) < 0.4


def test_sec_moves_on_once_the_first_categories_saturate(runs):
    for sec, _ in runs.values():
        saturated_at = next(
            i for i, success in enumerate(sec.success) if all(success[c] > 0.9 for c in LEARNABLE_NOW)
        )
        assert saturated_at < 70
        window = (saturated_at, saturated_at + 20)
        assert share(sec, LEARNABLE_NOW, *window) < 0.6 * share(sec, LEARNABLE_NOW, 0, saturated_at)
        assert share(sec, LOCKED_AT_FIRST, *window) > max(0.5, share(sec, LOCKED_AT_FIRST, 0, 15))


def test_sec_spends_little_on_saturated_and_hopeless_categories(runs):
    for sec, uniform in runs.values():
        assert share(sec, NOTHING_TO_LEARN, 0, 50) < 0.5 * share(uniform, NOTHING_TO_LEARN, 0, 50)


def test_arm_values_track_the_learning_gain(runs):
    sec, _ = runs[0]
    assert len(sec.values) == STEPS
    early = sec.values[10]
    assert min(early[c] for c in LEARNABLE_NOW) > max(early[c] for c in NOTHING_TO_LEARN)
    assert all(sec.values[-1][c] < 0.1 for c in LEARNABLE_NOW)  # saturated by the end: no gain left


def test_the_margin_comes_from_the_bandit_not_the_harness():
    """With a huge temperature the same sampler draws uniformly, and the advantage disappears."""
    flat = CurriculumConfig(temperature=1e6)
    for seed in SEEDS:
        sec = simulate_sync(default_curves(), strategy="sec", steps=STEPS, seed=seed, config=flat)
        uniform = simulate_sync(default_curves(), strategy="uniform", steps=STEPS, seed=seed)
        assert sec.total_gain < 1.15 * uniform.total_gain
