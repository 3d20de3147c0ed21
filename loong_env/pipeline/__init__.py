"""The self-improving chain-of-thought pipeline: verified reasoning traces for SFT and preference training.

    from loong_env.pipeline import CoTConfig, run_cot, to_sft_dataset, to_preference_dataset
    summary = await run_cot("seeds:logic", out="runs/cot", config=CoTConfig(mode="rejection", samples=8))
    sft = to_sft_dataset("runs/cot")                 # messages = prompt + best verified trace
    dpo = to_preference_dataset("runs/cot")          # prompt / chosen / rejected (TRL's DPOTrainer)

Rooms: `problems` (sources), `prompts`, `records` (traces and results), `evaluators`, `limiter` (AIMD
concurrency), `calls` (requests through the limiter, n>1 batching), `traces` (making and judging one),
`refine`, `rejection`, `passk`, `runner` (concurrent, input order), `store` (crash-safe output),
`stats` (live numbers), `export`, `run` (run_cot), `cli` (`loong cot`).
"""

from loong_env.pipeline.calls import Caller, Sample
from loong_env.pipeline.config import CoTConfig
from loong_env.pipeline.evaluators import Evaluator, JudgeReply, LLMJudge, RewardModel, VerifierEvaluator
from loong_env.pipeline.export import (
    preference_rows,
    sft_rows,
    to_preference_dataset,
    to_sft_dataset,
    write_exports,
)
from loong_env.pipeline.limiter import AdaptiveLimiter, LimiterConfig
from loong_env.pipeline.passk import mean_pass_at, pass_at_k, pass_at_ks
from loong_env.pipeline.problems import load_problems
from loong_env.pipeline.records import Evaluation, Problem, ProblemFailure, ProblemResult, Trace
from loong_env.pipeline.run import CoTSummary, run_cot
from loong_env.pipeline.stats import RunStats
from loong_env.pipeline.store import CoTManifest, CoTStore, read_failures, read_manifest, read_results

__all__ = [
    "AdaptiveLimiter",
    "Caller",
    "CoTConfig",
    "CoTManifest",
    "CoTStore",
    "CoTSummary",
    "Evaluation",
    "Evaluator",
    "JudgeReply",
    "LLMJudge",
    "LimiterConfig",
    "Problem",
    "ProblemFailure",
    "ProblemResult",
    "RewardModel",
    "RunStats",
    "Sample",
    "Trace",
    "VerifierEvaluator",
    "load_problems",
    "mean_pass_at",
    "pass_at_k",
    "pass_at_ks",
    "preference_rows",
    "read_failures",
    "read_manifest",
    "read_results",
    "run_cot",
    "sft_rows",
    "to_preference_dataset",
    "to_sft_dataset",
    "write_exports",
]
