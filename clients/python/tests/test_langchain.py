"""The LangChain cache with the real langchain-core: a chat model that calls the fake upstream
through the real openai SDK, cached by Sluice through `set_llm_cache`."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional

import openai
import pytest
from conftest import SluiceServer
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from fake_upstream import FakeUpstream
from sluice.langchain import SluiceCache

ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class UpstreamChat(BaseChatModel):
    """The smallest honest chat model: it really calls an OpenAI-compatible endpoint."""

    base_url: str
    model: str = "m"
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "upstream-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature}

    def _generate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        client = openai.OpenAI(base_url=self.base_url, api_key="x", max_retries=0)
        completion = client.chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            messages=[{"role": ROLES[m.type], "content": str(m.content)} for m in messages],
        )
        usage = completion.usage
        assert usage is not None
        message = AIMessage(
            content=completion.choices[0].message.content or "",
            usage_metadata={"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture
def no_global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


def test_exact_and_semantic_hits(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str], no_global_cache: None) -> None:
    cache = SluiceCache(server.client(), namespace=name("lc"))
    set_llm_cache(cache)
    chat = UpstreamChat(base_url=upstream.base_url)
    system = SystemMessage("You are a support bot.")
    first = chat.invoke([system, HumanMessage("How do I cancel my subscription?")])
    assert first.content == "[m] An answer to: How do I cancel my subscription?"
    again = chat.invoke([system, HumanMessage("How do I cancel my subscription?")])
    para = chat.invoke([system, HumanMessage("How can I cancel my subscription?")])
    assert again.content == first.content and para.content == first.content
    assert upstream.stats()["requests"] == 1
    assert cache.stats.exact_hits == 1 and cache.stats.semantic_hits == 1
    assert isinstance(again, AIMessage) and again.usage_metadata is not None and again.usage_metadata["total_tokens"] > 0
    # Other settings, another system prompt, or another question: not the same answer.
    UpstreamChat(base_url=upstream.base_url, temperature=0.7).invoke([system, HumanMessage("How do I cancel my subscription?")])
    chat.invoke([SystemMessage("Answer in French."), HumanMessage("How do I cancel my subscription?")])
    chat.invoke([system, HumanMessage("How do I delete my account?")])
    assert upstream.stats()["requests"] == 4
    assert server.client().server_stats()["tokens_saved"] > 0
    cache.clear()
    chat.invoke([system, HumanMessage("How do I cancel my subscription?")])
    assert upstream.stats()["requests"] == 5


async def test_async_cache(server: SluiceServer, upstream: FakeUpstream, name: Callable[[str], str], no_global_cache: None) -> None:
    sl = server.async_client()
    cache = SluiceCache(async_sluice=sl, namespace=name("lc"))
    set_llm_cache(cache)
    chat = UpstreamChat(base_url=upstream.base_url)
    first = await chat.ainvoke("Do you ship to Canada?")
    second = await chat.ainvoke("Do you ship to Canada?")
    third = await chat.ainvoke("Can you ship orders to Canada?")
    assert first.content == second.content == third.content
    assert upstream.stats()["requests"] == 1
    assert cache.stats.exact_hits == 1 and cache.stats.semantic_hits == 1
    with pytest.raises(RuntimeError):
        cache.lookup("x", "y")  # made for asyncio only
    await sl.aclose()


def test_an_unreachable_sluice_is_a_miss_not_an_error(upstream: FakeUpstream, no_global_cache: None) -> None:
    import socket

    import sluice

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    cache = SluiceCache(sluice.Sluice(url=f"redis://127.0.0.1:{port}", socket_connect_timeout=1))
    set_llm_cache(cache)
    chat = UpstreamChat(base_url=upstream.base_url)
    assert chat.invoke("Still there?").content == "[m] An answer to: Still there?"
    assert upstream.stats()["requests"] == 1 and cache.stats.sluice_errors == 2  # the lookup and the update
