"""The seed library: reading domain folders (ours and Loong's), finding the library, proving its seeds.

    from loong_env.seeds import load_seeds
    seeds = load_seeds("graph_discrete_math")

`dataset` reads folders into a `SeedDataset`; `loong_format` and `load_report` read the public Loong format
leniently and report what they coerced; `library` finds the library; `validation` and `reachability` prove
every seed reproduces its answer and that a correct solver can earn its reward; `spellings` and `precision`
are the rules those proofs use.
"""

from loong_env.seeds.dataset import (
    CONFIG_FILE,
    LOONG_FILE,
    OURS_FILE,
    DomainConfig,
    LoadReport,
    SeedDataset,
    SeedFormatError,
    SeedIssue,
    default_root,
    domain_folders,
    library_domain_config,
    load_seeds,
    read_domain,
    warmup_rationales,
)

__all__ = [
    "CONFIG_FILE",
    "LOONG_FILE",
    "OURS_FILE",
    "DomainConfig",
    "LoadReport",
    "SeedDataset",
    "SeedFormatError",
    "SeedIssue",
    "default_root",
    "domain_folders",
    "library_domain_config",
    "load_seeds",
    "read_domain",
    "warmup_rationales",
]
