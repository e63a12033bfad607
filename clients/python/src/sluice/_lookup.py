"""Where a guarded call looks its answer up and stores it. Everything the guard needs from the
cache goes through `AnswerStore`; `LLMStore` is Sluice's one-round-trip pair, `LLM.GET` (exact
key in L1 and L2, then the semantic layer, then the question's lease) and `LLM.SET` (both layers
at once)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from . import _commands as c
from ._flow import Cmd, Flow, batch, one
from .errors import CommandError, SluiceError
from .types import CacheEntry, LLMAnswer

log = logging.getLogger("sluice")

# What the semantic layer takes (`-ERR the prompt is longer than 65536 bytes` past it).
MAX_SEMANTIC_PROMPT = 65536
# LLM.SET's value format: magic, origin 0 (stored for this very prompt), the answer. Written by
# the client only when the server cannot take the prompt into the semantic layer (below).
_ENVELOPE = b"SLM1\x00"


def llm_key(namespace: str, scope: str, prompt: str) -> str:
    """The exact-cache key LLM.GET / LLM.SET use for a question (PROTOCOL.md): the lengths keep
    `a:b` + `c` apart from `a` + `b:c`, and the prompt itself is in it, so two prompts never share
    a key."""
    return f"llm:{len(namespace.encode('utf-8'))}:{namespace}:{len(scope.encode('utf-8'))}:{scope}:{prompt}"


@dataclass(frozen=True)
class Question:
    """One question as the cache sees it.

    `prompt` is the text both layers key on: the exact layer on the text itself, the semantic
    layer on its meaning (so it should be natural text — the user's question, not a hash).
    `scope` is everything else that decides the answer (model, parameters, system prompt, the
    conversation before the question — a hash of them), an exact filter for both layers: an
    answer is only ever served to a question with the same scope.

    `semantic=False`, or a prompt the semantic layer cannot take (empty, more than 64 KiB, not
    encodable as UTF-8), keeps the question in the exact layer only, under a key of its own
    (`CACHE.GET`/`CACHE.SET` on a hash of scope and prompt)."""

    namespace: str
    prompt: str
    scope: str
    semantic: bool = True
    min_score: Optional[float] = None

    @property
    def layered(self) -> bool:
        """True when LLM.GET / LLM.SET serve this question (both layers)."""
        if not self.semantic or not self.prompt.strip():
            return False
        try:
            size = len(self.prompt.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate
            return False
        return size <= MAX_SEMANTIC_PROMPT

    @property
    def key(self) -> str:
        """The exact-cache key this question's answer lives under."""
        if self.layered:
            return llm_key(self.namespace, self.scope, self.prompt)
        material = json.dumps([self.scope, self.prompt], ensure_ascii=True, separators=(",", ":"))
        return f"sluice:x:{self.namespace}:" + hashlib.sha256(material.encode("ascii")).hexdigest()

    @property
    def handoff_key(self) -> str:
        """Where the caller computing this question's answer says it gave up (see abandon)."""
        return "sluice:handoff:" + hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass(frozen=True)
class Found:
    """What a lookup or a poll found.

    `answer` set: a hit (`source` exact, semantic, lease or stale). Otherwise `lease` is this
    caller's token (it must compute the answer), or `waiting` says another caller computes it;
    `abandoned` then is `(reason, id, at)` when the caller computing it gave up: reason `failed`
    (the upstream failed) or `gave-up` (anything else), its lease token or successor id, and
    when (Unix ms)."""

    answer: Optional[bytes] = None
    source: Optional[str] = None
    score: Optional[float] = None
    lease: Optional[str] = None
    waiting: bool = False
    abandoned: Optional[Tuple[str, str, int]] = None


class AnswerStore:
    """The lookup/store steps of a guarded call, as flows (see _flow)."""

    def lookup(self, q: Question, lease_ms: Optional[int]) -> Flow[Found]:
        """Exact, then semantic. With `lease_ms`, a miss also asks for the question's lease."""
        raise NotImplementedError

    def poll(self, q: Question, lease_ms: int) -> Flow[Found]:
        """A waiter's look: the answer, the lease (if it ran out), or whether its holder gave up."""
        raise NotImplementedError

    def stale(self, q: Question, stale_ms: int) -> Flow[Found]:
        """Any answer, an expired one (less than `stale_ms` ago) included."""
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
        clear_handoff: bool = False,
    ) -> Flow[None]:
        raise NotImplementedError

    def abandon(self, q: Question, reason: str, ident: str, remaining_ms: int) -> Flow[None]:
        """The caller computing the answer (`ident`: its lease token or successor id) gives up."""
        raise NotImplementedError

    def take_over(self, q: Question, abandoned: str, me: str, lease_ms: int) -> Flow[bool]:
        """Elects one successor of the caller `abandoned`: True for exactly one caller."""
        raise NotImplementedError


