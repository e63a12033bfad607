"""Sluice in front of the OpenAI SDK: `client = sluice.openai.wrap(openai.OpenAI())`.

`client.chat.completions.create(...)` (non-streaming) then runs as a guarded call: one `LLM.GET`
(exact and semantic lookup, lease), budget, reservation, breaker; the SDK call; `LLM.SET`,
settle, report. The question (`sluice.keys.chat_question`) is the last user message's text —
which the exact layer compares as it is and the semantic layer by meaning — in a SCOPE that is a
canonical hash of everything else that can change the answer: the model, every parameter, the
conversation before it and the client's base URL. Streaming calls pass through uncached.
Everything else on the client is the client's own."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Literal, Mapping, Optional, Union, overload

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ._guard import AsyncLLMCall, LLMCall, Plan, retry_after_seconds
from .client import AsyncSluice, PolicyLike, Sluice, resolve_policy
from .keys import canonical_json, chat_question
from .types import CallStats, Policy, Price

__all__ = ["wrap", "SluiceOpenAI", "AsyncSluiceOpenAI", "estimate_tokens"]

DEFAULT_COMPLETION_ESTIMATE = 256


def estimate_tokens(kwargs: Mapping[str, Any]) -> int:
    """A reservation estimate before the call: ~4 characters a token for the messages, plus the
    completion's cap (or a typical answer). RL.SETTLE corrects it afterwards."""
    prompt = len(canonical_json(kwargs.get("messages", []))) // 4
    cap = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    completion = cap if isinstance(cap, int) and cap > 0 else DEFAULT_COMPLETION_ESTIMATE
    return prompt + completion * max(1, int(kwargs.get("n") or 1))


class _Planner:
    def __init__(
        self,
        default: Policy,
        namespace: str,
        policy: PolicyLike,
        prices: Optional[Mapping[str, Price]],
        estimate: Callable[[Mapping[str, Any]], int],
        endpoint: str,
    ) -> None:
        self.policy = resolve_policy(default, policy)
        self.namespace = namespace
        self.prices = dict(prices or {})
        self.estimate = estimate
        self.endpoint = endpoint

    def plan(self, kwargs: Mapping[str, Any]) -> Plan:
        model = str(kwargs.get("model", ""))
        policy = self.policy
        if model in self.prices and policy.price is None:
            policy = dataclasses.replace(policy, price=self.prices[model])
        question = chat_question(self.namespace, kwargs, endpoint=self.endpoint, semantic=policy.semantic, min_score=policy.min_score)
        return Plan(question=question, model=model, policy=policy, estimate_tokens=self.estimate(kwargs))


def _record(call: Union[LLMCall, AsyncLLMCall], completion: ChatCompletion) -> None:
    usage = completion.usage
    call.record(
        completion.model_dump_json(),
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None,
    )


def _cached(call: Union[LLMCall, AsyncLLMCall]) -> ChatCompletion:
    data = call.answer_bytes
    assert data is not None
    return ChatCompletion.model_validate_json(data)


def _retry_after(exc: openai.RateLimitError) -> Optional[float]:
    return retry_after_seconds(exc.response.headers)


