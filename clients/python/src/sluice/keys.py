"""Canonical questions: the same request always makes the same question, whatever order its JSON
keys came in, and any parameter that can change the answer changes it.

A question (`sluice.Question`) is what `LLM.GET` / `LLM.SET` key on: a `prompt` — natural text,
which the exact layer compares byte for byte and the semantic layer by meaning — and a `scope`,
a SHA-256 of everything else that decides the answer (model, parameters, the conversation before
the question, the endpoint), which both layers treat as an exact filter. So two requests share
an exact entry only when they are the same request, and a paraphrase is only ever answered
across the same settings."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import math
from typing import Any, Dict, Mapping, Optional, Tuple

from ._lookup import Question

# Sentinels SDKs use for "not given" (openai's NotGiven/Omit); they mean the same as absent.
_OMITTED_TYPE_NAMES = frozenset({"NotGiven", "Omit", "_NotGiven", "_Omit"})


def _omitted(value: Any) -> bool:
    return value is None or type(value).__name__ in _OMITTED_TYPE_NAMES


def normalize(value: Any) -> Any:
    """Plain JSON data with the differences that do not change a request removed: key order,
    tuples vs lists, 1 vs 1.0, absent vs None vs an SDK's NOT_GIVEN in objects, pydantic models
    vs dicts, the order of a set. Types JSON has no form for are tagged (`{"$bytes": sha256}`,
    `{"$decimal": "1.10"}`, ...), so no two different values share a form; a type this function
    does not know raises TypeError rather than being guessed at (its `str()` may not say what
    it holds, or may hold an address that differs every run)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, type):
        schema = getattr(value, "model_json_schema", None)
        if callable(schema):  # a pydantic model class, e.g. response_format=Answer
            return {"$model": f"{value.__module__}.{value.__qualname__}", "schema": normalize(schema())}
        raise TypeError(f"cannot make a cache key of the class {value.__qualname__}")
    if _omitted(value):
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        value = dump(exclude_none=True)
    if isinstance(value, Mapping):
        out: Dict[str, Any] = {}
        for k, v in value.items():
            if _omitted(v):
                continue
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"cannot make a cache key of a mapping with a {type(k).__qualname__} key")
            out[str(k)] = normalize(v)  # an int key is sent as its decimal string anyway
        return out
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((normalize(v) for v in value), key=_dumps)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, enum.Enum):
        return normalize(value.value)
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (datetime.date, datetime.time)):
        return {"$" + type(value).__name__: value.isoformat()}
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"$dataclass": f"{type(value).__module__}.{type(value).__qualname__}", "fields": normalize(fields)}
    raise TypeError(
        f"cannot make a cache key of a {type(value).__module__}.{type(value).__qualname__}: "
        "pass JSON-like data (dicts, lists, strings, numbers, booleans, None), pydantic models or bytes"
    )


def _dumps(value: Any) -> str:
    # ensure_ascii: a lone surrogate (which UTF-8 cannot encode) becomes an escape, not a crash.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def canonical_json(value: Any) -> str:
    return _dumps(normalize(value))


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()


# ---------------------------------------------------------------------- a plain prompt (llm_call)


def prompt_scope(model: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """The SCOPE of `llm_call`'s question: everything but the prompt text, so an answer is only
    ever served to a call with the same model and settings."""
    return digest({"model": model, "params": dict(params or {})})


def prompt_question(
    namespace: str,
    model: str,
    prompt: str,
    params: Optional[Mapping[str, Any]] = None,
    *,
    semantic: bool = True,
    min_score: Optional[float] = None,
) -> Question:
    return Question(namespace=namespace, prompt=prompt, scope=prompt_scope(model, params), semantic=semantic, min_score=min_score)


# ---------------------------------------------------------------------- chat completions

# Chat-completions parameters that cannot change the answer's content: transport, billing,
# logging and the streaming switch (streamed calls are never cached). Anything not listed —
# including parameters newer than this list — is part of the key: a missed hit costs money, a
# wrong hit costs correctness. (`extra_query` is part of it: it can select an API version.)
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
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
    }
)


def chat_request(kwargs: Mapping[str, Any], endpoint: Optional[str] = None) -> Dict[str, Any]:
    """The part of a chat.completions.create call that decides the answer, normalised; with the
    endpoint (the client's base URL) it was sent to, when given."""
    request = normalize({k: v for k, v in kwargs.items() if k not in CHAT_NON_ANSWER_PARAMS})
    assert isinstance(request, dict)
    if endpoint is not None:
        request["$endpoint"] = endpoint.rstrip("/")
    return request


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


def _split(request: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = message_text(last)
    if text is None or not text.strip():
        return None
    rest = dict(request)
    shell = {k: v for k, v in last.items() if k != "content"}
    content = last.get("content")
    if isinstance(content, list):
        # Text parts joined are the prompt; the parts' shape (and anything else on them) stays
        # in the scope, so "a\nb" and ["a", "b"] remain two questions.
        shell["content"] = [{k: v for k, v in part.items() if k != "text"} for part in content]
    rest["messages"] = messages[:-1] + [shell]
    return text, digest(rest)


def chat_semantic(kwargs: Mapping[str, Any], endpoint: Optional[str] = None) -> Optional[Tuple[str, str]]:
    """(prompt, scope): the last user message's text is the prompt; the model, the parameters,
    the endpoint and the conversation before it are the scope. None when the request does not
    end with a user message of plain text."""
    return _split(chat_request(kwargs, endpoint))


def chat_question(
    namespace: str,
    kwargs: Mapping[str, Any],
    *,
    endpoint: Optional[str] = None,
    semantic: bool = True,
    min_score: Optional[float] = None,
) -> Question:
    """The question of a chat.completions.create call. A request that does not end with a user
    message of plain text (a tool result, an image) is kept in the exact layer only, keyed by the
    hash of the whole request."""
    request = chat_request(kwargs, endpoint)
    split = _split(request)
    if split is None:
        return Question(namespace=namespace, prompt="", scope=digest(request), semantic=False)
    text, scope = split
    return Question(namespace=namespace, prompt=text, scope=scope, semantic=semantic, min_score=min_score)


def chat_key(namespace: str, kwargs: Mapping[str, Any], endpoint: Optional[str] = None) -> str:
    """The exact-cache key a chat.completions.create call's answer lives under."""
    return chat_question(namespace, kwargs, endpoint=endpoint).key
