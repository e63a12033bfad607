"""Key canonicalisation: what must and must not change the cache key."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Callable, Dict

import openai
import pydantic
import pytest
from conftest import SluiceServer, user

import sluice
import sluice.openai
from fake_upstream import FakeUpstream
from sluice.keys import canonical_json, chat_key, chat_question, chat_request, chat_semantic, digest, normalize, prompt_question

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


def test_the_endpoint_and_extra_query_are_part_of_the_question() -> None:
    key = chat_key("ns", BASE, endpoint="https://api.openai.com/v1")
    assert chat_key("ns", BASE, endpoint="https://api.openai.com/v1/") == key  # a trailing slash is no other endpoint
    assert chat_key("ns", BASE, endpoint="https://example.openai.azure.com/v1") != key
    assert chat_key("ns", BASE) != key
    assert chat_key("ns", {**BASE, "extra_query": {"api-version": "2024-10-21"}}, endpoint="https://api.openai.com/v1") != key


def test_the_canonical_form_is_pinned() -> None:
    """A change of the canonical form silently empties every cache: make it a deliberate one."""
    assert canonical_json({"b": 1.0, "a": [True, None, "é\ud800"]}) == '{"a":[true,null,"\\u00e9\\ud800"],"b":1}'
    assert digest(chat_request(BASE, "https://api.openai.com/v1")) == PINNED_REQUEST_DIGEST
    q = chat_question("ns", BASE, endpoint="https://api.openai.com/v1")
    assert q.prompt == "What is RESP?" and q.scope == PINNED_SCOPE
    assert q.key == f"llm:2:ns:64:{PINNED_SCOPE}:What is RESP?"  # LLM.GET's key (PROTOCOL.md)


PINNED_REQUEST_DIGEST = "840cad086429bf3ace9bd768dbf2e573eef80962184e0fa1b87f2950ebaaee34"
PINNED_SCOPE = "5568663d9673af1fd097f4a34509e876e43776508504e7118b2e3f1731b062e7"


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Answer(pydantic.BaseModel):
    city: str
    population: int


def test_canonical_types() -> None:
    assert normalize({3, 1, 2}) == [1, 2, 3] and normalize(frozenset({"b", "a"})) == ["a", "b"]
    assert normalize(Colour.RED) == "red"
    assert normalize(Point(1, 2)) != normalize({"x": 1, "y": 2})  # tagged, not confused with a dict
    assert normalize(b"abc") != normalize("abc")
    assert normalize({1: "x"}) == {"1": "x"}  # what the SDK sends for an int key (logit_bias)
    # A pydantic model class (response_format=Answer) is its schema; an instance is its fields.
    assert normalize(Answer)["schema"]["properties"]["city"] == {"title": "City", "type": "string"}
    assert normalize(Answer(city="Lima", population=10)) == {"city": "Lima", "population": 10}
    # Lone surrogates (invalid UTF-8, but a str can hold them) do not crash.
    lone = {**BASE, "messages": [user("broken \ud800 text")]}
    assert chat_key("ns", lone).startswith("sluice:x:ns:")  # the exact layer only: the text cannot be sent as UTF-8
    # What has no canonical form is refused, not guessed at.
    with pytest.raises(TypeError):
        normalize(object())
    with pytest.raises(TypeError):
        normalize({(1, 2): "tuple key"})
    with pytest.raises(TypeError):
        chat_key("ns", {**BASE, "temperature": complex(1, 2)})


def test_semantic_prompt_and_scope() -> None:
    prompt, scope = chat_semantic(BASE) or ("", "")
    assert prompt == "What is RESP?"
    other_system = {**BASE, "messages": [{"role": "system", "content": "Be verbose."}, BASE["messages"][1]]}
    other = chat_semantic(other_system)
    assert other is not None and other[0] == prompt and other[1] != scope
    paraphrase = {**BASE, "messages": BASE["messages"][:1] + [{"role": "user", "content": "Explain RESP.", "name": "alice"}]}
    assert (chat_semantic(paraphrase) or ("", ""))[1] == scope  # same scope, different prompt
    assert chat_semantic({**BASE, "messages": BASE["messages"] + [{"role": "assistant", "content": "x"}]}) is None
    # Without a user text to end it, a request is kept in the exact layer, keyed by all of it.
    tool_turn = chat_question("ns", {**BASE, "messages": BASE["messages"] + [{"role": "tool", "tool_call_id": "1", "content": "42"}]})
    assert not tool_turn.layered and tool_turn.key.startswith("sluice:x:ns:")
    # Text parts are the same prompt as a string, but not the same question.
    parts = {**BASE, "messages": [user([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])]}
    joined = {**BASE, "messages": [user("a\nb")]}
    assert chat_question("ns", parts).prompt == chat_question("ns", joined).prompt == "a\nb"
    assert chat_key("ns", parts) != chat_key("ns", joined)
    assert prompt_question("ns", "m", "p", {"a": 1, "b": 2}).key == prompt_question("ns", "m", "p", {"b": 2, "a": 1}).key
    assert prompt_question("ns", "m", "p", {"a": 1}).key != prompt_question("ns", "m", "p", {"a": 2}).key
    assert prompt_question("ns", "m", "p", semantic=False).key != prompt_question("ns", "m", "p").key
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


def test_a_question_with_no_words_to_embed_is_still_cached(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str]) -> None:
    """LLM.SET refuses a prompt the embedder finds no words in ("???"); the answer is kept in the
    exact layer all the same, so the second ask is a hit."""
    sl = server.client()
    client = sluice.openai.wrap(openai.OpenAI(base_url=upstream.base_url, api_key="x"), sl, namespace=name("ns"))
    for _ in range(2):
        client.chat.completions.create(model="m", messages=[user("???")])
    assert upstream.stats()["requests"] == 1 and sl.stats.exact_hits == 1
    sl.close()
