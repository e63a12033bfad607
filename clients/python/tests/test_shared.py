"""Shared mode: two Sluice instances on one real redis-server, as two agent-server replicas would be."""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional

import openai
import pytest
from conftest import SluiceServer, user, wait_until

import sluice
import sluice.openai
from fake_upstream import FakeUpstream
from sluice import Limit, Policy


def test_a_429_through_one_instance_makes_every_instance_back_off(
    shared_pair: List[SluiceServer], upstream: FakeUpstream, name: Callable[[str], str]
) -> None:
    key = name("openai")
    policy = Policy(limit=Limit(600, 1_000_000), limit_key=key, breaker=None)
    a = sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x"), shared_pair[0].client(), namespace=name("ns"), policy=policy)
    b = sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x"), shared_pair[1].client(), namespace=name("ns"), policy=policy)
    upstream.configure(fail_next_429=1, retry_after_s=1.5)
    result: List[Optional[str]] = []
    replica_a = threading.Thread(target=lambda: result.append(a.chat.completions.create(model="m", messages=[user("from A")]).choices[0].message.content))
    replica_a.start()
    wait_until(lambda: upstream.stats()["rate_limited"] > 0, what="A's 429")
    penalized_at = time.monotonic()

    # B has never seen a 429, yet its instance holds it back: the hold is in Redis.
    def held() -> bool:
        peek = b.sluice.limits.peek(key)
        return peek is not None and peek.remaining_requests == 0 and peek.retry_after_ms > 1000

    wait_until(held, what="the hold through B's instance")
    impatient = sluice.openai.wrap(
        openai.OpenAI(base_url=upstream.base_url, api_key="x"),
        b.sluice,
        namespace=name("ns"),
        policy=Policy(limit=Limit(600, 1_000_000), limit_key=key, breaker=None, max_wait_s=0.1),
    )
    with pytest.raises(sluice.RateLimited) as refused:
        impatient.chat.completions.create(model="m", messages=[user("from B, in a hurry")])
    assert refused.value.retry_after_ms > 1000
    answer = b.chat.completions.create(model="m", messages=[user("from B")])
    waited = time.monotonic() - penalized_at
    assert answer.choices[0].message.content == "[m] An answer to: from B"
    assert waited >= 1.4  # B went only when the 1.5 s hold was over
    replica_a.join(10)
    assert result == ["[m] An answer to: from A"]
    assert upstream.stats()["requests"] == 3  # A's 429, A's retry, B's one call: B never hit the 429
    a.sluice.close()
    b.sluice.close()


def test_identical_prompts_through_two_instances_make_one_upstream_call(shared_pair: List[SluiceServer], name: Callable[[str], str]) -> None:
    with FakeUpstream(latency_ms=400) as upstream:
        clients = [
            sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x"), s.client(), namespace=name("ns"), policy=Policy(breaker=None))
            for s in shared_pair
        ]
        barrier = threading.Barrier(40)
        answers: List[Optional[str]] = [None] * 40

        def ask(i: int) -> None:
            barrier.wait()
            completion = clients[i % 2].chat.completions.create(model="m", messages=[user("What is a token bucket?")])
            answers[i] = completion.choices[0].message.content

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert upstream.stats()["requests"] == 1
        assert set(answers) == {"[m] An answer to: What is a token bucket?"}
        # Every other caller was served by that one call: through the lease, or by a lookup after
        # the answer was stored.
        served = sum(c.stats.coalesced + c.stats.exact_hits for c in clients)
        assert served == 39 and sum(c.stats.semantic_hits for c in clients) == 0
        for c in clients:
            c.sluice.close()
