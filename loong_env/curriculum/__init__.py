"""Self-Evolving Curriculum: choose what to train on next from the learner's progress.

    from loong_env.curriculum import CurriculumSampler
    env = SingleStepEnv(load_seeds(), sampler=CurriculumSampler(group_size=4))

Rooms: `categories` (what a category is; sources that make items of one), `bandit` (the SEC bandit:
TD(0) values on the mean absolute advantage, Boltzmann draws), `sampler` (CurriculumSampler: the env's
way of drawing problems, fed from step results, saved with the env), `simulation` (synthetic learners
with known learning curves, to see what a curriculum does without an LLM), `pass_rates` (the env's running
per-item pass rates and its zero-variance filter).
"""

from loong_env.curriculum.bandit import CurriculumConfig, CurriculumStep, SECBandit, boltzmann, category_gains
from loong_env.curriculum.categories import (
    CategoryKey,
    CategorySource,
    domain_difficulty,
    split_domain_difficulty,
)
from loong_env.curriculum.pass_rates import PassRateConfig, PassRateTracker
from loong_env.curriculum.sampler import ArmStatus, CurriculumSampler, CurriculumState

__all__ = [
    "ArmStatus",
    "CategoryKey",
    "CategorySource",
    "CurriculumConfig",
    "CurriculumSampler",
    "CurriculumState",
    "CurriculumStep",
    "PassRateConfig",
    "PassRateTracker",
    "SECBandit",
    "boltzmann",
    "category_gains",
    "domain_difficulty",
    "split_domain_difficulty",
]