class LLMStore(AnswerStore):
    """LLM.GET / LLM.SET, one round trip each; CACHE.GET / CACHE.SET for questions kept in the
    exact layer only (`Question.layered` false)."""

    def lookup(self, q: Question, lease_ms: Optional[int]) -> Flow[Found]:
        reply = yield from one(self._get(q, lease_ms=lease_ms))
        return _found(q, reply, "exact", lease_ms is not None)

    def poll(self, q: Question, lease_ms: int) -> Flow[Found]:
        results = yield from batch(self._get(q, lease_ms=lease_ms), c.get(q.handoff_key))
        reply, handoff = results
        if isinstance(reply, BaseException):
            raise reply
        found = _found(q, reply, "lease", True)
        if found.answer is not None or found.lease is not None:
            return found
        if isinstance(handoff, bytes):
            fields = handoff.decode("utf-8", "replace").split(" ")
            if len(fields) == 3 and fields[2].isdigit():
                return Found(waiting=True, abandoned=(fields[0], fields[1], int(fields[2])))
        elif isinstance(handoff, SluiceError):
            log.debug("could not read the hand-off marker: %s", handoff)
        return found

    def stale(self, q: Question, stale_ms: int) -> Flow[Found]:
        reply = yield from one(self._get(q, stale_ms=stale_ms))
        return _found(q, reply, "exact", False)

    def _get(self, q: Question, *, lease_ms: Optional[int] = None, stale_ms: Optional[int] = None) -> Cmd[Any]:
        if q.layered:
            return c.llm_get(q.namespace, q.prompt, scope=q.scope or None, min_score=q.min_score, lease_ms=lease_ms, stale_ms=stale_ms)
        return c.cache_get(q.key, lease_ms=lease_ms, stale_ms=stale_ms)

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
        clear_handoff: bool = False,
    ) -> Flow[None]:
        layered = q.layered
        tried_without_lease = lease is None
        while True:
            if layered:
                cmd: Cmd[Any] = c.llm_set(q.namespace, q.prompt, answer, px=ttl_ms, scope=q.scope or None, tokens=tokens, cost=cost, tag=tag, lease=lease)
            else:
                # Also the fallback for a prompt LLM.SET refuses (below): the same key LLM.GET
                # reads, in LLM.SET's format.
                value = answer if not q.layered else _ENVELOPE + answer
                cmd = c.cache_set(q.key, value, px=ttl_ms, tokens=tokens, cost=cost, tag=tag, lease=lease)
            cmds: List[Cmd[Any]] = [cmd]
            if clear_handoff:
                cmds.append(c.delete(q.handoff_key))
            results = yield from batch(*cmds)
            error = results[0]
            if not isinstance(error, SluiceError):
                return
            message = str(error)
            if isinstance(error, CommandError) and "not the current lease" in message and not tried_without_lease:
                # Our lease ran out and another caller holds the question's lease now. An answer
                # is an answer: store it anyway (its holder's later store replaces it).
                log.debug("lease lost; storing the answer without it: %s", message)
                lease, tried_without_lease = None, True
                continue
            if layered and isinstance(error, CommandError) and "no words to embed" in message:
                # LLM.GET takes a prompt the embedder finds no words in ("???", "a"): the exact
                # layer answers it and leases it. LLM.SET refuses it and stores neither layer;
                # the exact entry alone is what such a question can have.
                log.debug("LLM.SET refused the prompt (%s); storing the exact entry only", message)
                layered = False
                continue
            raise error

    def abandon(self, q: Question, reason: str, ident: str, remaining_ms: int) -> Flow[None]:
        # There is no command to hand a lease back, and DEL (which ends it) would also delete the
        # expired copy STALE serves. So the holder leaves a marker for as long as its lease has
        # left; waiters polling see it and elect one of them to take its place.
        if remaining_ms > 0:
            marker = f"{reason} {ident} {int(time.time() * 1000)}"
            results = yield from batch(c.set_(q.handoff_key, marker, px=remaining_ms))
            if isinstance(results[0], SluiceError):
                log.warning("could not mark the lease abandoned: %s", results[0])

    def take_over(self, q: Question, abandoned: str, me: str, lease_ms: int) -> Flow[bool]:
        results = yield from batch(c.set_(f"{q.handoff_key}:{abandoned}", me, px=lease_ms, nx=True))
        won = results[0]
        if isinstance(won, SluiceError):
            log.warning("could not elect a successor: %s", won)
            return False
        return bool(won)


def _found(q: Question, reply: Any, hit_source: str, leasing: bool) -> Found:
    if isinstance(reply, LLMAnswer):
        if reply.answer is not None:
            if reply.layer == "semantic" and reply.matched_prompt != q.prompt:
                return Found(answer=reply.answer, source="semantic", score=reply.score)
            # (The semantic layer can answer the very prompt, e.g. in shared mode just after
            # LLM.SET, before this instance sees the exact entry: that is no paraphrase.)
            if reply.layer == "stale":
                return Found(answer=reply.answer, source="stale")
            return Found(answer=reply.answer, source=hit_source, score=reply.score)
        lease = reply.lease
    else:
        assert isinstance(reply, CacheEntry)
        if reply.value is not None:
            return Found(answer=reply.value, source="stale" if reply.layer == "stale" else hit_source)
        lease = reply.lease
    if lease is not None:
        return Found(lease=lease)
    return Found(waiting=leasing)
