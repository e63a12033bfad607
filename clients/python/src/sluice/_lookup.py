"""Where a guarded call looks its answer up and stores it: the exact layer with its lease, then
the semantic layer. Everything the guard needs from the cache goes through `AnswerStore`, so a
server-side `LLM.GET` / `LLM.SET` pair (one round trip through both layers) can replace
`CommandStore` here without touching the guard."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, List, Optional

from . import _commands as c
from ._flow import Cmd, Flow, batch
from .errors import CommandError, SluiceError
from .types import CacheEntry, SemanticMatch

log = logging.getLogger("sluice")

_MAX_SEMANTIC_PROMPT = 65536


@dataclass(frozen=True)
class Question:
    """One prompt as the cache sees it. `key` is the exact-cache key (a canonical hash of the
    whole request); `prompt` and `scope` are what the semantic layer compares (SEM.* SCOPE)."""

    namespace: str
    key: str
    prompt: Optional[str]  # None: no semantic lookup for this request
    scope: str
    min_score: Optional[float] = None


@dataclass(frozen=True)
class Found:
    """What a lookup or a poll found.

    `answer` set: a hit (`source` exact, semantic, lease or stale). Otherwise `lease` is this
    caller's token (it must compute the answer), or `waiting` says another caller computes it,
    or `abandoned` says the caller that held the lease gave up (the upstream failed)."""

    answer: Optional[bytes] = None
    source: Optional[str] = None
    score: Optional[float] = None
    lease: Optional[str] = None
    waiting: bool = False
    abandoned: bool = False


class AnswerStore:
    """The lookup/store steps of a guarded call, as flows (see _flow)."""

    def lookup(self, q: Question, lease_ms: Optional[int], ttl_ms: Optional[int]) -> Flow[Found]:
        """Exact, then semantic. With `lease_ms`, a miss also asks for the key's lease."""
        raise NotImplementedError

    def poll(self, q: Question, lease_ms: int) -> Flow[Found]:
        raise NotImplementedError

    def stale(self, q: Question, stale_ms: int) -> Flow[Optional[bytes]]:
        raise NotImplementedError

    def store(
        self,
        q: Question,
        answer: bytes,
        *,
        ttl_ms: Optional[int],
        tokens: Optional[int],
        cost: Optional[float],
        tag: Optional[str],
        lease: Optional[str],
    ) -> Flow[None]:
        raise NotImplementedError

    def abandon(self, q: Question, lease: str, remaining_ms: int) -> Flow[None]:
        raise NotImplementedError


class CommandStore(AnswerStore):
    """Today's commands: CACHE.GET/SET with LEASE and STALE, SEM.GET/SET."""

    def lookup(self, q: Question, lease_ms: Optional[int], ttl_ms: Optional[int]) -> Flow[Found]:
        cmds: List[Cmd[Any]] = [c.cache_get(q.key, lease_ms=lease_ms)]
        semantic = _semantic(q)
        if semantic:
            cmds.append(c.sem_get(q.namespace, q.prompt or "", scope=q.scope, min_score=q.min_score))
        results = yield from batch(*cmds)
        exact = results[0]
        if isinstance(exact, BaseException):
            raise exact
        assert isinstance(exact, CacheEntry)
        if exact.value is not None:
            return Found(answer=exact.value, source="exact")
        match = results[1] if semantic else None
        if isinstance(match, SluiceError):
            # A prompt the embedder cannot use ("no words to embed") or a busy semantic lane is
            # a miss, not a failed call.
            log.debug("semantic lookup failed: %s", match)
            match = None
        if isinstance(match, SemanticMatch) and match.response is not None:
            if exact.lease is not None:
                # The paraphrase's answer becomes this prompt's exact entry: it fulfils the lease
                # (callers waiting on it get the answer) and the next identical prompt is an exact hit.
                promoted = yield from batch(c.cache_set(q.key, match.response, px=ttl_ms, lease=exact.lease))
                if isinstance(promoted[0], SluiceError):
                    log.debug("could not store the semantic answer under its exact key: %s", promoted[0])
            return Found(answer=match.response, source="semantic", score=match.score)
        if exact.lease is not None:
            return (yield from self._granted(q, exact.lease, "exact"))
        return Found(waiting=lease_ms is not None)

    def _granted(self, q: Question, lease: str, source: str) -> Flow[Found]:
        # In shared mode a lease can be granted just after the holder stored the answer (the
        # server reads the entry and takes the lease in two steps, and the holder's write lands
        # between them). One more read catches it; the needless lease then runs out unnoticed,
        # since a key with a value answers every reader.
        again = yield from batch(c.cache_get(q.key))
        entry = again[0]
        if isinstance(entry, CacheEntry) and entry.value is not None:
            return Found(answer=entry.value, source=source)
        return Found(lease=lease)

    def poll(self, q: Question, lease_ms: int) -> Flow[Found]:
        results = yield from batch(c.cache_get(q.key, lease_ms=lease_ms), c.exists(_abandoned_key(q)))
        exact, abandoned = results
        if isinstance(exact, BaseException):
            raise exact
        assert isinstance(exact, CacheEntry)
        if exact.value is not None:
            return Found(answer=exact.value, source="lease")
        if exact.lease is not None:
            return (yield from self._granted(q, exact.lease, "lease"))
        if isinstance(abandoned, int) and abandoned > 0:
            return Found(abandoned=True)
        return Found(waiting=True)

    def stale(self, q: Question, stale_ms: int) -> Flow[Optional[bytes]]:
        results = yield from batch(c.cache_get(q.key, stale_ms=stale_ms))
        entry = results[0]
        if isinstance(entry, CacheEntry) and entry.value is not None:
            return entry.value
        if isinstance(entry, SluiceError):
            log.debug("stale lookup failed: %s", entry)
        return None

    def store(
        self,
        q: Question,
        answer: bytes,
        *,
        ttl_ms: Optional[int],
        tokens: Optional[int],
        cost: Optional[float],
        tag: Optional[str],
        lease: Optional[str],
    ) -> Flow[None]:
        cmds: List[Cmd[Any]] = [c.cache_set(q.key, answer, px=ttl_ms, tokens=tokens, cost=cost, tag=tag, lease=lease)]
        if _semantic(q):
            cmds.append(c.sem_set(q.namespace, q.prompt or "", answer, px=ttl_ms, scope=q.scope, tokens=tokens, cost=cost, tag=tag))
        results = yield from batch(*cmds)
        exact = results[0]
        if isinstance(exact, CommandError) and "lease" in str(exact):
            # Our lease ran out and another caller holds the key's lease now: its answer will be
            # stored; ours is still returned to our caller.
            log.debug("exact entry not stored: %s", exact)
        elif isinstance(exact, SluiceError):
            raise exact
        if len(results) > 1 and isinstance(results[1], SluiceError):
            log.debug("semantic entry not stored: %s", results[1])

    def abandon(self, q: Question, lease: str, remaining_ms: int) -> Flow[None]:
        # There is no command to hand a lease back, and DEL (which ends it) would also delete the
        # expired copy STALE serves. So the holder leaves a marker for as long as its lease has
        # left; waiters polling see it and stop waiting.
        if remaining_ms > 0:
            results = yield from batch(c.set_(_abandoned_key(q), lease, px=remaining_ms))
            if isinstance(results[0], SluiceError):
                log.debug("could not mark the lease abandoned: %s", results[0])


def _semantic(q: Question) -> bool:
    return q.prompt is not None and 0 < len(q.prompt.encode("utf-8")) <= _MAX_SEMANTIC_PROMPT


def _abandoned_key(q: Question) -> str:
    return q.key + ":abandoned"


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)
