"""What an LLMClient talks to and how hard it tries: endpoints, retry policy, prices; merged from all sources.

Precedence: defaults < config file (`[llm]` table of loong.toml) < `LOONG_*` environment variables <
explicit arguments. See docs/llm.md.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loong_env.errors import ConfigError
from loong_env.llm.errors import LLMConfigError
from loong_env.settings import config_file as find_config_file
from loong_env.settings import read_table


class Endpoint(BaseModel):
    """One place to send a request: a server and a model. Unset fields inherit from the primary endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model or '?'}@{self.base_url or 'local'}"


class RetryPolicy(BaseModel):
    """How hard to try one endpoint before moving to the next: attempts, backoff, jitter, Retry-After."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=4, ge=1, description="Attempts per endpoint (1 = no retries).")
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    backoff_max_s: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=0.5, ge=0, le=1, description="Delay is scaled by uniform(1 - jitter, 1).")
    honor_retry_after: bool = True
    max_retry_after_s: float = Field(default=120.0, ge=0, description="Longer Retry-After: give up on it.")
    cooldown_s: float = Field(
        default=30.0,
        ge=0,
        description="After an endpoint exhausts its attempts, later requests skip it this long.",
    )

    def backoff(self, retry_index: int, rng: random.Random) -> float:
        """Delay before retry number `retry_index` (0-based): exponential, capped, with jitter."""
        raw = min(self.backoff_max_s, self.backoff_base_s * self.backoff_multiplier**retry_index)
        return raw * rng.uniform(1.0 - self.jitter, 1.0)


class ModelPrice(BaseModel):
    """USD per million tokens, for cost accounting."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class LLMConfig(BaseModel):
    """Everything LLMClient needs. `base_url=None` means the embedded local model (loong_env.local)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = Field(default=None, description="Remote model id, or a local model name/GGUF path.")
    fallbacks: list[Endpoint] = Field(
        default_factory=list, description="Tried in order when one keeps failing."
    )
    max_concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=300.0, gt=0, description="Per request (one attempt).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    cache_dir: Path | None = Field(default=None, description="On-disk response cache; None disables it.")
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Only used when base_url is None (embedded local model):
    local_n_parallel: int = Field(default=4, ge=1)
    local_n_ctx: int | None = None
    local_threads: int | None = None

    @classmethod
    def load(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LLMConfig:
        """Merge defaults < config file (`[llm]` table) < environment variables < explicit overrides.

        The file is `config_file`, else `$LOONG_CONFIG`, else `./loong.toml` if it exists.
        """
        env = os.environ if env is None else env
        data: dict[str, Any] = {}
        path = Path(config_file) if config_file is not None else find_config_file(env)
        if path is not None:
            data.update(_read_config_file(path))
        for layer in (_from_env(env), {k: v for k, v in overrides.items() if v is not None}):
            if isinstance(layer.get("retry"), dict) and isinstance(data.get("retry"), dict):
                # an env var tweaks one retry knob; the file's other knobs stay
                layer["retry"] = {**data["retry"], **layer["retry"]}
            data.update(layer)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            where = f" (config file {path})" if path else ""
            raise LLMConfigError(f"Invalid LLM configuration{where}:\n{exc}") from exc

    def endpoints(self) -> list[Endpoint]:
        """Primary endpoint first, then the fallbacks, each completed from the primary's fields."""
        primary = Endpoint(base_url=self.base_url, model=self.model, api_key=self.api_key)
        out = [primary]
        for fb in self.fallbacks:
            same_server = fb.base_url is None or fb.base_url == self.base_url
            out.append(
                Endpoint(
                    base_url=fb.base_url if fb.base_url is not None else self.base_url,
                    model=fb.model if fb.model is not None else self.model,
                    api_key=fb.api_key if fb.api_key is not None else (self.api_key if same_server else None),
                )
            )
        return out


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "LOONG_BASE_URL": ("base_url", str),
    "LOONG_MODEL": ("model", str),
    "LOONG_LLM_CONCURRENCY": ("max_concurrency", int),
    "LOONG_LLM_TIMEOUT": ("timeout_s", float),
    "LOONG_LLM_CACHE_DIR": ("cache_dir", Path),
}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, (field, conv) in _ENV_FIELDS.items():
        if env.get(var):
            try:
                out[field] = conv(env[var])
            except ValueError as exc:
                raise LLMConfigError(f"Environment variable {var}={env[var]!r} is not a valid {field}: {exc}")
    key = env.get("LOONG_API_KEY") or env.get("OPENAI_API_KEY")
    if key:
        out["api_key"] = key
    if env.get("LOONG_FALLBACK_MODELS"):
        out["fallbacks"] = [
            {"model": m.strip()} for m in env["LOONG_FALLBACK_MODELS"].split(",") if m.strip()
        ]
    if env.get("LOONG_LLM_MAX_ATTEMPTS"):
        try:
            out["retry"] = {"max_attempts": int(env["LOONG_LLM_MAX_ATTEMPTS"])}
        except ValueError:
            raise LLMConfigError(
                f"Environment variable LOONG_LLM_MAX_ATTEMPTS={env['LOONG_LLM_MAX_ATTEMPTS']!r} "
                "is not a whole number"
            ) from None
    return out


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = read_table(path, "llm", whole_file_fallback=True)
    except ConfigError as exc:
        raise LLMConfigError(f"LLM {exc}") from exc
    if "api_key_env" in data:  # keep secrets out of files: name the variable that holds the key
        data["api_key"] = os.environ.get(data.pop("api_key_env"))
    if isinstance(data.get("cache_dir"), str):
        data["cache_dir"] = (path.parent / Path(data["cache_dir"]).expanduser()).resolve()
    return data
