"""A calibration run: ask a policy k times per item, judge with the env's router, write pass rates durably.

    summary = await calibrate(load_seeds("logic"), out="runs/cal", k=4)          # the embedded model
    summary = await calibrate(items, out="runs/cal", client=LLMClient(base_url=..., model=...))

The run folder holds `calibration.jsonl` (one `ItemCalibration` line per datapoint id, written with
fsync once all k answers of the item are judged) and `manifest.json` (the policy, k, sampling settings
and run history, replaced atomically). It is locked while a run writes; a re-run after a crash or kill -9
skips the ids already on disk, so nothing is lost and nothing is written twice. A folder belongs to one
model and one k: resuming it with another is refused (a pass rate mixes no policies).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.env import BOXED_INSTRUCTION
from loong_env.errors import ConfigError
from loong_env.routing import DomainLookup, VerifierRouter
from loong_env.runs.calibration import CALIBRATION, ItemCalibration, calibrated_difficulty
from loong_env.runs.durable import (
    JsonlLog,
    OutputError,
    RunDirectory,
    RunEntry,
    mark_killed,
    write_json_atomic,
)
from loong_env.types import DataPoint

MANIFEST = "manifest.json"


class CalibrationConfig(BaseModel):
    """How a policy is sampled: k answers per item at this temperature and token budget."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=4, ge=1, description="Answers sampled per item.")
    temperature: float = Field(default=1.0, ge=0.0, description="Sampling temperature of the policy.")
    max_tokens: int = Field(default=512, ge=1, description="Token budget of each answer.")
    instruction: str = Field(default=BOXED_INSTRUCTION, description="Appended to each question, as env.")
    concurrency: int = Field(default=4, ge=1, description="Items in flight at once.")


class CalibrationRun(RunEntry):
    """One invocation against a calibration folder."""

    calibrated: int = 0
    failed: int = 0


class CalibrationManifest(BaseModel):
    """What a calibration folder measures (one policy, one k) and the runs that wrote it."""

    version: int = 1
    model: str
    config: CalibrationConfig
    items: int = 0
    updated_at: float = 0.0
    runs: list[CalibrationRun] = Field(default_factory=list)


class CalibrationSummary(BaseModel):
    """What one `calibrate` call did."""

    out: Path
    model: str
    total: int = Field(description="Distinct items asked for.")
    already: int = Field(description="Items the folder held before this run (skipped).")
    calibrated: int = Field(description="Items measured and written by this run.")
    failed: int = Field(description="Items the endpoint gave no samples for (not written; a re-run retries).")
    tokens: int = 0
    seconds: float = 0.0


