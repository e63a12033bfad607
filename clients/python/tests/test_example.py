"""The example end to end: its summary must show what the README promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import EXAMPLES, SluiceServer


def test_agent_server_example(server: SluiceServer) -> None:
    run = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "agent_server.py"), "--sluice", server.url, "--json"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr
    summary_lines = [line for line in run.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert len(summary_lines) == 1, run.stdout
    s = json.loads(summary_lines[0][len("SUMMARY ") :])
    phases = {p["phase"].split(" (")[0]: p for p in s["phases"]}

    first = phases["first questions"]
    assert first["upstream_requests"] == 12 and first["agent_errors"] == 0
    repeats = phases["the same questions again"]
    assert repeats["exact_hits"] == 20 and repeats["upstream_requests"] == 0
    paraphrases = phases["paraphrases"]
    assert paraphrases["semantic_hits"] == 8 and paraphrases["upstream_requests"] == 0
    stampede = phases["25 agents ask the same thing at once"]
    assert stampede["upstream_requests"] == 1 and stampede["coalesced"] + stampede["exact_hits"] == 24
    limited = phases["upstream answers 429"]
    assert limited["upstream_429s"] == 3 and limited["absorbed_429s"] == 3 and limited["agent_errors"] == 0 and limited["agent_answered"] == 6
    burst = phases["upstream 5xx burst for 2 s"]
    assert burst["upstream_failures"] >= 4 and burst["breaker_refusals"] > 0 and burst["stale_served"] > 0

    assert s["breaker"]["opened"] >= 1 and s["breaker"]["closed_after_open"]
    assert s["client"]["upstream_calls"] == s["upstream"]["requests"]
    assert s["client"]["tokens_used"] == s["upstream"]["total_tokens"]
    assert s["seconds"] < 30
    for text in ("by exact hits", "by semantic hits", "by lease coalescing", "429s absorbed", "opened 1 time"):
        assert text in run.stdout
