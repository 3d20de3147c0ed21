"""Evaluators: each turns a trace into scores plus written feedback; a broken one is recorded, never raised.

  VerifierEvaluator   correctness against the reference through `VerifierRouter.judge` (domain plug-ins
                      count), no LLM; its feedback never states the reference answer.
  LLMJudge            an LLM scores correctness, clarity, completeness (0-10, reported /10) with feedback,
                      as structured output; a malformed reply is retried, then recorded as an error.
  RewardModel         numbers from a reward-model endpoint: a simple HTTP one, or an OpenAI-compatible
                      chat endpoint that returns scores (Nemotron-reward style logprobs, or text).

Thresholds name scores as `evaluator.score` (e.g. `verifier.correct`, `judge.clarity`, `reward.score`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loong_env.llm import LLMError, LLMResponseError
from loong_env.pipeline import prompts
from loong_env.pipeline.records import Evaluation, Problem
from loong_env.routing import VerifierRouter
from loong_env.types import VerificationStatus

log = logging.getLogger(__name__)


class Evaluator(ABC):
    """Scores one trace of one problem; `evaluate` never raises for a bad reply, it returns an error."""

    name: str = "evaluator"
    score_names: tuple[str, ...] = ()
    sees_reference: bool = False  # its feedback may carry the reference answer (refinements become hinted)

    @abstractmethod
    async def evaluate(self, problem: Problem, trace: str) -> Evaluation:
        """Scores and feedback for `trace` as an answer to `problem`."""

    def qualified(self) -> list[str]:
        """Score names as thresholds spell them."""
        return [f"{self.name}.{s}" for s in self.score_names]


class VerifierEvaluator(Evaluator):
    """Correctness against the reference answer by the project's verifiers: score `correct` is 1.0 or 0.0."""

    name = "verifier"
    score_names = ("correct",)
    sees_reference = False  # its feedback says right or wrong, never what the right answer is

    def __init__(self, router: VerifierRouter | None = None) -> None:
        self.router = router or VerifierRouter()

    async def evaluate(self, problem: Problem, trace: str) -> Evaluation:
        result, _ = await self.router.judge(trace, problem.key)
        feedback = {
            VerificationStatus.correct: "The final answer is correct.",
            VerificationStatus.incorrect: f"The final answer \\boxed{{{result.extracted}}} is not correct. "
            "Find the mistake in the steps.",
            VerificationStatus.no_answer: "There is no final answer in \\boxed{}.",
            VerificationStatus.error: "The final answer could not be checked; state it plainly in \\boxed{}.",
        }[result.status]
        return Evaluation(
            evaluator=self.name,
            scores={"correct": 1.0 if result.correct else 0.0},
            feedback=feedback,
            status=result.status,
            extracted=result.extracted,
        )


class JudgeReply(BaseModel):
    """The structured reply a judge must give (sent as `response_format`, validated on return)."""

    model_config = ConfigDict(extra="forbid")

    feedback: str = Field(max_length=4000)
    correctness: int = Field(ge=0, le=10)
    clarity: int = Field(ge=0, le=10)
    completeness: int = Field(ge=0, le=10)


