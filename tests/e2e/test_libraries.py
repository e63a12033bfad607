"""Caching libraries built for Redis, from PyPI and unmodified, pointed at Sluice: each is driven
through its own API, against Sluice and against a real redis-server in the same test, and both
must answer the same (and what the library promises)."""
import asyncio
import os
import time

import pytest

from conftest import RedisServerProcess

# LiteLLM fetches a model price list from the network at import; there is none here.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def need(module):
    """The library, or a skip — except in CI, where scripts/install-deps.sh installs them all and
    a missing one is a failure, not a silent skip."""
    if os.environ.get("CI"):
        import importlib
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture
def targets(make_sluice, data_dir):
    """(name, port) of a Sluice (embedded, FLUSHDB allowed as the libraries' clear() needs) and
    of a real redis-server."""
    sluice = make_sluice("--allow-flush").start()
    redis_server = RedisServerProcess(data_dir).start()
    yield [("sluice", sluice.port), ("redis", redis_server.port)]
    redis_server.kill()


def both(targets, exercise):
    """Runs the exercise against each target; returns {name: transcript}, asserting they agree."""
    transcripts = {name: exercise(port) for name, port in targets}
    assert transcripts["sluice"] == transcripts["redis"]
    return transcripts["sluice"]


def test_litellm_redis_cache(targets):
    need("litellm")
    from litellm.caching.redis_cache import RedisCache

    def exercise(port):
        cache = RedisCache(host="127.0.0.1", port=port)
        out = []
        cache.set_cache("chat:1", {"choices": [{"message": {"content": "hello"}}]}, ttl=120)
        cache.set_cache("chat:2", "plain answer", ttl=120)
        out.append(cache.get_cache("chat:1"))
        out.append(cache.get_cache("missing"))
        out.append(cache.batch_get_cache(["chat:1", "chat:2", "missing"]))
        out.append(cache.increment_cache("tpm:team", 250, ttl=60))
        out.append(cache.increment_cache("tpm:team", 125))

        async def run_async():
            await cache.async_set_cache("a:1", {"n": 1}, ttl=60)
            await cache.async_set_cache_pipeline([("a:2", "two"), ("a:3", [3])], ttl=60)
            got = [await cache.async_get_cache("a:1"), await cache.async_batch_get_cache(["a:1", "a:2", "a:3", "nope"])]
            got.append(abs(await cache.async_get_ttl("a:1") - 60) <= 1)
            got.append(await cache.async_increment("rpm:key", 1, ttl=60))
            got.append(await cache.async_increment("rpm:key", 1))
            await cache.async_delete_cache("a:2")
            got.append(await cache.async_get_cache("a:2"))
            await cache.disconnect()
            return got

        out.append(asyncio.run(run_async()))
        cache.delete_cache("chat:2")
        out.append(cache.get_cache("chat:2"))
        cache.flush_cache()
        out.append(cache.get_cache("chat:1"))
        return out

    transcript = both(targets, exercise)
    assert transcript[0] == {"choices": [{"message": {"content": "hello"}}]}
    assert transcript[5][2] is True  # the TTL it set
    assert transcript[-1] is None


def test_langchain_redis_cache_serves_the_second_call(targets):
    need("langchain_community")
    import redis
    from langchain_community.cache import RedisCache
    from langchain_core.globals import set_llm_cache
    from langchain_core.language_models.fake import FakeListLLM

    def exercise(port):
        client = redis.Redis(host="127.0.0.1", port=port)
        cache = RedisCache(redis_=client, ttl=300)
        set_llm_cache(cache)
        try:
            # Answers in order: a second call that reached the "model" would answer "second".
            llm = FakeListLLM(responses=["first", "second", "third"])
            out = [llm.invoke("What is Sluice?"), llm.invoke("What is Sluice?"), llm.invoke("Another question")]
            # LangChain keeps each prompt's generations in a Redis hash with the TTL given.
            keys = [k for k in client.keys("*")]
            out.append(sorted(client.type(k) for k in keys))
            out.append(all(0 < client.ttl(k) <= 300 for k in keys))
            cache.clear()
            out.append(client.keys("*"))
            out.append(llm.invoke("What is Sluice?"))
            return out
        finally:
            set_llm_cache(None)

    transcript = both(targets, exercise)
    assert transcript[:3] == ["first", "first", "second"]
    assert transcript[3] == [b"hash", b"hash"]
    assert transcript[4] is True
    assert transcript[5] == []
    assert transcript[6] == "third"


def test_aiocache_redis_backend(targets):
    aiocache = need("aiocache")

    def exercise(port):
        async def run():
            cache = aiocache.RedisCache(endpoint="127.0.0.1", port=port, namespace="app")
            out = []
            out.append(await cache.set("k", "v", ttl=100))
            out.append(await cache.get("k"))
            try:
                await cache.add("k", "other")
                out.append("added")
            except ValueError:
                out.append("refused")
            out.append(await cache.multi_set([("a", "1"), ("b", "2")], ttl=100))
            out.append(await cache.multi_get(["a", "b", "nope"]))
            out.append(await cache.expire("a", 50))
            out.append(await cache.exists("a"))
            out.append(await cache.increment("counter", 5))
            out.append(await cache.increment("counter", -2))
            out.append(await cache.delete("b"))
            out.append(await cache.get("b"))
            out.append(await cache.clear(namespace="app"))
            out.append(await cache.get("k"))
            out.append(await cache.clear())
            await cache.close()
            return out
        return asyncio.run(run())

    transcript = both(targets, exercise)
    assert transcript[1] == "v"
    assert transcript[4] == ["1", "2", None]
    assert transcript[7:9] == [5, 3]
    assert transcript[-2] is None


def test_flask_caching_redis_cache(targets):
    need("flask_caching")
    from flask import Flask
    from flask_caching import Cache

    def exercise(port):
        app = Flask(__name__)
        cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": "127.0.0.1", "CACHE_REDIS_PORT": port,
                                   "CACHE_KEY_PREFIX": "flask_", "CACHE_DEFAULT_TIMEOUT": 100})
        calls = []

        @cache.memoize(timeout=60)
        def expensive(x):
            calls.append(x)
            return {"answer": x * 2}

        with app.app_context():
            out = [cache.set("k", {"v": [1, 2]}), cache.get("k"), cache.add("k", "no"), cache.add("new", "yes"),
                   cache.set_many({"a": 1, "b": "two"}), cache.get_many("a", "b", "missing"), cache.has("a"),
                   cache.cache.inc("n"), cache.cache.inc("n", 4), cache.cache.dec("n"), cache.delete("a"), cache.get("a"),
                   expensive(3), expensive(3), len(calls), cache.delete_many("b", "new"), cache.clear(), cache.get("k")]
        return out

    transcript = both(targets, exercise)
    assert transcript[1] == {"v": [1, 2]}
    assert transcript[2:4] == [False, True]
    assert transcript[5] == [1, "two", None]
    assert transcript[7:10] == [1, 5, 4]
    assert transcript[14] == 1  # memoized: the second call came from the cache
    assert transcript[-1] is None
