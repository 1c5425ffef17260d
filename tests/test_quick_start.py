"""The quick start's first command as a newcomer runs it: `make run` on a fresh checkout creates a private `.env`
from config.example.env, says that it runs in development mode on the trial secrets, and serves."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ntbcare.pipeline.classifier import load_classifier
from tests.conftest import BASE_ENV
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)


def test_make_run_creates_a_private_env_and_says_it_runs_in_development_mode(tmp_path):
    for name in ("Makefile", "config.example.env"):
        shutil.copy2(ROOT / name, tmp_path / name)
    load_classifier(BASE_ENV["ROUTING_MODEL_PATH"], BASE_ENV["SECRET_KEY"])  # trained once per test run
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ROUTING_MODEL_PATH": BASE_ENV["ROUTING_MODEL_PATH"]}
    # the project's virtualenv is the one running this test: not rebuilt (-o), used as it is (VENV=)
    proc = subprocess.Popen(["make", "-o", f"{VENV}/.installed", "run", f"VENV={VENV}", f"PORT={port}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline, answered = time.monotonic() + 180, False
        while time.monotonic() < deadline and proc.poll() is None and not answered:
            try:
                answered = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                time.sleep(0.5)
        assert answered, "make run did not serve"
        mode = stat.S_IMODE((tmp_path / ".env").stat().st_mode)
        assert mode == 0o600, oct(mode)
        assert (tmp_path / ".env").read_text() == (ROOT / "config.example.env").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert "created .env from config.example.env" in output
    assert "development mode: trial secrets accepted; never expose this instance" in output
