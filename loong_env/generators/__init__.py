"""Generators grow verifiable problems from seeds, kept only if sandboxed code and an independent solve agree.

from loong_env.generators import run_generation
summary = await run_generation("graph_discrete_math", method="few-shot", n=10, out="out/gdm")
"""

from loong_env.generators.base import (
    BaseGenerator,
    CandidateGenerator,
    GenerationError,
    GenerationStats,
    Proposal,
)
from loong_env.generators.categories import CategoryGenerators
from loong_env.generators.evol_instruct import EvolInstructGenerator
from loong_env.generators.few_shot import FewShotGenerator
from loong_env.generators.keep import (
    Candidate,
    KeepConfig,
    KeepRule,
    RejectReason,
    RepairAttempt,
    SolveAttempt,
    Verdict,
)
from loong_env.generators.novelty import NoveltyIndex, rouge_l
from loong_env.generators.output import (
    GenerationWriter,
    Manifest,
    OutputError,
    export_parquet,
    push_to_hub,
    read_accepted,
    read_manifest,
    read_rejected,
    to_dataset,
)
from loong_env.generators.parsing import ParsedCandidate, ParseFailure, parse_candidate, parse_code
from loong_env.generators.run import (
    METHODS,
    GenerationRequest,
    GenerationSummary,
    LocalExecutor,
    method_class,
    run_generation,
)
from loong_env.generators.self_instruct import SelfInstructGenerator
from loong_env.generators.static import StaticGenerator

__all__ = [
    "METHODS",
    "BaseGenerator",
    "Candidate",
    "CandidateGenerator",
    "CategoryGenerators",
    "EvolInstructGenerator",
    "FewShotGenerator",
    "GenerationError",
    "GenerationRequest",
    "GenerationStats",
    "GenerationSummary",
    "GenerationWriter",
    "KeepConfig",
    "KeepRule",
    "LocalExecutor",
    "Manifest",
    "NoveltyIndex",
    "OutputError",
    "ParseFailure",
    "ParsedCandidate",
    "Proposal",
    "RejectReason",
    "RepairAttempt",
    "SelfInstructGenerator",
    "SolveAttempt",
    "StaticGenerator",
    "Verdict",
    "export_parquet",
    "method_class",
    "parse_candidate",
    "parse_code",
    "push_to_hub",
    "read_accepted",
    "read_manifest",
    "read_rejected",
    "rouge_l",
    "run_generation",
    "to_dataset",
]
