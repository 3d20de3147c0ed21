"""One LLM client for generators, the CoT pipeline and the demo: any OpenAI-compatible server, or the local model.

    client = LLMClient()                                   # embedded local model (no key, no network)
    client = LLMClient(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")   # vLLM
    completion = await client.chat([{"role": "user", "content": "2+2? Answer in \\boxed{}"}], max_tokens=64)
    completion.text, completion.usage, completion.endpoint, completion.cached

The retry policy is ours (the openai client's own retries are off) so it is observable: exponential backoff
with jitter on 429 / 5xx / timeouts / dropped connections, honouring Retry-After; then the next endpoint or
model in `fallbacks`; then an `LLMError` carrying every attempt. Configuration comes from arguments, then
environment variables, then a TOML file (`[llm]` table of `loong.toml`); see docs/llm.md.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import os
import random
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "LOCAL_API_KEY",
    "Attempt",
    "Completion",
    "Endpoint",
    "LLMClient",
    "LLMConfig",
    "LLMConfigError",
    "LLMError",
    "LLMRejectedError",
    "LLMUnavailableError",
    "ModelPrice",
    "RetryPolicy",
    "Usage",
    "UsageStats",
    "json_schema_format",
]

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
_ModelT = TypeVar("_ModelT", bound=BaseModel)
SleepFn = Callable[[float], Awaitable[None]]

LOCAL_API_KEY = "sk-local-no-key-needed"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


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
        path = config_file or env.get("LOONG_CONFIG")
        if path is None and Path("loong.toml").is_file():
            path = "loong.toml"
        if path is not None:
            data.update(_read_config_file(Path(path)))
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
                f"Environment variable LOONG_LLM_MAX_ATTEMPTS={env['LOONG_LLM_MAX_ATTEMPTS']!r} is not a whole number"
            ) from None
    return out


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LLMConfigError(f"LLM config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LLMConfigError(f"LLM config file {path} is not valid TOML: {exc}") from exc
    section = raw.get("llm", raw)
    if not isinstance(section, dict):
        raise LLMConfigError(
            f"LLM config file {path}: expected an [llm] table, found {type(section).__name__}"
        )
    data = dict(section)
    if "api_key_env" in data:  # keep secrets out of files: name the variable that holds the key
        data["api_key"] = os.environ.get(data.pop("api_key_env"))
    if isinstance(data.get("cache_dir"), str):
        data["cache_dir"] = (path.parent / Path(data["cache_dir"]).expanduser()).resolve()
    return data


# --------------------------------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------------------------------


class Usage(BaseModel):
    """Tokens one completion used."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Attempt(BaseModel):
    """One HTTP try: where it went, how it ended, and how long we waited before the next one."""

    endpoint: str
    model: str
    outcome: Literal[
        "ok", "rate_limited", "server_error", "timeout", "connection", "rejected", "bad_response"
    ]
    status_code: int | None = None
    error: str = ""
    retry_after_s: float | None = None
    started_at: float = Field(description="time.time() when the request was sent.")
    duration_s: float = 0.0
    wait_s: float = Field(default=0.0, description="Sleep before the next attempt (0 if none).")


class Completion(BaseModel):
    """An LLM answer plus what it cost and where it came from."""

    text: str
    texts: list[str] = Field(default_factory=list, description="All choices when n > 1 (texts[0] == text).")
    finish_reason: str | None = None
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    endpoint: str = Field(description="base_url that answered.")
    latency_s: float = Field(default=0.0, description="Wall time of the call including retries.")
    cached: bool = False
    attempts: list[Attempt] = Field(default_factory=list)

    def parse(self, output_type: type[_ModelT]) -> _ModelT:
        """The text validated as `output_type` (pair with `response_format=output_type`)."""
        try:
            return output_type.model_validate_json(self.text)
        except ValidationError as exc:
            raise ValueError(
                f"Completion from {self.model} does not fit {output_type.__name__}: {exc}\ntext: {self.text[:300]!r}"
            ) from exc

    def json_value(self) -> Any:
        """The text parsed as JSON (for response_format json_schema / json_object requests)."""
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Completion from {self.model} is not valid JSON ({exc}): {self.text[:200]!r}"
            ) from exc


class UsageStats(BaseModel):
    """Running totals for one client: what a run spent."""

    requests: int = 0
    cache_hits: int = 0
    failures: int = 0
    attempts: int = 0
    retries: int = 0
    fallbacks_used: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, Usage] = Field(default_factory=dict)


