"""Trial and weak secrets stop start-up unless NTBCARE_ENV=development: the trial values are public (they ship in
config.example.env, which `make run` copies into .env), so with them anyone signs agency links or forges
webhook deliveries. Each refusal is one line that names the variable and says what to do."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from ntbcare.core.links import make_agency_token, read_agency_token
from ntbcare.core.settings import ConfigError, Settings
from tests.conftest import BASE_ENV

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.env"
SECRETS = ("SECRET_KEY", "FB_APP_SECRET", "FB_APP_SECRET_PREVIOUS", "FB_VERIFY_TOKEN")
TRIAL = {"SECRET_KEY": "dev-secret-key-change-me", "FB_APP_SECRET": "dev-app-secret-change-me",
         "FB_VERIFY_TOKEN": "dev-verify-token-change-me"}
FACEBOOK_SHAPED = "3f5c0a9d1e7b4c2a8f6e0d9c1b2a3f4e"  # 32 hex characters, as the app dashboard shows


def example_env() -> dict[str, str]:
    return {k: v for k, v in dotenv_values(EXAMPLE).items() if v is not None}


def test_the_trial_values_are_exactly_what_config_example_env_ships():
    shipped = {name: value for name, value in example_env().items() if name in SECRETS and value}
    assert shipped == TRIAL


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("trial", sorted(TRIAL.values()))
def test_a_trial_value_in_any_secret_is_refused_naming_the_variable(name, trial):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE_ENV, name: trial})
    message = str(caught.value)
    assert message.startswith(name) and "\n" not in message
    assert "NTBCARE_ENV=development" in message


def test_the_attack_with_the_trial_key_finds_no_service_to_fool():
    """The attacker's tools: the public trial key signs a link, the public app secret signs a delivery. A
    service configured with config.example.env as it ships does not start, so neither is ever accepted."""
    forged_link = make_agency_token(TRIAL["SECRET_KEY"], 1, "PLN", 1)
    assert read_agency_token(TRIAL["SECRET_KEY"], forged_link, 3600).ticket_id == 1  # the forgery is genuine
    body = b'{"object": "page", "entry": []}'
    forged_signature = hmac.new(TRIAL["FB_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    assert forged_signature
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env(example_env())
    with pytest.raises(ConfigError, match="FB_APP_SECRET"):
        Settings.from_env({**example_env(), "SECRET_KEY": BASE_ENV["SECRET_KEY"]})
    with pytest.raises(ConfigError, match="FB_VERIFY_TOKEN"):
        Settings.from_env({**example_env(), "SECRET_KEY": BASE_ENV["SECRET_KEY"],
                           "FB_APP_SECRET": FACEBOOK_SHAPED})


@pytest.mark.parametrize("key", ["x", "k" * 31, "é" * 15])
def test_a_secret_key_under_32_bytes_is_refused(key):
    with pytest.raises(ConfigError, match=r"^SECRET_KEY .*32 bytes"):
        Settings.from_env({**BASE_ENV, "SECRET_KEY": key})


def test_a_secret_key_of_32_bytes_is_accepted():
    assert Settings.from_env({**BASE_ENV, "SECRET_KEY": "k" * 32}).secret_key == "k" * 32
    assert Settings.from_env({**BASE_ENV, "SECRET_KEY": "é" * 16}).secret_key == "é" * 16  # bytes, not characters


@pytest.mark.parametrize("name", ["FB_APP_SECRET", "FB_APP_SECRET_PREVIOUS"])
def test_app_secrets_shorter_than_facebooks_are_refused_and_facebooks_are_accepted(name):
    with pytest.raises(ConfigError, match=rf"^{name} .*32 bytes.*Facebook"):
        Settings.from_env({**BASE_ENV, name: FACEBOOK_SHAPED[:-1]})
    settings = Settings.from_env({**BASE_ENV, name: FACEBOOK_SHAPED})
    assert FACEBOOK_SHAPED in settings.app_secrets


def test_the_verify_token_is_refused_only_as_the_trial_value():
    """It only guards the subscription handshake (no data, no signatures); the operator types it."""
    assert Settings.from_env({**BASE_ENV, "FB_VERIFY_TOKEN": "ntbcare-hook"}).fb_verify_token == "ntbcare-hook"


def test_development_accepts_the_trial_env_and_says_so():
    settings = Settings.from_env({**example_env(), "NTBCARE_ENV": "development"})
    assert settings.development and settings.secret_key == TRIAL["SECRET_KEY"]
    assert Settings.from_env({**BASE_ENV, "SECRET_KEY": "x", "NTBCARE_ENV": "Development"}).development
    assert not Settings.from_env(BASE_ENV).development
    assert not Settings.from_env({**BASE_ENV, "NTBCARE_ENV": "production"}).development


def test_development_still_needs_the_secrets_set():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env({**{k: v for k, v in BASE_ENV.items() if k != "SECRET_KEY"}, "NTBCARE_ENV": "development"})


@pytest.mark.parametrize("value", ["dev", "staging", "test"])
def test_an_unknown_environment_is_refused(value):
    with pytest.raises(ConfigError, match="^NTBCARE_ENV"):
        Settings.from_env({**BASE_ENV, "NTBCARE_ENV": value})


def run_cli(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "DATABASE_URL": f"sqlite:///{cwd / 'ntbcare.db'}", **extra}
    return subprocess.run([sys.executable, "-m", "ntbcare.cli", "tickets", "list"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_trial_env_file_stops_the_command_line_with_one_line_unless_development(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / ".env")  # what `make run` does on a fresh machine
    refused = run_cli(tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert "SECRET_KEY" in line and "NTBCARE_ENV=development" in line
    trial = run_cli(tmp_path, NTBCARE_ENV="development")  # past the settings: on to the (empty) database
    assert "SECRET_KEY" not in trial.stderr and "ntbcare init" in trial.stderr, trial.stderr