class LLMJudge(Evaluator):
    """An LLM grades the trace; `attempts` tries for a reply that fits JudgeReply, then records the garbage.

    `client` is anything with `async chat(messages, **kw) -> Completion` (an LLMClient, or the pipeline's
    rate-limited caller). With `show_reference=True` the judge sees the reference answer, so refinements
    made from its feedback are marked hinted.
    """

    score_names = ("correctness", "clarity", "completeness")

    def __init__(
        self,
        client: Any,
        *,
        name: str = "judge",
        show_reference: bool = False,
        attempts: int = 2,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> None:
        self.client = client
        self.name = name
        self.sees_reference = show_reference
        self.attempts = max(1, attempts)
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def evaluate(self, problem: Problem, trace: str) -> Evaluation:
        messages = prompts.judge(
            problem.question, trace, problem.key.reference if self.sees_reference else None
        )
        tokens, problem_text, raw = 0, "", None
        for attempt in range(1, self.attempts + 1):
            # a retry at temperature 0 would get the same garbage back
            temperature = self.temperature if attempt == 1 else max(self.temperature, 0.7)
            try:
                completion = await self.client.chat(
                    messages, response_format=JudgeReply, max_tokens=self.max_tokens, temperature=temperature
                )
            except LLMError as exc:
                return Evaluation(
                    evaluator=self.name,
                    error=f"judge request failed: {str(exc).splitlines()[0]}",
                    attempts=attempt,
                    tokens=tokens,
                )
            tokens += completion.usage.total_tokens
            try:
                reply = completion.parse(JudgeReply)
            except LLMResponseError as exc:
                problem_text, raw = str(exc).splitlines()[0][:300], completion.text
                log.info("judge: malformed reply (attempt %d/%d): %s", attempt, self.attempts, problem_text)
                continue
            scores = {name: getattr(reply, name) / 10.0 for name in self.score_names}
            return Evaluation(
                evaluator=self.name,
                scores=scores,
                feedback=reply.feedback.strip(),
                attempts=attempt,
                tokens=tokens,
            )
        return Evaluation(
            evaluator=self.name,
            attempts=self.attempts,
            tokens=tokens,
            raw=(raw or "")[:4000],
            error=f"malformed judge reply after {self.attempts} attempts: {problem_text}",
        )


_PAIR = re.compile(r"([A-Za-z_][\w-]*)\s*[:=]\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


class RewardModel(Evaluator):
    """Scores from a reward-model server. `protocol="http"`: POST {question, response} to `url`, and read a
    number, `{"score": x}`, `{"scores": {...}}` or any flat object of numbers. `protocol="openai"`: POST
    a user+assistant chat to `{url}/chat/completions`; read `choices[0].logprobs.content` as name/value
    pairs (Nemotron-reward style), else the message text (`name: value, ...` or a bare number).
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: Literal["http", "openai"] = "http",
        model: str | None = None,
        api_key: str | None = None,
        name: str = "reward",
        score_names: Sequence[str] = ("score",),
        timeout_s: float = 60.0,
        attempts: int = 2,
    ) -> None:
        self.url = url
        self.protocol = protocol
        self.model = model
        self.api_key = api_key
        self.name = name
        self.score_names = tuple(score_names)
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)

    async def evaluate(self, problem: Problem, trace: str) -> Evaluation:
        import httpx

        url, body = self._request(problem, trace)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                    response = await http.post(url, json=body, headers=headers)
                if response.status_code >= 500 or response.status_code == 429:
                    error = f"HTTP {response.status_code} from {url}"
                    await asyncio.sleep(0.2 * attempt)
                    continue
                if response.status_code != 200:
                    error = f"HTTP {response.status_code} from {url}: {response.text[:200]}"
                    break
                scores = self._scores(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                continue
            missing = [s for s in self.score_names if s not in scores]
            if missing:
                got = ", ".join(scores) or "nothing"
                error = f"reward reply from {url} has no {', '.join(missing)} (got {got})"
                break
            shown = ", ".join(f"{k} {v:.3g}" for k, v in scores.items())
            return Evaluation(
                evaluator=self.name,
                scores=scores,
                attempts=attempt,
                feedback=f"Reward model scores: {shown}.",
            )
        return Evaluation(evaluator=self.name, error=error or "no usable reply", attempts=self.attempts)

    def _request(self, problem: Problem, trace: str) -> tuple[str, dict[str, Any]]:
        if self.protocol == "http":
            return self.url, {"question": problem.question, "response": trace}
        url = (
            self.url
            if self.url.rstrip("/").endswith("/chat/completions")
            else self.url.rstrip("/") + "/chat/completions"
        )
        messages = [{"role": "user", "content": problem.question}, {"role": "assistant", "content": trace}]
        return url, {"model": self.model or "reward", "messages": messages}

    def _scores(self, data: Any) -> dict[str, float]:
        if self.protocol == "openai":
            choice = (data.get("choices") or [{}])[0]
            pairs = ((choice.get("logprobs") or {}).get("content")) or []
            if pairs:
                return {str(p["token"]).strip(): float(p["logprob"]) for p in pairs}
            data = (choice.get("message") or {}).get("content") or ""
        if isinstance(data, str):
            found = {k: float(v) for k, v in _PAIR.findall(data)}
            return found or {"score": float(data.strip())}
        if isinstance(data, int | float):
            return {"score": float(data)}
        if isinstance(data, dict):
            if isinstance(data.get("scores"), dict):
                data = data["scores"]
            return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
        raise LLMResponseError(f"unreadable reward reply: {json.dumps(data)[:200]}")


async def evaluate_all(evaluators: Sequence[Evaluator], problem: Problem, trace: str) -> list[Evaluation]:
    """Every evaluator on one trace, concurrently; one that raises becomes an error Evaluation (logged)."""

    async def one(ev: Evaluator) -> Evaluation:
        try:
            return await ev.evaluate(problem, trace)
        except Exception as exc:  # noqa: BLE001 - a broken evaluator must not take the problem down
            log.warning("evaluator %s failed on problem %s: %s", ev.name, problem.id, exc)
            return Evaluation(
                evaluator=ev.name, error=f"evaluator crashed: {type(exc).__name__}: {exc}"[:300]
            )

    return list(await asyncio.gather(*(one(ev) for ev in evaluators)))
