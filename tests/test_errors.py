"""One error root: every exception class in the package derives from LoongError, and library code raises
project errors (which may also be built-in kinds) rather than bare built-ins."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import loong_env
from loong_env.errors import LoongError, UnknownNameError

PACKAGE = Path(loong_env.__file__).parent
# Scripts that run inside a jail or a worker process with the standard library only: they cannot import
# loong_env, and what they raise never reaches a caller (the host turns it into a result).
STANDALONE = {"loong_env.sandbox.worker"}
# Internal parsers whose ValueErrors are caught where they are called and turned into verdicts.
INTERNAL_PARSERS = {
    "loong_env/equivalence/numbers.py", "loong_env/equivalence/pyexpr.py", "loong_env/equivalence/symbolic.py",
}
BUILTINS = {"ValueError", "KeyError", "RuntimeError", "TypeError", "IndexError", "FileNotFoundError",
            "OSError", "Exception", "LookupError"}  # AttributeError stays: module __getattr__ protocol


def _modules() -> list[str]:
    names = ["loong_env"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="loong_env."):
        if info.name not in STANDALONE and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def test_every_error_class_in_the_package_derives_from_loong_error() -> None:
    offenders = []
    seen = 0
    for name in _modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name:
                seen += 1
                if not issubclass(obj, LoongError):
                    offenders.append(f"{name}.{obj.__qualname__}")
    assert seen >= 20, "the walk found too few error classes: is it looking in the right place?"
    assert offenders == []


def _bare_raises(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in BUILTINS:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} raises {func.id}")
    return found


def test_library_code_raises_project_errors_not_bare_builtins() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        module = rel.removesuffix(".py").replace("/", ".")
        if module in STANDALONE or rel in INTERNAL_PARSERS:
            continue
        offenders += _bare_raises(path)
    assert offenders == []


def test_an_unknown_name_says_what_was_meant_and_is_still_a_key_error() -> None:
    err = UnknownNameError("domain", "graph_discrete_maths", ["graph_discrete_math", "logic"])
    assert isinstance(err, KeyError) and isinstance(err, LoongError)
    assert str(err) == (
        "unknown domain 'graph_discrete_maths'; did you mean 'graph_discrete_math'? (known: graph_discrete_math, logic)"
    )
    with pytest.raises(KeyError):
        raise err
