"""A LangChain LLM cache on Sluice's exact and semantic layers:

    import sluice
    from langchain_core.globals import set_llm_cache
    from sluice.langchain import SluiceCache
    set_llm_cache(SluiceCache(sluice.Sluice()))

Every chat model and LLM of LangChain then asks Sluice first (`LLM.GET`, one round trip). An
identical request (same messages, same model parameters — LangChain's `llm_string`) is an exact
hit; a paraphrase of the last human message, with the same parameters and the same conversation
before it, is a semantic hit. Answers are stored in both layers at once (`LLM.SET`) as plain
JSON (message dicts), never as pickles or constructor manifests, so reading the cache cannot
run code. While Sluice cannot be reached, lookups are misses and updates are skipped (logged):
the cache never takes the chain down with it."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from . import _commands as c
from ._flow import Flow, one
from ._lookup import AnswerStore, LLMStore, Question
from .client import AsyncSluice, Sluice
from .errors import SluiceError
from .keys import digest
from .types import CallStats

__all__ = ["SluiceCache"]

log = logging.getLogger("sluice")


class SluiceCache(BaseCache):
    """`sluice` serves `lookup`/`update`/`clear`; `async_sluice` (optional) their `a...` forms,
    which otherwise run the blocking ones in a thread (LangChain's default)."""

    def __init__(
        self,
        sluice: Optional[Sluice] = None,
        *,
        async_sluice: Optional[AsyncSluice] = None,
        namespace: str = "langchain",
        ttl_ms: Optional[int] = 86_400_000,
        semantic: bool = True,
        min_score: Optional[float] = None,
        tag: Optional[str] = None,
        store: Optional[AnswerStore] = None,
    ) -> None:
        self.sluice = sluice if sluice is not None else (None if async_sluice is not None else Sluice())
        self.async_sluice = async_sluice
        self.namespace = namespace
        self.ttl_ms = ttl_ms
        self.semantic = semantic
        self.min_score = min_score
        self.tag = tag
        self.stats = CallStats()
        self._store = store or LLMStore()
        self._generation_key = f"sluice:lc:{namespace}:generation"

    # ------------------------------------------------------------------ flows

    def _question(self, prompt: str, llm_string: str, generation: int) -> Question:
        text, context = _last_human_text(prompt)
        if text is None:
            # No human text to compare by meaning: the exact layer only, keyed by everything.
            scope = digest({"g": generation, "llm": llm_string, "prompt": prompt})
            return Question(namespace=self.namespace, prompt="", scope=scope, semantic=False)
        return Question(
            namespace=self.namespace,
            prompt=text,
            scope=digest({"g": generation, "llm": llm_string, "context": context}),
            semantic=self.semantic,
            min_score=self.min_score,
        )

    def _generation(self) -> Flow[int]:
        # clear() cannot enumerate the exact keys it wrote, so it moves every key to a new
        # generation instead (and deletes the semantic namespace, which it can).
        raw = yield from one(c.get(self._generation_key))
        return int(raw) if raw else 0

    def _lookup(self, prompt: str, llm_string: str) -> Flow[Optional[RETURN_VAL_TYPE]]:
        self.stats.add(calls=1)
        try:
            generation = yield from self._generation()
            found = yield from self._store.lookup(self._question(prompt, llm_string, generation), None)
        except SluiceError as exc:
            self.stats.add(sluice_errors=1)
            log.warning("Sluice lookup failed, treated as a miss: %s", exc)
            return None
        if found.answer is None:
            return None
        try:
            generations = _loads(found.answer)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a cache entry LangChain cannot read: %s", exc)
            return None
        self.stats.add(**{"semantic_hits" if found.source == "semantic" else "exact_hits": 1})
        return generations

    def _update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> Flow[None]:
        tokens = _total_tokens(return_val)
        self.stats.add(upstream_calls=1, tokens_used=tokens or 0)
        try:
            generation = yield from self._generation()
            yield from self._store.store(
                self._question(prompt, llm_string, generation),
                _dumps(return_val).encode("utf-8"),
                ttl_ms=self.ttl_ms,
                tokens=tokens,
                cost=None,
                tag=self.tag,
                lease=None,
            )
        except SluiceError as exc:
            self.stats.add(sluice_errors=1)
            log.warning("Sluice update failed; the answer is not cached: %s", exc)

    def _clear(self) -> Flow[None]:
        # INCR: two clear()s at once move to two new generations, never back to one.
        yield from one(c.incr(self._generation_key))
        yield from one(c.sem_del(self.namespace))

    # ------------------------------------------------------------------ BaseCache

    def _sync(self) -> Sluice:
        if self.sluice is None:
            raise RuntimeError("this SluiceCache was made with an AsyncSluice only; use the async methods")
        return self.sluice

    def lookup(self, prompt: str, llm_string: str) -> Optional[RETURN_VAL_TYPE]:
        return self._sync().run_flow(self._lookup(prompt, llm_string))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self._sync().run_flow(self._update(prompt, llm_string, return_val))

    def clear(self, **kwargs: Any) -> None:
        self._sync().run_flow(self._clear())

    async def alookup(self, prompt: str, llm_string: str) -> Optional[RETURN_VAL_TYPE]:
        if self.async_sluice is None:
            return await super().alookup(prompt, llm_string)
        return await self.async_sluice.run_flow(self._lookup(prompt, llm_string))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.async_sluice is None:
            await super().aupdate(prompt, llm_string, return_val)
            return
        await self.async_sluice.run_flow(self._update(prompt, llm_string, return_val))

    async def aclear(self, **kwargs: Any) -> None:
        if self.async_sluice is None:
            await super().aclear(**kwargs)
            return
        await self.async_sluice.run_flow(self._clear())


def _last_human_text(prompt: str) -> Tuple[Optional[str], Any]:
    """(the last human message's text, everything before it) of a chat model's prompt, which
    LangChain passes as its serialized message list; a plain LLM's prompt is its own text."""
    try:
        messages = json.loads(prompt)
    except ValueError:
        return prompt, None
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return prompt, None
    last = messages[-1]
    raw_kwargs = last.get("kwargs")
    kwargs: Dict[str, Any] = raw_kwargs if isinstance(raw_kwargs, dict) else {}
    ident = last.get("id")
    is_human = kwargs.get("type") == "human" or (isinstance(ident, list) and ident and ident[-1] == "HumanMessage")
    content = kwargs.get("content")
    if not is_human or not isinstance(content, str) or not content.strip():
        return None, None
    rest = {k: v for k, v in kwargs.items() if k not in ("content", "id")}
    return content, {"before": messages[:-1], "last": rest}


def _dumps(generations: Sequence[Generation]) -> str:
    items: List[Dict[str, Any]] = []
    for g in generations:
        item: Dict[str, Any] = {"text": g.text, "generation_info": g.generation_info}
        if isinstance(g, ChatGeneration):
            item["message"] = message_to_dict(g.message)
        items.append(item)
    return json.dumps({"sluice_langchain": 1, "generations": items})


def _loads(data: bytes) -> List[Generation]:
    payload = json.loads(data)
    out: List[Generation] = []
    for item in payload["generations"]:
        if "message" in item:
            message = messages_from_dict([item["message"]])[0]
            out.append(ChatGeneration(message=message, generation_info=item.get("generation_info")))
        else:
            out.append(Generation(text=item["text"], generation_info=item.get("generation_info")))
    return out


def _total_tokens(generations: Sequence[Generation]) -> Optional[int]:
    total = 0
    seen = False
    for g in generations:
        usage = getattr(getattr(g, "message", None), "usage_metadata", None)
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            total += usage["total_tokens"]
            seen = True
    return total if seen else None
