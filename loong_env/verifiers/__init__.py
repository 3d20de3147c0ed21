"""Verifiers turn a response and a reference answer into a reward."""

from loong_env.verifiers.base import SyncVerifier, Verifier

__all__ = ["BoxedAnswerVerifier", "PythonVerifier", "SyncVerifier", "Verifier"]


def __getattr__(name: str):  # lazy: the sandbox and sympy are only imported when a verifier is used
    if name == "BoxedAnswerVerifier":
        from loong_env.verifiers.boxed import BoxedAnswerVerifier

        return BoxedAnswerVerifier
    if name == "PythonVerifier":
        from loong_env.verifiers.python import PythonVerifier

        return PythonVerifier
    raise AttributeError(f"module 'loong_env.verifiers' has no attribute {name!r}")
