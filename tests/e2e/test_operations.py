"""Operating Sluice: a binary copied alone, structured logs, the HTTP listener (/metrics,
/health, /ready, the dashboard), named policies from a config file."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import conftest
from conftest import SluiceProcess


def test_binary_copied_alone_starts_and_has_its_embedder_and_lexicon(data_dir):
    # Nothing beside it: no resource bundle. SwiftPM's generated bundle accessor would also
    # find the build folder by its absolute path, which exists on this machine but not on
    # another one, so the test also checks that the binary names no bundle at all.
    alone = tempfile.mkdtemp(prefix="sluice-alone-", dir=data_dir)
    binary = os.path.join(alone, "sluice")
    shutil.copy2(conftest.SLUICE_BIN, binary)
    with open(binary, "rb") as f:
        assert b"_SluiceDomain.resources" not in f.read()
    os.makedirs(os.path.join(alone, "data"))
    saved = conftest.SLUICE_BIN
    conftest.SLUICE_BIN = binary
    try:
        node = SluiceProcess(os.path.join(alone, "data")).start()
    finally:
        conftest.SLUICE_BIN = saved
    try:
        r = node.client()
        assert r.execute_command("SEM.SET", "faq", "How do I reset my password?", "Use the link.") == b"OK"
        # The built-in embedder: a paraphrase hits without a client vector.
        hit = r.execute_command("SEM.GET", "faq", "How can I reset my password?")
        assert hit[0] == b"Use the link."
        # The lexicon: the verifier names the substitution it refused.
        why = r.execute_command("SEM.GET", "faq", "How do I reset my username?", "WHY")
        assert why[0] is None and why[-1] == b"trap: substitution password\xe2\x86\x92username"
        assert "unavailable" not in open(node.log_path).read()
    finally:
        assert node.stop() == 0


def test_log_format_json_writes_one_object_per_line(make_sluice):
    node = make_sluice("--log-format", "json").start()
    node.client().ping()
    assert node.stop() == 0
    lines = [l for l in open(node.log_path).read().splitlines() if l.strip()]
    events = [json.loads(l) for l in lines]  # every line parses
    messages = [e["message"] for e in events]
    assert "sluice listening" in messages and "sluice stopped" in messages
    listening = events[messages.index("sluice listening")]
    assert listening["level"] == "info" and listening["address"].endswith(":%d" % node.port)
    assert all({"ts", "level", "label", "message"} <= e.keys() for e in events)


def test_log_format_other_than_text_or_json_is_refused(data_dir):
    out = subprocess.run([conftest.SLUICE_BIN, "serve", "--log-format", "xml", "--data-dir", data_dir],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "--log-format: 'xml' is not text or json" in out.stderr
