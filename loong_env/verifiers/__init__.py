"""Verifiers turn a response and a reference answer into a reward."""

from loong_env.verifiers.base import Verifier

__all__ = ["BoxedAnswerVerifier", "PythonVerifier", "Verifier"]


def __getattr__(name: str):  # lazy: the sandbox and sympy are only imported when a verifier is used
    if name == "BoxedAnswerVerifier":
        from loong_env.verifiers.boxed import BoxedAnswerVerifier

        return BoxedAnswerVerifier
    if name == "PythonVerifier":
        from loong_env.verifiers.python import PythonVerifier

        return PythonVerifier
    raise AttributeError(name)
