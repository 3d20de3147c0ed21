"""Datasets you can reproduce: a generation or CoT output folder exported with a Hugging Face dataset card.

    from loong_env.publish import export, push_to_hub
    card = export("runs/gen", "exports/physics-v1")    # data + README.md (YAML header: version, config, ...)
    load_seeds("exports/physics-v1")                     # reads a generation export back
    push_to_hub("exports/physics-v1", "me/physics-v1")

The card's `dataset_version` is a content hash of the kept items: it changes exactly when they change, and
every exported item carries it in `metadata.dataset_version`, so an env step (`StepResult.dataset_version`)
says which version of the data each reward came from.
"""

from loong_env.publish.card import DatasetCardInfo, content_hash, folder_hash, read_card
from loong_env.publish.errors import ExportError
from loong_env.publish.export import export, push_to_hub

__all__ = [
    "DatasetCardInfo",
    "ExportError",
    "content_hash",
    "export",
    "folder_hash",
    "push_to_hub",
    "read_card",
]
