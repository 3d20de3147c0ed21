"""Shared fixtures: the REAL local model server (started lazily, once per session) and a scripted OpenAI stub.

For tests in any module:

    def test_something(local_llm):                     # SmolLM2-135M: fast, for plumbing
        client = LLMClient(base_url=local_llm.base_url, model=local_llm.model)

    def test_boxed(local_qwen):                        # Qwen2.5-Coder-0.5B: follows \\boxed{}, writes code
        ...

    async def test_x(local_llm_client):                # an LLMClient already pointed at local_llm
        completion = await local_llm_client.complete("hi", max_tokens=8)

Tests that use a local model fixture are marked `llm` automatically (deselect with `-m "not llm"`).
Both servers are shared with `loong_env.local.shared_server`, so an `LLMClient()` with no base_url in the
same session reuses the Qwen server instead of loading a second copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray_cluster  # noqa: F401 - Ray's environment switches, set before any test module imports ray
from scripted_openai_server import Action, ScriptedServer

from loong_env import local
from loong_env.llm import LLMClient, RetryPolicy

LLM_FIXTURES = {"local_llm", "local_qwen", "local_llm_client", "local_qwen_client"}
# Whole modules that start a Ray cluster or execute notebooks: left out of `make test-fast` with the model.
MODULE_MARKS = {"test_ray": "ray", "test_notebooks": "notebook"}


def _start(model: str) -> local.LocalServer:
    try:
        return local.shared_server(model)  # same settings as LLMClient()'s default: one server per model
    except local.ModelNotInstalledError as exc:
        pytest.fail(f"The local model is not installed, so this test cannot run:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[local.LocalServer]:
    """SmolLM2-135M served on 127.0.0.1 (4 slots x 2048 tokens); `.base_url`, `.model`."""
    yield _start(local.PLUMBING_MODEL)


@pytest.fixture(scope="session")
def local_qwen() -> Iterator[local.LocalServer]:
    """Qwen2.5-Coder-0.5B served on 127.0.0.1 (4 slots x 2048 tokens); `.base_url`, `.model`."""
    yield _start(local.DEFAULT_MODEL)


@pytest.fixture
async def local_llm_client(local_llm: local.LocalServer) -> AsyncIterator[LLMClient]:
    """An LLMClient on the SmolLM2 server, no cache, short timeouts suited to tests."""
    async with LLMClient(
        base_url=local_llm.base_url, model=local_llm.model, timeout_s=120, retry=RetryPolicy(max_attempts=2)
    ) as client:
        yield client


@pytest.fixture
async def local_qwen_client(local_qwen: local.LocalServer) -> AsyncIterator[LLMClient]:
    """An LLMClient on the Qwen server, no cache, short timeouts suited to tests."""
    async with LLMClient(
        base_url=local_qwen.base_url, model=local_qwen.model, timeout_s=120, retry=RetryPolicy(max_attempts=2)
    ) as client:
        yield client


@pytest.fixture
def openai_stub() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory for scripted OpenAI-compatible servers on loopback; all are stopped after the test."""
    started: list[ScriptedServer] = []

    def make(script: list[Action] | tuple[Action, ...] = (), **kwargs: object) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# pytest-xdist (`make test` runs `-n 3 --dist loadgroup --no-loadscope-reorder`): each group runs on one
# worker. The tests on the session's model servers share one worker, so the servers load once; the notebooks
# (each kernel starts its own server) and Ray (one local cluster at a time) get one worker each; every other
# module stays whole on one worker, so its module-scoped fixtures (sandbox pools, servers) are built once.
MODEL_GROUP, NOTEBOOK_GROUP, RAY_GROUP = "model", "notebook", "ray"
FIRST = (MODEL_GROUP, NOTEBOOK_GROUP, RAY_GROUP)  # the longest groups start first, the rest fill around them


def _groups_file(controller_pid: int) -> Path:
    """Where the workers leave each test's group for the scheduler in their parent, the xdist controller."""
    return Path(tempfile.gettempdir()) / f"loong-xdist-groups-{controller_pid}.json"


def _give_params_to_the_node_id(item: pytest.Item) -> None:
    """`test_x[GET /health]`'s node id, not `test_x`: schemathesis names its items per API operation but
    leaves the node id bare under pytest 9.2, and xdist, which tells tests apart by node id, would then run
    one operation of the four and drop the others."""
    bare, bracket, params = item.name.partition("[")
    node_id = getattr(item, "_id", None)
    bare_id = node_id is not None and node_id.params is None and node_id.names[-1:] == (bare,)
    if bracket and params.endswith("]") and bare_id:
        item._id = node_id.with_params(params[:-1])  # what pytest gives its own parametrized tests


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a local model `llm`, and Ray's and the notebooks' (see `make test-fast`).

    Also gives each test its xdist group and moves the model, notebook and Ray groups to the front.
    """
    groups: dict[str, str] = {}
    for item in items:
        _give_params_to_the_node_id(item)
        module = item.module.__name__ if item.module else ""
        if LLM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.llm)
        if (mark := MODULE_MARKS.get(module)) is not None:
            item.add_marker(getattr(pytest.mark, mark))
            groups[item.nodeid] = NOTEBOOK_GROUP if mark == "notebook" else RAY_GROUP
        elif item.get_closest_marker("llm") is not None:  # by fixture or marked by hand: the model's worker
            groups[item.nodeid] = MODEL_GROUP
        else:
            groups[item.nodeid] = module
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    rank = {group: i for i, group in enumerate(FIRST)}  # a stable sort: the rest keep their order
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(FIRST)))
    if hasattr(config, "workerinput") and config.getvalue("dist") == "loadgroup":  # for our scheduler below
        # every worker collects the same tests, so whichever writes last leaves the same file
        path = _groups_file(os.getppid())
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps(groups))
        tmp.replace(path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` by the groups above: xdist 3.8 marks a group by renaming the test's node id, which
    pytest 9.2 no longer lets a plugin do, so it would spread every group over all workers."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                path = _groups_file(os.getpid())
                self.groups = json.loads(path.read_text()) if path.exists() else {}
                path.unlink(missing_ok=True)
            plain = nodeid.rsplit("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
            return self.groups.get(plain, plain.split("::")[0])  # unknown: its module's group

    return GroupScheduling(config, log)