class LLMError(RuntimeError):
    """The request could not be completed; `.attempts` says everything that was tried."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts = list(attempts)
        lines = [message] + [
            f"  attempt {i}: {a.model}@{a.endpoint} -> {a.outcome}"
            + (f" HTTP {a.status_code}" if a.status_code else "")
            + (f": {a.error}" if a.error else "")
            for i, a in enumerate(self.attempts, 1)
        ]
        super().__init__("\n".join(lines))


class LLMConfigError(LLMError):
    """The configuration is unusable (bad file, bad value, no model for a remote endpoint)."""


class LLMUnavailableError(LLMError):
    """Every endpoint kept failing with transient errors (429 / 5xx / timeouts / connection) until we gave up."""


class LLMRejectedError(LLMError):
    """The last endpoint refused the request itself (4xx other than 408/409/429, or an unusable answer)."""


def json_schema_format(schema: dict[str, Any] | type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """A `response_format` for structured output from a JSON schema or a pydantic model class."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        name = name or schema.__name__
        schema = schema.model_json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": name or "output", "schema": schema, "strict": True},
    }


# --------------------------------------------------------------------------------------------------
# Response cache
# --------------------------------------------------------------------------------------------------


class _ResponseCache:
    """Files keyed by the full request; the k-th identical request of a run replays the k-th recorded answer.

    Counting occurrences keeps repeated sampling of one prompt diverse while a re-run stays reproducible.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, int] = {}

    def next_slot(self, key: str) -> Path:
        index = self._seen.get(key, 0)
        self._seen[key] = index + 1
        return self.root / key[:2] / f"{key}.{index}.json"

    @staticmethod
    def load(path: Path) -> Completion | None:
        try:
            return Completion.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return None

    @staticmethod
    def store(path: Path, completion: Completion) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(completion)}.tmp")
        tmp.write_text(completion.model_dump_json(exclude={"cached", "latency_s"}))
        os.replace(tmp, path)


def _request_key(model: str, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"model": model, "messages": list(messages), "params": dict(params)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# Failure classification
# --------------------------------------------------------------------------------------------------


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After as seconds: `retry-after-ms`, delta-seconds, or an HTTP date."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _BadResponse(Exception):
    """The server answered 200 with something that is not a chat completion."""


def _classify(exc: BaseException) -> tuple[str, int | None, float | None, bool]:
    """(outcome, status, retry_after_s, retryable) for an exception raised by the openai client."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None, None, True
    if isinstance(exc, openai.APIConnectionError):
        return "connection", None, None, True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after_seconds(exc.response.headers if exc.response is not None else None)
        if status == 429:
            return "rate_limited", status, retry_after, True
        if status >= 500 or status in RETRYABLE_STATUS:
            return "server_error", status, retry_after, True
        return "rejected", status, retry_after, False
    if isinstance(exc, _BadResponse | openai.APIResponseValidationError | json.JSONDecodeError):
        return "bad_response", None, None, True
    if isinstance(exc, TimeoutError):
        return "timeout", None, None, True
    raise exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


