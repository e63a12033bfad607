"""Canonical cache keys: the same request always hashes the same, whatever order its JSON keys
came in, and any parameter that can change the answer changes the key."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping, Optional

# Sentinels SDKs use for "not given" (openai's NotGiven/Omit); they mean the same as absent.
_OMITTED_TYPE_NAMES = frozenset({"NotGiven", "Omit", "_NotGiven", "_Omit"})


def _omitted(value: Any) -> bool:
    return value is None or type(value).__name__ in _OMITTED_TYPE_NAMES


def normalize(value: Any) -> Any:
    """Plain JSON data with the differences that do not change a request removed: key order,
    tuples vs lists, 1 vs 1.0, absent vs None vs an SDK's NOT_GIVEN in objects, pydantic models
    vs dicts."""
    if hasattr(value, "model_dump") and callable(value.model_dump):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items() if not _omitted(v)}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, bytes):
        return {"$bytes": hashlib.sha256(value).hexdigest()}
    if _omitted(value):
        return None
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def prompt_key(namespace: str, model: str, prompt: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """Exact-cache key of a plain prompt (what `llm_call` uses)."""
    return f"sluice:llm:{namespace}:" + digest({"model": model, "prompt": prompt, "params": dict(params or {})})


def prompt_scope(model: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """Semantic SCOPE: everything but the prompt text, so a paraphrase is only ever answered from
    an entry made with the same model and settings."""
    return digest({"model": model, "params": dict(params or {})})[:32]


# Chat-completions parameters that cannot change the answer's content: transport, billing,
# logging and the streaming switch (streamed calls are never cached). Anything not listed —
# including parameters newer than this list — is part of the key: a missed hit costs money, a
# wrong hit costs correctness.
CHAT_NON_ANSWER_PARAMS = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "timeout",
        "extra_headers",
        "extra_query",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
    }
)


def chat_request(kwargs: Mapping[str, Any]) -> Any:
    """The part of a chat.completions.create call that decides the answer, normalised."""
    return normalize({k: v for k, v in kwargs.items() if k not in CHAT_NON_ANSWER_PARAMS})


def chat_key(namespace: str, kwargs: Mapping[str, Any]) -> str:
    return f"sluice:chat:{namespace}:" + digest(chat_request(kwargs))


def message_text(message: Any) -> Optional[str]:
    """The text of a chat message's content (a string or text parts), or None."""
    content = message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            part = normalize(part)
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                return None  # images, audio, files: no text stands for them
            texts.append(part["text"])
        return "\n".join(texts) if texts else None
    return None


def chat_semantic(kwargs: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    """(prompt, scope) for the semantic layer: the last user message is the prompt, and the
    model, the parameters and the conversation before it are the scope, so a paraphrased
    question in the same conversation and settings can be answered. None when the request does
    not end with a user message of plain text."""
    request = chat_request(kwargs)
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = message_text(last)
    if text is None or not text.strip():
        return None
    rest = dict(request)
    rest["messages"] = messages[:-1] + [{k: v for k, v in last.items() if k != "content"}]
    return text, digest(rest)[:32]
