#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream: `POST /v1/chat/completions` on a local port, with the
failure modes an LLM provider really has — latency, 429s with Retry-After (random, on demand, or
from a requests-per-minute limit of its own), 5xx bursts — so Sluice's cache, limits and breakers
can be watched working without an API key.

    python examples/fake_upstream.py --port 8900 --latency-ms 300 --rpm 120 --burst-5xx 10:3

then point any OpenAI client at http://127.0.0.1:8900/v1 (any API key). Its answers are
deterministic (the same question gets the same answer and the same token counts), and it keeps
count of everything it did: GET /_admin/stats. POST /_admin/config with a JSON object changes
settings while it runs (the same names as the flags, plus fail_next_429, fail_next_5xx and
burst_5xx_for_s: start a 5xx burst now). POST /_admin/reset zeroes the counters.

Stdlib only; also importable (`FakeUpstream`) to run in a thread of a test or an example."""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: words plus punctuation marks."""
    words = len(text.split())
    marks = sum(1 for ch in text if ch in ".,;:!?()[]{}\"'")
    return words + marks


def message_text(message: Dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class UpstreamState:
    def __init__(
        self,
        latency_ms: float = 200.0,
        jitter_ms: float = 0.0,
        rpm: int = 0,
        rate_429: float = 0.0,
        retry_after_s: float = 1.0,
        rate_5xx: float = 0.0,
        bursts_5xx: Optional[List[Tuple[float, float]]] = None,
        completion_tokens: int = 0,
        seed: int = 7,
    ) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.rpm = rpm
        self.rate_429 = rate_429
        self.retry_after_s = retry_after_s
        self.rate_5xx = rate_5xx
        self.bursts_5xx = list(bursts_5xx or [])  # (start, end) in seconds since start
        self.completion_tokens = completion_tokens
        self.fail_next_429 = 0
        self.fail_next_5xx = 0
        self.random = random.Random(seed)
        self.window: List[float] = []  # request times of the last minute, for rpm
        self.reset()

    def reset(self) -> None:
        self.counts: Dict[str, Any] = {
            "requests": 0,
            "ok": 0,
            "streamed": 0,
            "rate_limited": 0,
            "server_errors": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "by_prompt": {},
        }

    def configure(self, settings: Dict[str, Any]) -> None:
        with self.lock:
            for name, value in settings.items():
                if name == "burst_5xx_for_s":
                    now = time.monotonic() - self.started
                    self.bursts_5xx.append((now, now + float(value)))
                elif name in (
                    "latency_ms",
                    "jitter_ms",
                    "rpm",
                    "rate_429",
                    "retry_after_s",
                    "rate_5xx",
                    "completion_tokens",
                    "fail_next_429",
                    "fail_next_5xx",
                ):
                    setattr(self, name, type(getattr(self, name))(value))
                else:
                    raise ValueError(f"unknown setting {name!r}")

    def decide(self) -> Tuple[int, Dict[str, str]]:
        """The status this request gets (200, 429 or 503) and the headers that go with it."""
        with self.lock:
            self.counts["requests"] += 1
            now = time.monotonic()
            since = now - self.started
            if self.fail_next_5xx > 0:
                self.fail_next_5xx -= 1
                return self._error(503)
            if any(start <= since < end for start, end in self.bursts_5xx):
                return self._error(503)
            if self.rate_5xx and self.random.random() < self.rate_5xx:
                return self._error(500)
            if self.fail_next_429 > 0:
                self.fail_next_429 -= 1
                return self._limited(self.retry_after_s)
            if self.rate_429 and self.random.random() < self.rate_429:
                return self._limited(self.retry_after_s)
            if self.rpm:
                self.window = [t for t in self.window if now - t < 60.0]
                if len(self.window) >= self.rpm:
                    return self._limited(max(0.001, 60.0 - (now - self.window[0])))
                self.window.append(now)
            return 200, {}

    def _error(self, status: int) -> Tuple[int, Dict[str, str]]:
        self.counts["server_errors"] += 1
        return status, {}

    def _limited(self, seconds: float) -> Tuple[int, Dict[str, str]]:
        self.counts["rate_limited"] += 1
        return 429, {"retry-after": f"{seconds:g}", "retry-after-ms": str(int(seconds * 1000))}

    def account(self, prompt: str, usage: Dict[str, int], streamed: bool) -> None:
        with self.lock:
            self.counts["ok"] += 1
            if streamed:
                self.counts["streamed"] += 1
            for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                self.counts[name] += usage[name]
            self.counts["by_prompt"][prompt] = self.counts["by_prompt"].get(prompt, 0) + 1

    def snapshot(self) -> Dict[str, Any]:
        with self.lock:
            out = dict(self.counts)
            out["by_prompt"] = dict(self.counts["by_prompt"])
            return out

    def delay(self) -> float:
        with self.lock:
            jitter = self.random.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
            return max(0.0, self.latency_ms + jitter) / 1000.0


def completion_for(request: Dict[str, Any], extra_completion_tokens: int) -> Tuple[Dict[str, Any], str]:
    messages = request.get("messages") or []
    prompt = message_text(messages[-1]) if messages else ""
    answer = f"[{request.get('model', 'fake')}] An answer to: {prompt}"
    prompt_tokens = sum(count_tokens(message_text(m)) + 4 for m in messages)
    completion_tokens = count_tokens(answer) + extra_completion_tokens
    created = int(time.time())
    body = {
        "id": f"chatcmpl-fake-{abs(hash((prompt, created))) % 10**12}",
        "object": "chat.completion",
        "created": created,
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return body, prompt


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI SDK's httpx pool expects
    server: "FakeServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send_json(self, status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        if self.path == "/_admin/stats":
            self._send_json(200, self.server.state.snapshot())
        elif self.path in ("/health", "/"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802 - stdlib's name
        state = self.server.state
        try:
            body = self._body()
        except ValueError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        if self.path == "/_admin/config":
            try:
                state.configure(body)
            except (ValueError, TypeError) as exc:
                self._send_json(400, {"error": {"message": str(exc)}})
                return
            self._send_json(200, {"ok": True})
            return
        if self.path == "/_admin/reset":
            with state.lock:
                state.reset()
            self._send_json(200, {"ok": True})
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            self._send_json(400, {"error": {"message": "model and messages are required", "type": "invalid_request_error"}})
            return
        time.sleep(state.delay())
        status, headers = state.decide()
        if status == 429:
            self._send_json(
                429,
                {"error": {"message": "Rate limit reached (fake upstream)", "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}},
                headers,
            )
            return
        if status >= 500:
            self._send_json(status, {"error": {"message": "The server had an error (fake upstream burst)", "type": "server_error"}})
            return
        completion, prompt = completion_for(body, state.completion_tokens)
        if body.get("stream"):
            # Counted before the stream is written: a client that has read the whole stream
            # must find it counted (counting after raced with the client's next look).
            state.account(prompt, completion["usage"], streamed=True)
            self._stream(completion)
            return
        state.account(prompt, completion["usage"], streamed=False)
        self._send_json(200, completion)

    def _stream(self, completion: Dict[str, Any]) -> None:
        text = completion["choices"][0]["message"]["content"]
        base = {k: completion[k] for k in ("id", "created", "model")}
        chunks = [
            {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": word + " "}, "finish_reason": None}]}
            for word in text.split()
        ]
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], state: UpstreamState, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.verbose = verbose


class FakeUpstream:
    """The fake upstream in a background thread: `with FakeUpstream(latency_ms=50) as up:` then
    `openai.OpenAI(base_url=up.base_url, api_key="fake")`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False, **settings: Any) -> None:
        self.state = UpstreamState(**settings)
        self.server = FakeServer((host, port), self.state, verbose)
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-upstream", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeUpstream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def stats(self) -> Dict[str, Any]:
        return self.state.snapshot()

    def configure(self, **settings: Any) -> None:
        self.state.configure(settings)

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_burst(text: str) -> Tuple[float, float]:
    start, _, length = text.partition(":")
    return float(start), float(start) + float(length or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency-ms", type=float, default=200.0, help="time to answer (default 200)")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="± uniform jitter on the latency")
    parser.add_argument("--rpm", type=int, default=0, help="its own requests-per-minute limit: 429 past it (0: none)")
    parser.add_argument("--rate-429", type=float, default=0.0, help="fraction of requests answered 429 at random")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of random and on-demand 429s, seconds")
    parser.add_argument("--rate-5xx", type=float, default=0.0, help="fraction of requests answered 500 at random")
    parser.add_argument(
        "--burst-5xx", action="append", default=[], metavar="START:SECONDS", help="answer 503 to everything from START s after start-up for SECONDS (repeatable)"
    )
    parser.add_argument("--completion-tokens", type=int, default=0, help="extra completion tokens on every answer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    upstream = FakeUpstream(
        args.host,
        args.port,
        verbose=args.verbose,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        rpm=args.rpm,
        rate_429=args.rate_429,
        retry_after_s=args.retry_after,
        rate_5xx=args.rate_5xx,
        bursts_5xx=[parse_burst(b) for b in args.burst_5xx],
        completion_tokens=args.completion_tokens,
        seed=args.seed,
    )
    print(f"fake OpenAI-compatible upstream on {upstream.base_url} (stats: http://{args.host}:{upstream.port}/_admin/stats)", flush=True)
    try:
        upstream.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        upstream.server.server_close()


if __name__ == "__main__":
    main()
