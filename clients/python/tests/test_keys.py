"""Key canonicalisation: what must and must not change the cache key."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

import openai
from conftest import SluiceServer, user

import sluice
import sluice.openai
from fake_upstream import FakeUpstream
from sluice.keys import chat_key, chat_semantic, digest, prompt_key

BASE: Dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is RESP?", "name": "alice"},
    ],
    "temperature": 0.2,
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
    "response_format": {"type": "json_object"},
}


def reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order (what another client may send)."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def test_json_key_order_does_not_matter() -> None:
    again = reordered(BASE)
    assert json.dumps(again) != json.dumps(BASE)  # the test means something
    assert chat_key("ns", again) == chat_key("ns", BASE)
    assert chat_semantic(again) == chat_semantic(BASE)


def test_every_answer_changing_parameter_changes_the_key() -> None:
    key = chat_key("ns", BASE)
    changes = {
        "model": "gpt-4o-mini",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 10,
        "seed": 1,
        "stop": ["\n"],
        "n": 2,
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "messages": BASE["messages"][:1] + [{"role": "user", "content": "What is RESP3?", "name": "alice"}],
        "some_future_parameter": True,
    }
    keys = {chat_key("ns", {**BASE, name: value}) for name, value in changes.items()}
    assert key not in keys and len(keys) == len(changes)
    assert chat_key("other-ns", BASE) != key


def test_parameters_that_cannot_change_the_answer_are_ignored() -> None:
    key = chat_key("ns", BASE)
    for name, value in {"user": "u-1", "metadata": {"a": "b"}, "store": True, "timeout": 30, "extra_headers": {"x": "y"}}.items():
        assert chat_key("ns", {**BASE, name: value}) == key, name
    assert chat_key("ns", {**BASE, "temperature": 1}) == chat_key("ns", {**BASE, "temperature": 1.0})
    assert chat_key("ns", {**BASE, "top_p": None}) == key
    assert chat_key("ns", {**BASE, "top_p": openai.NOT_GIVEN}) == key


def test_semantic_prompt_and_scope() -> None:
    prompt, scope = chat_semantic(BASE) or ("", "")
    assert prompt == "What is RESP?"
    other_system = {**BASE, "messages": [{"role": "system", "content": "Be verbose."}, BASE["messages"][1]]}
    other = chat_semantic(other_system)
    assert other is not None and other[0] == prompt and other[1] != scope
    paraphrase = {**BASE, "messages": BASE["messages"][:1] + [{"role": "user", "content": "Explain RESP.", "name": "alice"}]}
    assert (chat_semantic(paraphrase) or ("", ""))[1] == scope  # same scope, different prompt
    assert chat_semantic({**BASE, "messages": BASE["messages"] + [{"role": "assistant", "content": "x"}]}) is None
    assert prompt_key("ns", "m", "p", {"a": 1, "b": 2}) == prompt_key("ns", "m", "p", {"b": 2, "a": 1})
    assert digest({"a": [1, 2]}) != digest({"a": [2, 1]})


def test_wrapper_same_request_in_another_order_is_one_upstream_call(
    server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]
) -> None:
    sl = server.client()
    client = sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x"), sl, namespace=name("ns"))
    request = {"model": "m", "messages": [user("Name three prime numbers.")], "temperature": 0, "max_tokens": 50}
    first = client.chat.completions.create(**request)
    second = client.chat.completions.create(**reordered(request))
    assert upstream.stats()["requests"] == 1
    assert second.choices[0].message.content == first.choices[0].message.content
    client.chat.completions.create(**{**request, "temperature": 0.5})
    assert upstream.stats()["requests"] == 2
    assert sl.stats.exact_hits == 1
    sl.close()
