"""`sluice.llm_call(...)` without making a client first: a process-wide default client on
$SLUICE_URL (else 127.0.0.1:7379), usable with `with` and with `async with`."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from types import TracebackType
from typing import Any, Mapping, Optional, Type

from ._guard import AsyncLLMCall, LLMCall
from .client import DEFAULT_URL, AsyncSluice, PolicyLike, Sluice
from .types import Policy

_lock = threading.Lock()
_settings: dict[str, Any] = {}
_sync_client: Optional[Sluice] = None
# redis.asyncio connections belong to the event loop that made them.
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSluice]" = weakref.WeakKeyDictionary()


def configure(url: Optional[str] = None, *, policy: Optional[Policy] = None, **redis_options: Any) -> None:
    """Sets the default client's address, default Policy and redis-py options (next use on)."""
    global _sync_client
    with _lock:
        _settings.clear()
        _settings.update(redis_options)
        if url is not None:
            _settings["url"] = url
        if policy is not None:
            _settings["policy"] = policy
        _sync_client = None
        _async_clients.clear()


def _options() -> dict[str, Any]:
    options = dict(_settings)
    options.setdefault("url", os.environ.get("SLUICE_URL", DEFAULT_URL))
    return options


def default_client() -> Sluice:
    global _sync_client
    with _lock:
        if _sync_client is None:
            _sync_client = Sluice(**_options())
        return _sync_client


def default_async_client() -> AsyncSluice:
    loop = asyncio.get_running_loop()
    with _lock:
        client = _async_clients.get(loop)
        if client is None:
            client = AsyncSluice(**_options())
            _async_clients[loop] = client
        return client


class GuardedCall:
    """Enter with `with` (blocking client) or `async with` (asyncio client)."""

    def __init__(self, **call: Any) -> None:
        self._call = call
        self._sync: Optional[LLMCall] = None
        self._async: Optional[AsyncLLMCall] = None

    def __enter__(self) -> LLMCall:
        self._sync = default_client().llm_call(**self._call)
        return self._sync.__enter__()

    def __exit__(self, et: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> bool:
        assert self._sync is not None
        return self._sync.__exit__(et, exc, tb)

    async def __aenter__(self) -> AsyncLLMCall:
        self._async = default_async_client().llm_call(**self._call)
        return await self._async.__aenter__()

    async def __aexit__(self, et: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> bool:
        assert self._async is not None
        return await self._async.__aexit__(et, exc, tb)


def llm_call(
    *,
    model: str,
    prompt: str,
    namespace: str = "llm",
    policy: PolicyLike = None,
    estimate_tokens: int = 0,
    params: Optional[Mapping[str, Any]] = None,
) -> GuardedCall:
    """`Sluice.llm_call` on the default client: `with sluice.llm_call(...) as call:` or
    `async with sluice.llm_call(...) as call:`."""
    return GuardedCall(model=model, prompt=prompt, namespace=namespace, policy=policy, estimate_tokens=estimate_tokens, params=params)