class _Completions:
    def __init__(self, owner: "SluiceOpenAI") -> None:
        self._owner = owner
        self._inner = owner.client.chat.completions
        # The SDK would retry 429s and 5xx on its own, invisibly: with Sluice in front, a 429
        # holds the shared limit for everyone and a 5xx is the breaker's to count.
        self._raw = owner.client.with_options(max_retries=owner.sdk_retries).chat.completions

    @overload
    def create(self, *, stream: Literal[True], **kwargs: Any) -> openai.Stream[ChatCompletionChunk]: ...

    @overload
    def create(self, *, stream: Optional[Literal[False]] = None, **kwargs: Any) -> ChatCompletion: ...

    def create(self, *, stream: Optional[bool] = None, **kwargs: Any) -> Union[ChatCompletion, openai.Stream[ChatCompletionChunk]]:
        if stream:
            result: openai.Stream[ChatCompletionChunk] = self._inner.create(stream=True, **kwargs)
            return result
        if stream is not None:
            kwargs["stream"] = stream
        owner = self._owner
        with owner.sluice.guarded(owner.planner.plan(kwargs)) as call:
            if not call.hit:
                completion = self._upstream(call, kwargs)
                _record(call, completion)
                return completion
        return _cached(call)

    def _upstream(self, call: LLMCall, kwargs: Mapping[str, Any]) -> ChatCompletion:
        retries = self._owner.planner.policy.max_429_retries
        for attempt in itertools.count():
            try:
                completion: ChatCompletion = self._raw.create(**kwargs)
                return completion
            except openai.RateLimitError as exc:
                if attempt >= retries:
                    raise
                call.penalize(_retry_after(exc))
        raise AssertionError("unreachable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Chat:
    def __init__(self, owner: "SluiceOpenAI") -> None:
        self._inner = owner.client.chat
        self.completions = _Completions(owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SluiceOpenAI:
    """An `openai.OpenAI` with `chat.completions.create` guarded by Sluice."""

    def __init__(
        self,
        client: openai.OpenAI,
        sluice: Sluice,
        *,
        namespace: str = "openai",
        policy: PolicyLike = None,
        prices: Optional[Mapping[str, Price]] = None,
        estimate: Callable[[Mapping[str, Any]], int] = estimate_tokens,
        sdk_retries: int = 0,
    ) -> None:
        self.client = client
        self.sluice = sluice
        self.sdk_retries = sdk_retries
        self.planner = _Planner(sluice.policy, namespace, policy, prices, estimate, str(client.base_url))
        self.chat = _Chat(self)

    @property
    def stats(self) -> CallStats:
        return self.sluice.stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class _AsyncCompletions:
    def __init__(self, owner: "AsyncSluiceOpenAI") -> None:
        self._owner = owner
        self._inner = owner.client.chat.completions
        self._raw = owner.client.with_options(max_retries=owner.sdk_retries).chat.completions

    @overload
    async def create(self, *, stream: Literal[True], **kwargs: Any) -> openai.AsyncStream[ChatCompletionChunk]: ...

    @overload
    async def create(self, *, stream: Optional[Literal[False]] = None, **kwargs: Any) -> ChatCompletion: ...

    async def create(
        self, *, stream: Optional[bool] = None, **kwargs: Any
    ) -> Union[ChatCompletion, openai.AsyncStream[ChatCompletionChunk]]:
        if stream:
            result: openai.AsyncStream[ChatCompletionChunk] = await self._inner.create(stream=True, **kwargs)
            return result
        if stream is not None:
            kwargs["stream"] = stream
        owner = self._owner
        async with owner.sluice.guarded(owner.planner.plan(kwargs)) as call:
            if not call.hit:
                completion = await self._upstream(call, kwargs)
                _record(call, completion)
                return completion
        return _cached(call)

    async def _upstream(self, call: AsyncLLMCall, kwargs: Mapping[str, Any]) -> ChatCompletion:
        retries = self._owner.planner.policy.max_429_retries
        for attempt in itertools.count():
            try:
                completion: ChatCompletion = await self._raw.create(**kwargs)
                return completion
            except openai.RateLimitError as exc:
                if attempt >= retries:
                    raise
                await call.penalize(_retry_after(exc))
        raise AssertionError("unreachable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncChat:
    def __init__(self, owner: "AsyncSluiceOpenAI") -> None:
        self._inner = owner.client.chat
        self.completions = _AsyncCompletions(owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AsyncSluiceOpenAI:
    """An `openai.AsyncOpenAI` with `chat.completions.create` guarded by Sluice."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        sluice: AsyncSluice,
        *,
        namespace: str = "openai",
        policy: PolicyLike = None,
        prices: Optional[Mapping[str, Price]] = None,
        estimate: Callable[[Mapping[str, Any]], int] = estimate_tokens,
        sdk_retries: int = 0,
    ) -> None:
        self.client = client
        self.sluice = sluice
        self.sdk_retries = sdk_retries
        self.planner = _Planner(sluice.policy, namespace, policy, prices, estimate, str(client.base_url))
        self.chat = _AsyncChat(self)

    @property
    def stats(self) -> CallStats:
        return self.sluice.stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@overload
def wrap(
    client: openai.OpenAI,
    sluice: Optional[Sluice] = None,
    *,
    namespace: str = "openai",
    policy: PolicyLike = None,
    prices: Optional[Mapping[str, Price]] = None,
    estimate: Callable[[Mapping[str, Any]], int] = estimate_tokens,
    sdk_retries: int = 0,
) -> SluiceOpenAI: ...


@overload
def wrap(
    client: openai.AsyncOpenAI,
    sluice: Optional[AsyncSluice] = None,
    *,
    namespace: str = "openai",
    policy: PolicyLike = None,
    prices: Optional[Mapping[str, Price]] = None,
    estimate: Callable[[Mapping[str, Any]], int] = estimate_tokens,
    sdk_retries: int = 0,
) -> AsyncSluiceOpenAI: ...


def wrap(
    client: Union[openai.OpenAI, openai.AsyncOpenAI],
    sluice: Union[Sluice, AsyncSluice, None] = None,
    *,
    namespace: str = "openai",
    policy: PolicyLike = None,
    prices: Optional[Mapping[str, Price]] = None,
    estimate: Callable[[Mapping[str, Any]], int] = estimate_tokens,
    sdk_retries: int = 0,
) -> Union[SluiceOpenAI, AsyncSluiceOpenAI]:
    """Guards `client.chat.completions.create` with Sluice (`Sluice()` on 127.0.0.1:7379 unless
    given). `policy` is a `sluice.Policy` (or a server limit policy's name); `prices` per model
    give each stored answer its COST; `sdk_retries` is how many retries the SDK may still do on
    its own (default none: Sluice handles 429s and the breaker handles 5xx)."""
    if isinstance(client, openai.AsyncOpenAI):
        if sluice is None:
            sluice = AsyncSluice()
        if not isinstance(sluice, AsyncSluice):
            raise TypeError("an AsyncOpenAI client needs an AsyncSluice")
        return AsyncSluiceOpenAI(client, sluice, namespace=namespace, policy=policy, prices=prices, estimate=estimate, sdk_retries=sdk_retries)
    if sluice is None:
        sluice = Sluice()
    if not isinstance(sluice, Sluice):
        raise TypeError("an OpenAI client needs a Sluice (use AsyncSluice with AsyncOpenAI)")
    return SluiceOpenAI(client, sluice, namespace=namespace, policy=policy, prices=prices, estimate=estimate, sdk_retries=sdk_retries)
