"""The OpenAI SDK wrapper: the real `openai` package pointed at the fake upstream, a real Sluice."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, List, Optional

import openai
import pytest
from conftest import SluiceServer, user

import sluice
import sluice.openai
from fake_upstream import FakeUpstream
from sluice import Limit, Policy


def wrapped(server: SluiceServer, upstream: FakeUpstream, ns: str, policy: Optional[Policy] = None) -> sluice.openai.SluiceOpenAI:
    return sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x", timeout=10), server.client(), namespace=ns, policy=policy)


def test_fifty_concurrent_identical_prompts_make_one_upstream_call(server: SluiceServer, name: Callable[[str], str]) -> None:
    with FakeUpstream(latency_ms=400) as upstream:
        client = wrapped(server, upstream, name("ns"))
        answers: List[Optional[str]] = [None] * 50
        barrier = threading.Barrier(50)

        def ask(i: int) -> None:
            barrier.wait()
            completion = client.chat.completions.create(model="m", messages=[user("Summarise the plot of Hamlet.")])
            answers[i] = completion.choices[0].message.content

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert upstream.stats()["requests"] == 1
        assert answers == ["[m] An answer to: Summarise the plot of Hamlet."] * 50
        assert client.stats.coalesced + client.stats.exact_hits == 49 and client.stats.upstream_calls == 1
        client.sluice.close()


async def test_fifty_concurrent_identical_prompts_async(server: SluiceServer, name: Callable[[str], str]) -> None:
    with FakeUpstream(latency_ms=300) as upstream:
        sl = server.async_client()
        client = sluice.openai.wrap(openai.AsyncOpenAI(base_url=upstream.base_url, api_key="x", timeout=10), sl, namespace=name("ns"))

        async def ask() -> Optional[str]:
            completion = await client.chat.completions.create(model="m", messages=[user("Summarise Macbeth.")])
            return completion.choices[0].message.content

        answers = await asyncio.gather(*[ask() for _ in range(50)])
        assert upstream.stats()["requests"] == 1
        assert set(answers) == {"[m] An answer to: Summarise Macbeth."}
        assert sl.stats.coalesced + sl.stats.exact_hits == 49
        await sl.aclose()


def test_reserve_and_settle_totals_equal_the_upstreams_token_counts(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    key = name("lim")
    # Buckets of 10^6 tokens that refill one token a minute: what is gone is what was charged.
    limit = Limit(rpm=1, tpm=1, burst_requests=10_000, burst_tokens=1_000_000)
    upstream.configure(completion_tokens=17)
    client = wrapped(server, upstream, name("ns"), Policy(limit=limit, limit_key=key))
    for i in range(12):
        messages = [{"role": "system", "content": "Terse."}, user(f"Question number {i}: what is {i} squared?")]
        client.chat.completions.create(model="m", messages=messages, max_tokens=100)
    # Hits and coalesced calls are not charged at all.
    client.chat.completions.create(model="m", messages=[{"role": "system", "content": "Terse."}, user("Question number 3: what is 3 squared?")], max_tokens=100)
    counted = upstream.stats()
    assert counted["requests"] == 12 and counted["total_tokens"] > 12 * 17
    peek = client.sluice.limits.peek(key)
    assert peek is not None
    assert 1_000_000 - peek.remaining_tokens == counted["total_tokens"]
    assert 10_000 - peek.remaining_requests == 12
    assert client.stats.tokens_used == counted["total_tokens"]
    client.sluice.close()


def test_429_is_absorbed(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    key = name("lim")
    client = wrapped(server, upstream, name("ns"), Policy(limit=Limit(600, 1_000_000), limit_key=key))
    upstream.configure(fail_next_429=2, retry_after_s=0.4)
    started = time.monotonic()
    completion = client.chat.completions.create(model="m", messages=[user("Hello?")])
    elapsed = time.monotonic() - started
    assert completion.choices[0].message.content == "[m] An answer to: Hello?"
    assert upstream.stats()["rate_limited"] == 2 and upstream.stats()["requests"] == 3
    assert elapsed >= 0.8  # held back for each Retry-After, through the shared limit
    assert client.stats.absorbed_429s == 2 and client.stats.upstream_429s == 2
    client.sluice.close()


def test_429_past_the_retries_reaches_the_caller(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    client = wrapped(server, upstream, name("ns"), Policy(limit=Limit(600, 1_000_000), limit_key=name("lim"), max_429_retries=1))
    upstream.configure(fail_next_429=5, retry_after_s=0.1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[user("Hello?")])
    assert upstream.stats()["requests"] == 2
    client.sluice.close()


def test_streaming_passes_through_uncached(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    client = wrapped(server, upstream, name("ns"))
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=[user("Stream this")], stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
        assert text.strip() == "[m] An answer to: Stream this"
    assert upstream.stats()["streamed"] == 2
    assert client.stats.calls == 0
    client.sluice.close()


def test_breaker_opens_in_a_5xx_burst_and_closes_after(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    breaker = name("cb")
    client = wrapped(server, upstream, name("ns"), Policy(breaker=breaker, stale_ms=600_000))
    sl = client.sluice
    sl.breakers.config(breaker, window=6, min_calls=3, failure_rate=0.75, open_ms=500, probes=1)
    client.chat.completions.create(model="m", messages=[user("cached before the burst")])
    upstream.configure(burst_5xx_for_s=0.6)
    for i in range(3):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=[user(f"during the burst {i}")])
    assert sl.breakers.state(breaker).state == "open"
    seen = upstream.stats()["requests"]
    with pytest.raises(sluice.BreakerOpen):
        client.chat.completions.create(model="m", messages=[user("refused while open")])
    assert upstream.stats()["requests"] == seen  # refused without bothering the upstream
    # An answer Sluice has is still an answer while the breaker is open.
    assert client.chat.completions.create(model="m", messages=[user("cached before the burst")]).choices[0].message.content
    time.sleep(0.7)  # the burst is over and OPEN-MS has passed: the next call is the probe
    completion = client.chat.completions.create(model="m", messages=[user("after the burst")])
    assert completion.choices[0].message.content == "[m] An answer to: after the burst"
    assert sl.breakers.state(breaker).state == "closed"
    assert client.stats.upstream_failures == 3 and client.stats.breaker_refusals == 1
    sl.close()


def test_stale_answer_when_the_upstream_fails(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    client = wrapped(server, upstream, name("ns"), Policy(breaker=None, ttl_ms=100, stale_ms=600_000))
    first = client.chat.completions.create(model="m", messages=[user("Today's headline?")])
    time.sleep(0.2)
    upstream.configure(fail_next_5xx=1)
    stale = client.chat.completions.create(model="m", messages=[user("Today's headline?")])
    assert stale.choices[0].message.content == first.choices[0].message.content
    assert client.stats.stale_served == 1 and upstream.stats()["server_errors"] == 1
    client.sluice.close()


def test_another_endpoint_is_another_question(server: SluiceServer, name: Callable[[str], str]) -> None:
    """The same request sent to two upstreams (two base URLs) is two questions."""
    sl = server.client()
    ns = name("ns")
    with FakeUpstream(latency_ms=5) as one, FakeUpstream(latency_ms=5) as other:
        for up in (one, other, one):
            client = sluice.openai.wrap(openai.OpenAI(base_url=up.base_url, api_key="x"), sl, namespace=ns, policy=Policy(breaker=None))
            client.chat.completions.create(model="m", messages=[user("Which upstream am I?")])
        assert one.stats()["requests"] == 1 and other.stats()["requests"] == 1
    sl.close()
