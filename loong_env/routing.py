"""Which verifier judges an answer, decided in one place so the env and every trainer integration agree.

Order: a ```python block with no \\boxed{} runs in PythonVerifier with the key's requirements; else the
key's plug-in (the domain's `verifier = "..."`); else the default text verifier (BoxedAnswerVerifier).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from loong_env.types import AnswerKey, DataPoint, Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier
from loong_env.verifiers.extract import count_boxes

__all__ = [
    "DomainInfo",
    "DomainLookup",
    "VerifierRouter",
    "count_boxes",
    "is_code_response",
    "library_domain",
]

_PY_BLOCK = re.compile(r"```(?:python|py)[ \t]*\r?\n", re.IGNORECASE)


class DomainInfo(Protocol):
    """The slice of a domain config the router reads (loong_env.seeds.dataset.DomainConfig fits)."""

    requirements: list[str]
    answer_tolerance: Tolerance | None
    verifier: str | None
    path: Path | None


DomainLookup = Callable[[str], DomainInfo | None]


def is_code_response(response: str) -> bool:
    """True when the answer is a ```python block and gives no \\boxed{} answer: run it, don't read it."""
    return bool(_PY_BLOCK.search(response)) and count_boxes(response) == 0


def library_domain(name: str) -> DomainInfo | None:
    """The config of a domain of the seed library by name (None when the library has no such domain)."""
    from loong_env.seeds.dataset import library_domain_config

    return library_domain_config(name)


class VerifierRouter:
    """Resolves answer keys and picks the verifier for each answer; holds one verifier per kind.

    `domain_config` finds a domain's config (default: the seed library's); with `route=False` every
    answer goes to the default verifier.
    """

    def __init__(
        self,
        verifier: Verifier | None = None,
        *,
        route: bool = True,
        domain_config: DomainLookup | None = None,
    ) -> None:
        self._verifier = verifier
        self.route = route
        self._domain_config = domain_config or library_domain
        self._configs: dict[str, DomainInfo | None] = {}
        self._code_verifiers: dict[tuple[str, ...], Verifier] = {}
        self.versions: dict[str, str] = {}  # verifier name -> version, as judged

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
            self._configs[domain] = self._domain_config(domain)
        return self._configs[domain]

    def key(self, datapoint: DataPoint) -> AnswerKey:
        """The datapoint's answer key: its own tolerance and requirements, else its domain's."""
        config = self.config(datapoint.domain)
        tolerance = datapoint.answer_tolerance or (config.answer_tolerance if config else None)
        requirements = datapoint.required_dependencies or (config.requirements if config else [])
        return AnswerKey(
            reference=datapoint.final_answer,
            domain=datapoint.domain,
            tolerance=tolerance,
            requirements=list(requirements),
            verifier=config.verifier if config else None,
        )

    def verifier_for(self, key: AnswerKey, response: str) -> Verifier:
        """The verifier for this answer (see the module docstring for the order)."""
        if not self.route:
            return self.default_verifier
        if is_code_response(response):
            return self.code_verifier(key.requirements)
        if key.verifier:
            from loong_env.plugins import load_plugin

            config = self.config(key.domain)
            return load_plugin(key.verifier, domain_dir=config.path if config else None)
        return self.default_verifier

    def code_verifier(self, requirements: list[str]) -> Verifier:
        """One PythonVerifier per requirement set, created on first use."""
        key = tuple(sorted(requirements))
        if key not in self._code_verifiers:
            from loong_env.seeds.dataset import warmup_rationales
            from loong_env.verifiers.python import PythonVerifier

            self._code_verifiers[key] = PythonVerifier(requirements=list(key), warmup=warmup_rationales(key))
        return self._code_verifiers[key]

    async def start(self) -> None:
        """Warm the default verifier, so the first step of a training loop is not an outlier."""
        await self.default_verifier.start()

    async def judge(self, response: str, key: AnswerKey) -> tuple[VerificationResult, str | None]:
        """(verdict, verifier name) for one answer; a crashing verifier becomes an `error` verdict."""
        verifier: Verifier | None = None
        try:
            verifier = self.verifier_for(key, response)
            result = await verifier.verify(response, key.reference, tolerance=key.tolerance)
        except Exception as exc:  # noqa: BLE001  (a broken verifier or plug-in must not take the batch down)
            result = VerificationResult(
                status=VerificationStatus.error,
                reward=0.0,
                reference=key.reference,
                reason=f"verifier failed: {type(exc).__name__}: {exc}",
            )
        name = getattr(verifier, "name", type(verifier).__name__) if verifier is not None else None
        if name is not None:
            self.versions[name] = str(getattr(verifier, "version", "") or "")
        return result, name

    def version(self, name: str | None) -> str | None:
        """The version of the verifier this router last judged with under `name` (None: never used)."""
        return self.versions.get(name) if name is not None else None