class LLMClient:
    """Async chat client with a concurrency limit, retries, fallbacks, usage accounting and a response cache.

    Safe to share across tasks; it rebuilds its HTTP clients if used from a new event loop (e.g. a
    gymnasium wrapper that calls `asyncio.run` per step).
    """

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        fallbacks: Sequence[Endpoint | Mapping[str, Any] | str] | None = None,
        max_concurrency: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        prices: Mapping[str, ModelPrice | Mapping[str, float]] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        sleep: SleepFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "model": model,
            "max_concurrency": max_concurrency,
            "timeout_s": timeout_s,
            "retry": retry,
            "cache_dir": Path(cache_dir) if cache_dir is not None else None,
            "prices": dict(prices) if prices is not None else None,
        }
        if fallbacks is not None:
            overrides["fallbacks"] = [Endpoint(model=f) if isinstance(f, str) else f for f in fallbacks]
        if config is None:
            config = LLMConfig.load(config_file, **overrides)
        else:
            config = config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
            config = LLMConfig.model_validate(config.model_dump())
        if config.base_url is not None and not config.model:
            raise LLMConfigError(
                f"base_url is {config.base_url!r} but no model is set: pass model=..., set LOONG_MODEL, "
                "or `model = ...` in the [llm] table of loong.toml."
            )
        self.config = config
        self.stats = UsageStats()
        self._sleep: SleepFn = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._cache = _ResponseCache(config.cache_dir) if config.cache_dir is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._down_until: dict[str, float] = {}
        self._local: Any = None  # loong_env.local.LocalServer once started

    # -- public API ------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The primary model id (for the local default: the local model's name)."""
        if self.config.base_url is None:
            from loong_env import local

            return (
                self._local.model
                if self._local is not None
                else str(self.config.model or local.DEFAULT_MODEL)
            )
        return str(self.config.model)

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        response_format: Mapping[str, Any] | type[BaseModel] | None = None,
        seed: int | None = None,
        n: int = 1,
        timeout_s: float | None = None,
        **extra: Any,
    ) -> Completion:
        """Send a chat request; retries and falls back per the config; raises an `LLMError` after giving up.

        `response_format` may be a pydantic class (structured output; read it with `completion.parse(cls)`).
        Any other OpenAI parameter (`top_p`, `stop`, ...) goes in `**extra` and is sent in the body as is.
        """
        if not messages:
            raise ValueError("chat() needs at least one message, got none")
        params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "n": n, **extra}
        if isinstance(response_format, type) and issubclass(response_format, BaseModel):
            params["response_format"] = json_schema_format(response_format)
        elif response_format is not None:
            params["response_format"] = dict(response_format)
        if seed is not None:
            params["seed"] = seed
        endpoints = await self._endpoints()
        started = time.monotonic()
        self.stats.requests += 1

        cache_slot: Path | None = None
        if self._cache is not None:
            cache_slot = self._cache.next_slot(_request_key(str(endpoints[0].model), messages, params))
            hit = self._cache.load(cache_slot)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit.model_copy(update={"cached": True, "latency_s": time.monotonic() - started})

        completion = await self._call_with_fallbacks(
            endpoints, messages, params, timeout_s or self.config.timeout_s
        )
        completion.latency_s = time.monotonic() - started
        self._account(completion)
        if cache_slot is not None:
            _ResponseCache.store(cache_slot, completion)
        return completion

    async def complete(self, prompt: str, *, system: str | None = None, **kwargs: Any) -> Completion:
        """`chat` with one user message (and an optional system message)."""
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return await self.chat(messages, **kwargs)

    async def aclose(self) -> None:
        """Close HTTP connections (the shared local server keeps running until process exit)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except RuntimeError:  # its event loop is already closed; nothing left to release
                pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        where = self.config.base_url or "local"
        return f"LLMClient(model={self.config.model!r}, base_url={where!r}, fallbacks={len(self.config.fallbacks)})"

    # -- internals -------------------------------------------------------------------------------

    async def _endpoints(self) -> list[Endpoint]:
        """Concrete endpoints; starts the embedded local model first if no base_url is configured."""
        if self.config.base_url is None and self._local is None:
            from loong_env import local

            try:
                self._local = await asyncio.to_thread(
                    local.shared_server,
                    self.config.model or local.DEFAULT_MODEL,
                    n_parallel=self.config.local_n_parallel,
                    n_ctx=self.config.local_n_ctx,
                    threads=self.config.local_threads,
                )
            except local.LocalModelError as exc:
                raise LLMConfigError(
                    f"No base_url is configured, so the embedded local model is the default, but it could "
                    f"not start:\n{exc}\nOr point the client at a server: LOONG_BASE_URL / base_url=..."
                ) from exc
        out = []
        for ep in self.config.endpoints():
            if ep.base_url is None:
                ep = Endpoint(base_url=self._local.base_url, model=self._local.model, api_key=LOCAL_API_KEY)
            out.append(ep)
        return out

    def _bind_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._semaphore is None:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
            self._clients = {}  # httpx pools belong to the loop that created them
        return self._semaphore

    def _client_for(self, ep: Endpoint) -> openai.AsyncOpenAI:
        key = (str(ep.base_url), ep.api_key or "")
        client = self._clients.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=ep.base_url,
                api_key=ep.api_key or LOCAL_API_KEY,
                max_retries=0,  # the retry policy is ours, so it is observable and testable
                timeout=self.config.timeout_s,
            )
            self._clients[key] = client
        return client

    def _ordered(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """Endpoints in configured order, those cooling down after a recent give-up moved to the back."""
        now = time.monotonic()
        return sorted(endpoints, key=lambda ep: self._down_until.get(ep.label, 0.0) > now)  # stable sort

    async def _call_with_fallbacks(
        self, endpoints: list[Endpoint], messages: Sequence[Message], params: dict[str, Any], timeout_s: float
    ) -> Completion:
        policy = self.config.retry
        semaphore = self._bind_loop()
        attempts: list[Attempt] = []
        last_retryable = True
        for order, ep in enumerate(self._ordered(endpoints)):
            if order > 0:
                self.stats.fallbacks_used += 1
                log.warning("LLM: falling back to %s", ep.label)
            for try_index in range(policy.max_attempts):
                sent_at, t0 = time.time(), time.monotonic()
                try:
                    async with semaphore:
                        self.stats.attempts += 1
                        response = await self._client_for(ep).chat.completions.create(
                            model=str(ep.model),
                            messages=list(messages),  # type: ignore[arg-type]
                            timeout=timeout_s,
                            extra_body=params,
                        )
                    completion = self._to_completion(response, ep)
                except Exception as exc:  # noqa: BLE001 - _classify re-raises anything that is not an API failure
                    outcome, status, retry_after, retryable = _classify(exc)
                    attempt = Attempt(
                        endpoint=str(ep.base_url),
                        model=str(ep.model),
                        outcome=outcome,  # type: ignore[arg-type]
                        status_code=status,
                        error=_short(exc),
                        retry_after_s=retry_after,
                        started_at=sent_at,
                        duration_s=time.monotonic() - t0,
                    )
                    attempts.append(attempt)
                    last_retryable = retryable
                    if not retryable or try_index + 1 >= policy.max_attempts:
                        break
                    if retry_after is not None and retry_after > policy.max_retry_after_s:
                        attempt.error += (
                            f" (Retry-After {retry_after:.0f}s exceeds {policy.max_retry_after_s:.0f}s)"
                        )
                        break
                    delay = policy.backoff(try_index, self._rng)
                    if policy.honor_retry_after and retry_after is not None:
                        delay = max(delay, retry_after)
                    attempt.wait_s = delay
                    self.stats.retries += 1
                    log.info("LLM: %s on %s, retry in %.2fs", outcome, ep.label, delay)
                    await self._sleep(delay)
                    continue
                attempts.append(
                    Attempt(
                        endpoint=str(ep.base_url),
                        model=str(ep.model),
                        outcome="ok",
                        started_at=sent_at,
                        duration_s=time.monotonic() - t0,
                    )
                )
                self._down_until.pop(ep.label, None)
                completion.attempts = attempts
                return completion
            if policy.cooldown_s > 0 and last_retryable:
                self._down_until[ep.label] = time.monotonic() + policy.cooldown_s
        self.stats.failures += 1
        tried = ", ".join(ep.label for ep in endpoints)
        if last_retryable:
            raise LLMUnavailableError(f"LLM request failed on every endpoint ({tried}); giving up.", attempts)
        raise LLMRejectedError(f"LLM request was rejected ({tried}).", attempts)

    def _to_completion(self, response: Any, ep: Endpoint) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise _BadResponse(f"response from {ep.label} has no choices: {str(response)[:200]}")
        texts = [(c.message.content or "") if c.message is not None else "" for c in choices]
        usage = Usage(
            prompt_tokens=getattr(response.usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(response.usage, "completion_tokens", 0) or 0,
        )
        model = getattr(response, "model", None) or str(ep.model)
        return Completion(
            text=texts[0],
            texts=texts,
            finish_reason=choices[0].finish_reason,
            model=model,
            usage=usage,
            cost_usd=self._cost(model, usage, requested=str(ep.model)),
            endpoint=str(ep.base_url),
        )

    def _cost(self, model: str, usage: Usage, *, requested: str) -> float | None:
        price = self.config.prices.get(model) or self.config.prices.get(requested)
        if price is None:
            return None
        return (
            usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok
        ) / 1e6

    def _account(self, completion: Completion) -> None:
        stats = self.stats
        stats.prompt_tokens += completion.usage.prompt_tokens
        stats.completion_tokens += completion.usage.completion_tokens
        stats.cost_usd += completion.cost_usd or 0.0
        per = stats.by_model.setdefault(completion.model, Usage())
        per.prompt_tokens += completion.usage.prompt_tokens
        per.completion_tokens += completion.usage.completion_tokens
