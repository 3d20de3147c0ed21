"""The sympy pool's size follows the machine and a setting, so rewards use every core they are given."""

from __future__ import annotations

import os

import pytest

from loong_env.equivalence.pool import WORKERS_ENV, WorkerPool, configured_size, usable_cores
from loong_env.errors import ConfigError
from loong_env.settings import CONFIG_ENV


def test_the_pool_has_one_worker_per_usable_core_by_default(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no loong.toml here
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == expected and WorkerPool().size == expected


def test_the_environment_and_the_config_file_set_the_size(monkeypatch, tmp_path) -> None:
    config = tmp_path / "loong.toml"
    config.write_text("[equivalence]\nworkers = 3\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert configured_size() == 3
    monkeypatch.setenv(WORKERS_ENV, "5")  # the environment wins over the file
    assert WorkerPool().size == 5
    assert WorkerPool(size=1).size == 1  # an explicit size wins over both


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_size_is_a_config_error_naming_where_it_came_from(monkeypatch, value) -> None:
    monkeypatch.setenv(WORKERS_ENV, value)
    with pytest.raises(ConfigError, match=WORKERS_ENV):
        configured_size()


def test_serve_reward_with_n_workers_shares_the_cores_among_their_sympy_pools(monkeypatch) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    from loong_env.integrations.reward_server import ServerConfig, serve

    seen: dict[str, str | None] = {}
    for name in (WORKERS_ENV, "LOONG_REWARD_SERVER_CONFIG"):  # serve() sets both: undone after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(size=os.environ.get(WORKERS_ENV)))
    serve(ServerConfig(workers=2))  # the worker processes would read the size from the environment
    assert seen["size"] == str(max(1, usable_cores() // 2))
    monkeypatch.setenv(WORKERS_ENV, "3")  # an operator's choice is kept
    serve(ServerConfig(workers=2))
    assert seen["size"] == "3"