async def calibrate(
    items: Iterable[DataPoint],
    *,
    out: str | os.PathLike[str],
    client: Any = None,
    config: CalibrationConfig | None = None,
    domain_config: DomainLookup | None = None,
    on_item: Callable[[ItemCalibration], None] | None = None,
    **knobs: Any,
) -> CalibrationSummary:
    """Measure each item's pass rate under a policy so difficulty means "hard for this model", resumably.

    `client` is an `LLMClient` (None: the embedded local model); `config` or its fields as keywords
    (k=, temperature=, max_tokens=, ...). Items already in `out` are skipped.
    """
    from loong_env.llm import LLMClient, LLMError
    from loong_env.pipeline.calls import Caller

    if config is not None and knobs:
        raise ConfigError(f"pass either config= or keyword knobs, not both (got {sorted(knobs)})")
    config = config or CalibrationConfig(**knobs)
    unique = list({dp.id: dp for dp in items}.values())
    own_client = client is None
    client = client or LLMClient(max_concurrency=config.concurrency)
    caller = Caller(client)
    router = VerifierRouter(domain_config=domain_config or _lookup_of(items))
    started = time.perf_counter()
    folder = RunDirectory(out, command="loong calibrate").open()
    log = JsonlLog(folder.path / CALIBRATION)
    try:
        model = client.model
        manifest = _open_manifest(folder.path, model, config)
        done = {str(r.get("id")) for r in log.open()}
        todo = [dp for dp in unique if dp.id not in done]
        run = CalibrationRun(model=model)
        manifest.runs.append(run)
        manifest.items = len(done)
        _write(folder.path, manifest)
        gate = asyncio.Semaphore(config.concurrency)

        async def measure(dp: DataPoint) -> ItemCalibration | None:
            async with gate:
                question = f"{dp.question}\n\n{config.instruction}" if config.instruction else dp.question
                try:
                    samples = await caller.sample(
                        [{"role": "user", "content": question}],
                        config.k,
                        temperature=config.temperature,
                        max_tokens=config.max_tokens,
                    )
                except LLMError:
                    return None
                key = router.key(dp)
                verdicts = [(await router.judge(s.text, key))[0] for s in samples]
            rewards = [float(v.reward) for v in verdicts]
            rate = sum(rewards) / len(rewards)
            return ItemCalibration(
                id=dp.id,
                domain=dp.domain,
                difficulty=dp.difficulty,
                model=model,
                samples=len(rewards),
                correct=sum(v.correct for v in verdicts),
                pass_rate=rate,
                calibrated_difficulty=calibrated_difficulty(rate),
                rewards=rewards,
                statuses=[v.status.value for v in verdicts],
                tokens=sum(s.completion_tokens for s in samples),
            )

        status = "interrupted"
        try:
            for next_done in asyncio.as_completed([measure(dp) for dp in todo]):
                record = await next_done
                if record is None:
                    run.failed += 1
                    continue
                log.append(record.model_dump(mode="json"))  # durable before it counts
                run.calibrated += 1
                run.tokens += record.tokens
                manifest.items += 1
                _write(folder.path, manifest)
                if on_item is not None:
                    on_item(record)
            status = "done" if run.failed == 0 else "incomplete"
        finally:
            run.finish(status)
            _write(folder.path, manifest)
    finally:
        log.close()
        folder.close()
        if own_client:
            await client.close()
    return CalibrationSummary(
        out=folder.path,
        model=model,
        total=len(unique),
        already=len(unique) - len(todo),
        calibrated=run.calibrated,
        failed=run.failed,
        tokens=run.tokens,
        seconds=time.perf_counter() - started,
    )


def calibrate_sync(items: Iterable[DataPoint], **kwargs: Any) -> CalibrationSummary:
    """Blocking twin of `calibrate`; safe inside a running event loop."""
    from loong_env import bridge

    return bridge.run(calibrate(items, **kwargs))


def _lookup_of(items: Iterable[DataPoint]) -> DomainLookup | None:
    """A SeedDataset knows its domains' configs (tolerance, plug-in); anything else uses the library's."""
    lookup = getattr(items, "domain_config", None)
    return lookup if callable(lookup) else None


def _open_manifest(path: Path, model: str, config: CalibrationConfig) -> CalibrationManifest:
    """The folder's manifest, checked against this run's policy and k (a new one for a new folder)."""
    file = path / MANIFEST
    if not file.exists():
        return CalibrationManifest(model=model, config=config)
    old = CalibrationManifest.model_validate_json(file.read_bytes())
    sampling = {"concurrency"}  # how fast, not what is measured
    if old.model != model or old.config.model_dump(exclude=sampling) != config.model_dump(exclude=sampling):
        raise OutputError(
            f"{path} holds pass rates of model {old.model!r} with {old.config.model_dump(exclude=sampling)}, "
            f"but this run is model {model!r} with {config.model_dump(exclude=sampling)}; use another --out"
        )
    mark_killed(old.runs)
    return old


def _write(path: Path, manifest: CalibrationManifest) -> None:
    manifest.updated_at = time.time()
    write_json_atomic(path / MANIFEST, manifest)
