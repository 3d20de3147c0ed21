"""The one sync bridge: blocking twins work with no loop, inside a running loop, and refuse to deadlock."""

from __future__ import annotations

import asyncio

import pytest

from loong_env import bridge
from loong_env.errors import LoongError, SyncBridgeError


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def test_runs_a_coroutine_from_plain_code() -> None:
    assert bridge.run(_double(21)) == 42


def test_runs_a_coroutine_while_another_loop_is_running_in_this_thread() -> None:
    async def jupyter_cell() -> int:
        return bridge.run(_double(4))  # a sync call from inside a running loop, as in a notebook

    assert asyncio.run(jupyter_cell()) == 8


def test_a_sync_call_from_the_bridges_own_loop_fails_fast_instead_of_deadlocking() -> None:
    async def nested() -> int:
        return bridge.run(_double(1))

    with pytest.raises(SyncBridgeError, match="await the async method instead") as err:
        bridge.run(nested())
    assert isinstance(err.value, LoongError)


def test_a_timeout_cancels_the_coroutine_and_says_so() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="cancelled"):
        bridge.run(slow(), timeout=0.2)
    assert bridge.run(asyncio.wait_for(cancelled.wait(), 5)) is True
