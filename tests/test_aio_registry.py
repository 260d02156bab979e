"""How persistence.aio picks an implementation for a backend name."""

import asyncio
import importlib.metadata

import pytest

from persistence import aio
from persistence.aio import registry
from persistence.aio.threaded import ThreadedBackend
from persistence.backends.memory import MemoryBackend
from persistence.backends.registry import register_backend, unregister_backend
from persistence.exceptions import ConfigurationError, NotFound


def test_shipped_native_table_and_entry_points_agree():
    published = {ep.name: ep.value
                 for ep in importlib.metadata.entry_points(group=registry.NAMESPACE)}
    assert published == dict(registry.NATIVE)


class _ThirdParty(MemoryBackend):
    """A backend persistence.aio knows nothing about."""


def test_a_third_party_sync_backend_works_through_the_thread_adapter():
    register_backend("thirdparty", _ThirdParty)
    try:
        async def main():
            async with aio.backend("thirdparty://") as be:
                assert isinstance(be, ThreadedBackend)
                conn = await be.get_connection()
                assert await conn.get_logbooks() == []
                with pytest.raises(NotFound):
                    await conn.get_logbook("no-such-book")
                await conn.close()
        asyncio.run(main())
    finally:
        unregister_backend("thirdparty")


def test_calling_the_bridge_outside_run_sync_says_what_to_do():
    async def nothing():
        return 1
    with pytest.raises(RuntimeError, match="outside run_sync"):
        aio.wait(nothing())


def test_bridge_greenlets_are_reused_only_once_their_call_has_returned():
    """Calls that need no I/O return at once; one that waits on a coroutine which
    itself runs bridged calls (with and without waits) gets its own answer back."""
    from persistence.aio import bridge

    async def answer(value):
        await asyncio.sleep(0)
        return value

    async def nested(value):
        first = await bridge.drive(lambda: value)                    # no wait
        second = await bridge.drive(lambda: aio.wait(answer(value)))  # one wait
        return first + second

    def outer(value):
        return aio.wait(nested(value)) + aio.wait(answer(value))

    async def main():
        assert await aio.run_sync(lambda: 7) == 7
        return await asyncio.gather(*(aio.run_sync(outer, n) for n in range(20)))
    assert asyncio.run(main()) == [3 * n for n in range(20)]


def test_io_chooses_threads_or_requires_a_native_implementation(tmp_path):
    async def main():
        be = await aio.fetch(f"sqlite:///{tmp_path}/a.db", io="threads")
        assert isinstance(be, ThreadedBackend)
        await be.close()
        be = await aio.fetch(f"sqlite:///{tmp_path}/a.db", io="native")
        assert be.io == "native"
        await be.close()
        with pytest.raises(ConfigurationError, match="no native async implementation"):
            await aio.fetch({"connection": "dir", "path": str(tmp_path / "d")}, io="native")
        with pytest.raises(ConfigurationError, match="io='fast'"):
            await aio.fetch("memory://", io="fast")
    asyncio.run(main())
