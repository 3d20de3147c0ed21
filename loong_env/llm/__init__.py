"""One LLM client for the generators, CoT pipeline and demo: any OpenAI-compatible server, or the local model.

    client = LLMClient()                                   # embedded local model (no key, no network)
    client = LLMClient(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")   # vLLM
    completion = await client.chat([{"role": "user", "content": "2+2? Answer in \\boxed{}"}], max_tokens=64)
    completion.text, completion.usage, completion.endpoint, completion.cached

Rooms: `config` (endpoints, retry policy, where settings come from), `records` (what a call returns and
costs), `errors`, `retry` (which failures to retry), `cache` (on-disk replay), `client` (LLMClient).
"""

from loong_env.llm.client import LOCAL_API_KEY, LLMClient, json_schema_format
from loong_env.llm.config import Endpoint, LLMConfig, ModelPrice, RetryPolicy
from loong_env.llm.errors import (
    LLMConfigError,
    LLMError,
    LLMRejectedError,
    LLMResponseError,
    LLMUnavailableError,
)
from loong_env.llm.records import Attempt, Completion, Usage, UsageStats

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
    "LLMResponseError",
    "LLMUnavailableError",
    "ModelPrice",
    "RetryPolicy",
    "Usage",
    "UsageStats",
    "json_schema_format",
]
