#!/usr/bin/env python3
"""An agent server's traffic through Sluice, against a fake OpenAI upstream — no API key needed.

    scripts/serve.sh --max-stale 600000          # or: .build/release/sluice serve --max-stale 600000
    python examples/agent_server.py              # starts the fake upstream itself

Agents (worker threads) send a realistic mix through `sluice.openai.wrap(openai.OpenAI(...))`:
first questions, the same questions again, paraphrases of them, a stampede of identical prompts,
a stretch where the upstream answers 429, and a 5xx burst. The summary shows what Sluice saved
and absorbed. Every run uses names of its own (namespace, limit key, breaker), so it can be run
again and again against the same Sluice. `--json` adds a machine-readable summary line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "python", "src"))

import openai  # noqa: E402

import sluice  # noqa: E402
import sluice.openai  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402

MODEL = "gpt-4o-mini"
SYSTEM = "You are the support assistant of an online shop. Answer briefly."

FAQ = [
    "How do I reset my password?",
    "How can I cancel my subscription?",
    "Do you ship to Canada?",
    "How do I change my email address?",
    "What payment methods do you accept?",
    "How long does delivery take?",
    "Can I return an item after 30 days?",
    "How do I contact customer support?",
    "Where can I download my invoice?",
    "Is there a student discount?",
]
PARAPHRASES = [
    "What's the way to reset my password?",
    "How do I cancel my subscription?",
    "Can you ship orders to Canada?",
    "What is the way to change my email address?",
    "Which payment methods are accepted?",
    "How long will delivery take?",
    "Is it possible to return an item after 30 days?",
    "How can I reach customer support?",
]
# Answers that go out of date fast: stored for a second only, then served stale while the
# upstream cannot answer (needs Sluice's --max-stale).
NEWS = ["Summarize today's order backlog.", "Which warehouses are delayed right now?"]
NEWS_TTL_MS = 1000


def ask(client: Any, question: str) -> str:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        temperature=0,
    )
    return str(completion.choices[0].message.content)


class BreakerWatch(threading.Thread):
    """Watches the breaker as an operator's dashboard would, and notes every state change."""

    def __init__(self, sl: sluice.Sluice, name: str, t0: float) -> None:
        super().__init__(daemon=True)
        self.sl, self.name, self.t0 = sl, name, t0
        self.transitions: List[Tuple[float, str]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stop_event.is_set():
            state = self.sl.breakers.state(self.name).state
            if state != last:
                self.transitions.append((time.monotonic() - self.t0, state))
                last = state
            time.sleep(0.02)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=2)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    t0 = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    sl = sluice.Sluice(url=args.sluice, socket_timeout=10)
    try:
        sl.ping()
    except sluice.SluiceError as exc:
        sys.exit(f"cannot reach Sluice at {args.sluice} ({exc}).\nStart it first: scripts/serve.sh --max-stale 600000")

    upstream: Optional[FakeUpstream] = None
    if args.upstream:
        base_url = args.upstream
    else:
        upstream = FakeUpstream(latency_ms=args.latency_ms).start()
        base_url = upstream.base_url
    admin = base_url.rsplit("/v1", 1)[0]

    def upstream_config(**settings: Any) -> None:
        import urllib.request

        request = urllib.request.Request(admin + "/_admin/config", data=json.dumps(settings).encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def upstream_stats() -> Dict[str, Any]:
        import urllib.request

        return dict(json.loads(urllib.request.urlopen(admin + "/_admin/stats", timeout=5).read()))

    breaker = f"example-{run_id}:openai"
    # A breaker tuned for a short demo: 4 outcomes are enough to decide, 1.5 s open.
    sl.breakers.config(breaker, window=10, min_calls=4, failure_rate=0.5, open_ms=1500, probes=2)
    base = sluice.Policy(
        limit=sluice.Limit(rpm=600, tpm=400_000),
        limit_key=f"example-{run_id}:{{model}}",
        breaker=breaker,
        stale_ms=600_000,
        max_wait_s=10,
        tag="example",
    )
    oai = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=10)
    prices = {MODEL: sluice.Price(input_per_million=0.15, output_per_million=0.60)}
    client = sluice.openai.wrap(oai, sl, namespace=f"example-{run_id}", policy=base, prices=prices)
    news_client = sluice.openai.wrap(
        oai, sl, namespace=f"example-{run_id}-news", policy=dataclasses.replace(base, ttl_ms=NEWS_TTL_MS), prices=prices
    )

    phases: List[Dict[str, Any]] = []
    outcomes: Dict[str, int] = {"answered": 0, "errors": 0, "refused_fast": 0}
    lock = threading.Lock()

    def agent(c: Any, question: str) -> None:
        try:
            ask(c, question)
            kind = "answered"
        except sluice.Refused:
            kind = "refused_fast"  # the breaker said no: the upstream was spared the call
        except openai.APIError:
            kind = "errors"
        with lock:
            outcomes[kind] += 1

    def phase(name: str, work: Callable[[], None]) -> None:
        before, up_before, out_before = sl.stats.snapshot(), upstream_stats(), dict(outcomes)
        started = time.monotonic()
        work()
        after, up_after = sl.stats.snapshot(), upstream_stats()
        delta: Dict[str, Any] = {k: after[k] - before[k] for k in after}
        delta.update({f"agent_{k}": outcomes[k] - out_before[k] for k in outcomes})
        delta["upstream_requests"] = up_after["requests"] - up_before["requests"]
        delta["seconds"] = round(time.monotonic() - started, 2)
        phases.append({"phase": name, **delta})

    pool = ThreadPoolExecutor(max_workers=args.agents)

    def all_of(c: Any, questions: List[str]) -> None:
        list(pool.map(lambda q: agent(c, q), questions))

    def first_questions() -> None:
        all_of(client, FAQ)
        all_of(news_client, NEWS)

    phase("first questions", first_questions)
    phase("the same questions again", lambda: all_of(client, FAQ + FAQ))
    phase("paraphrases", lambda: all_of(client, PARAPHRASES))

    def stampede() -> None:
        question = "Is the summer sale on right now?"
        barrier = threading.Barrier(args.stampede)

        def one() -> None:
            barrier.wait()
            agent(client, question)

        threads = [threading.Thread(target=one) for _ in range(args.stampede)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    phase(f"{args.stampede} agents ask the same thing at once", stampede)

    def rate_limited() -> None:
        upstream_config(fail_next_429=3, retry_after_s=0.5)
        all_of(client, [f"Track my order number {n}." for n in range(100, 106)])

    phase("upstream answers 429 (Retry-After 0.5 s)", rate_limited)

    watch = BreakerWatch(sl, breaker, t0)
    watch.start()

    def burst() -> None:
        upstream_config(burst_5xx_for_s=args.burst_s)
        started = time.monotonic()
        n = 0
        # Keep traffic flowing through the burst and until the breaker has closed again.
        while time.monotonic() - started < args.burst_s + 8:
            questions = [(client, f"Draft a reply to ticket {n}-{k}.") for k in range(2)] + [(news_client, NEWS[n % len(NEWS)])]
            list(pool.map(lambda cq: agent(*cq), questions))
            n += 1
            time.sleep(0.1)
            states = [s for _, s in watch.transitions]
            if time.monotonic() - started > args.burst_s and "open" in states and states[-1] == "closed":
                break

    phase(f"upstream 5xx burst for {args.burst_s:g} s", burst)
    watch.stop()
    pool.shutdown()

    final_stats = sl.stats.snapshot()
    up = upstream_stats()
    if upstream is not None:
        upstream.stop()
    states = [s for _, s in watch.transitions]
    server = sl.server_stats()
    sl.close()
    return {
        "run_id": run_id,
        "seconds": round(time.monotonic() - t0, 1),
        "phases": phases,
        "client": final_stats,
        "upstream": {k: v for k, v in up.items() if k != "by_prompt"},
        "breaker": {
            "name": breaker,
            "transitions": [{"at_s": round(at, 2), "state": s} for at, s in watch.transitions],
            "opened": states.count("open"),
            "closed_after_open": "open" in states and states[-1] == "closed",
        },
        "server": {k: server.get(k) for k in ("tokens_saved", "cost_saved", "leases_granted", "lease_waits", "stale_hits")},
        "outcomes": outcomes,
    }


def print_summary(s: Dict[str, Any]) -> None:
    c, up = s["client"], s["upstream"]
    print()
    print(f"Sluice in front of a fake OpenAI upstream (run {s['run_id']}, {s['seconds']} s)")
    print()
    header = f"{'phase':44} {'requests':>8} {'upstream':>8} {'exact':>6} {'semantic':>8} {'lease':>6} {'stale':>6} {'429s':>5} {'cb-refused':>10} {'agent-errors':>12}"
    print(header)
    print("-" * len(header))
    for p in s["phases"]:
        print(
            f"{p['phase']:44} {p['calls']:>8} {p['upstream_requests']:>8} {p['exact_hits']:>6} {p['semantic_hits']:>8} "
            f"{p['coalesced']:>6} {p['stale_served']:>6} {p['upstream_429s']:>5} {p['breaker_refusals']:>10} {p['agent_errors']:>12}"
        )
    print("-" * len(header))
    print()
    saved = c["exact_hits"] + c["semantic_hits"] + c["coalesced"] + c["stale_served"]
    print(f"agent requests                        {c['calls']}")
    print(f"upstream requests (fake upstream saw) {up['requests']}  ({up['rate_limited']} answered 429, {up['server_errors']} answered 5xx)")
    print(f"upstream calls saved                  {saved}")
    print(f"  by exact hits                       {c['exact_hits']}")
    print(f"  by semantic hits (paraphrases)      {c['semantic_hits']}")
    print(f"  by lease coalescing (stampede)      {c['coalesced']}")
    print(f"  by stale answers while failing      {c['stale_served']}")
    print(
        f"calls the open breaker kept from the failing upstream  {c['breaker_refusals']} "
        f"(answered stale where an old answer existed, else refused at once: {s['outcomes']['refused_fast']})"
    )
    seen = sum(p["agent_errors"] for p in s["phases"] if p["upstream_429s"])
    print(f"429s absorbed                         {c['absorbed_429s']} of {c['upstream_429s']} (agents saw {seen}: the shared limit held everyone back for Retry-After)")
    transitions = " -> ".join(f"{t['state']} ({t['at_s']:.1f} s)" for t in s["breaker"]["transitions"])
    print(f"breaker {s['breaker']['name']}: {transitions}")
    print(f"  opened {s['breaker']['opened']} time(s) during the burst; closed after it: {'yes' if s['breaker']['closed_after_open'] else 'NO'}")
    print(f"tokens used upstream                  {c['tokens_used']} (fake upstream counted {up['total_tokens']})")
    print(f"Sluice STATS tokens_saved/cost_saved  {s['server']['tokens_saved']} / {float(s['server']['cost_saved'] or 0):.6f} (whole server)")
    if c["stale_served"] == 0:
        print("note: no stale answers were served; start Sluice with --max-stale 600000 to see stale-if-error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sluice", default=os.environ.get("SLUICE_URL", "redis://127.0.0.1:7379"), help="Sluice's address (default %(default)s)")
    parser.add_argument("--upstream", help="base URL of a running OpenAI-compatible upstream (default: start the fake one here)")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="the fake upstream's latency (default %(default)s)")
    parser.add_argument("--agents", type=int, default=4, help="worker threads (default %(default)s)")
    parser.add_argument("--stampede", type=int, default=25, help="agents asking the same thing at once (default %(default)s)")
    parser.add_argument("--burst-s", type=float, default=2.0, help="length of the 5xx burst (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()
    summary = run(args)
    print_summary(summary)
    if args.json:
        print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
