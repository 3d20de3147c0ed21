"""The gymnasium face: `gymnasium.make("loong_env/SingleStep-v0", domains=[...])`.

Observations and actions are text. One episode is one question: reset() gives the question, step(text)
judges the answer and always terminates. Under the hood it drives SingleStepEnv through loong_env.bridge,
so it also works inside Jupyter, where an event loop is already running, and in forked vector-env workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium
from gymnasium import spaces

from loong_env import bridge
from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv, Source
from loong_env.errors import ConfigError, InvalidActionError, NotResetError
from loong_env.types import Action, Observation, StepResult
from loong_env.verifiers.base import Verifier

if TYPE_CHECKING:
    from loong_env.curriculum import CurriculumSampler
    from loong_env.runs.metrics import MetricsWriter

ENV_ID = "loong_env/SingleStep-v0"
MAX_QUESTION_CHARS = 65_536
MAX_ANSWER_CHARS = 65_536


def _ranges(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(c) for a, b in spans for c in range(a, b + 1))


# Every printable character of the Basic Multilingual Plane (LaTeX, Greek, maths operators, CJK, ...),
# the mathematical alphanumerics (𝑥, 𝔽) and emoji, plus the whitespace models write. Surrogates and
# private-use code points are left out: they are not text.
BASE_CHARSET: frozenset[str] = frozenset(
    c
    for c in _ranges(
        (0x09, 0x0A),
        (0x0D, 0x0D),
        (0x20, 0x7E),
        (0xA0, 0xD7FF),
        (0xF900, 0xFFFD),
        (0x1D400, 0x1D7FF),
        (0x1F300, 0x1FAFF),
    )
    if c.isprintable() or c in "\t\n\r"
)


def text_space(
    max_length: int, extra_chars: frozenset[str] = frozenset(), *, min_length: int = 0
) -> spaces.Text:
    """A Text space over BASE_CHARSET plus `extra_chars` (e.g. every character the seeds use)."""
    return spaces.Text(max_length, min_length=min_length, charset=BASE_CHARSET | extra_chars)


def gym_source(domains: Sequence[str] | str | None, source: Any, seeds_root: str | None) -> Any:
    """What a gymnasium face draws from: `source` if given, else the seed library (some domains of it)."""
    if source is not None:
        return source
    from loong_env.seeds.dataset import load_seeds

    dataset = load_seeds(root=seeds_root)
    return dataset.filter(domain=domains) if domains is not None else dataset


def checked_render_mode(render_mode: str | None, modes: Sequence[str]) -> str | None:
    """gymnasium's render_mode contract: one of the env's modes, or None."""
    if render_mode is not None and render_mode not in modes:
        raise ConfigError(f"render_mode must be one of {list(modes)} or None, got {render_mode!r}")
    return render_mode


class LoongEnv(gymnasium.Env[str, str]):
    """One verifiable question per episode; reward 1.0 for a correct answer, 0.0 otherwise.

    Args:
        domains: seed domains to draw from (None: every domain under the seeds root).
        source: use this SeedDataset / generator instead of loading seeds.
        verifier: text-answer verifier (None: BoxedAnswerVerifier; plug-ins and code routing as in
            SingleStepEnv).
        seeds_root: where seed folders live (default: the repository's seeds/, or $LOONG_SEEDS_DIR).
        instruction: appended to each question so a plain policy knows to answer in \\boxed{}.
        step_timeout: seconds one step may take before the call gives up (None: no bound).
        sampler: how questions are drawn, e.g. a `loong_env.curriculum.CurriculumSampler` (it learns
            from every answer; one answer per episode is compared with its category's mean reward).
        metrics: a `loong_env.runs.metrics.MetricsWriter` for one `step` record per episode.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        domains: Sequence[str] | str | None = None,
        *,
        source: Source | None = None,
        verifier: Verifier | None = None,
        seeds_root: str | None = None,
        instruction: str | None = BOXED_INSTRUCTION,
        step_timeout: float | None = 300.0,
        render_mode: str | None = None,
        sampler: CurriculumSampler | None = None,
        metrics: MetricsWriter | None = None,
    ) -> None:
        source = gym_source(domains, source, seeds_root)
        self.render_mode = checked_render_mode(render_mode, self.metadata["render_modes"])
        self.core = SingleStepEnv(source, verifier, instruction=instruction, sampler=sampler, metrics=metrics)
        self.step_timeout = step_timeout
        seen: frozenset[str] = frozenset()
        if hasattr(source, "__iter__") and hasattr(source, "__len__"):
            seen = frozenset("".join(o.question for o in source))  # type: ignore[union-attr]
            seen |= frozenset(instruction or "")
        self.observation_space = text_space(MAX_QUESTION_CHARS, seen, min_length=1)
        self.action_space = text_space(MAX_ANSWER_CHARS)
        self._obs: Observation | None = None
        self._last: StepResult | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Draw a question; the same seed always gives the same question."""
        super().reset(seed=seed)
        core_seed = int(self.np_random.integers(0, 2**63 - 1))
        [obs] = bridge.run(self.core.reset(batch_size=1, seed=core_seed), timeout=self.step_timeout)
        self._obs, self._last = obs, None
        info = {
            "datapoint_id": obs.datapoint_id,
            "domain": obs.domain,
            "difficulty": obs.difficulty,
            "tags": list(obs.tags),
        }
        return obs.question, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Judge the answer: (question, reward, terminated=True, truncated=False, info)."""
        if self._obs is None:
            raise NotResetError("step() called before reset(): call env.reset() first")
        if not isinstance(action, str):
            raise InvalidActionError(
                f"the action is the model's answer as a str, got {type(action).__name__}"
            )
        step = self.core.step([Action(index=0, llm_response=action)])
        [result] = bridge.run(step, timeout=self.step_timeout)
        self._last = result
        verification = result.verification
        info = {
            "rewards": dict(result.rewards),
            "status": str(verification.status),
            "extracted": verification.extracted,
            "reason": verification.reason,
            "reference": result.datapoint.final_answer,
            "datapoint_id": self._obs.datapoint_id,
            "domain": self._obs.domain,
            "verifier": result.verifier,
        }
        return self._obs.question, float(result.reward), True, False, info

    def render(self) -> str | None:
        """ansi: the question, and the verdict once answered."""
        if self.render_mode != "ansi" or self._obs is None:
            return None
        text = self._obs.question
        if self._last is not None:
            v = self._last.verification
            text += f"\n-> {v.status} (reward {self._last.reward}): {v.reason}"
        return text
