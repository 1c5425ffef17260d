"""A missing secret or a malformed value stops start-up with one line that names the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ntbcare.core.settings import ConfigError, Settings
from tests.conftest import APP_SECRET, BASE_ENV

PREVIOUS_SECRET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("name", ["FB_APP_SECRET", "FB_VERIFY_TOKEN", "SECRET_KEY"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_secret_names_the_variable(name, value):
    env = {k: v for k, v in BASE_ENV.items() if k != name}
    if value is not None:
        env[name] = value
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize(("name", "value"), [
    ("DATABASE_URL", "mysql://localhost/x"),
    ("DATABASE_URL", "not a url"),
    ("REDIS_URL", "http://localhost:6379"),
    ("GRAPH_API_BASE_URL", "graph.facebook.com"),
    ("GRAPH_API_VERSION", "25"),
    ("GRAPH_API_VERSION", "v25"),
    ("PUBLIC_BASE_URL", "ftp://example.org"),
    ("SMTP_URL", "mail.example.org:587"),
    ("FB_PAGE_ID", "ntbcare"),
    ("WEBHOOK_MAX_BODY_BYTES", "4MB"),
    ("WEBHOOK_MAX_BODY_BYTES", "10"),
    ("WEBHOOK_COMMIT_TIMEOUT", "soon"),
    ("INGEST_BATCH_SIZE", "0"),
    ("SWEEP_INTERVAL", "-1"),
    ("MAX_DELIVERY_ATTEMPTS", "many"),
    ("LOG_LEVEL", "LOUD"),
])
def test_malformed_value_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**BASE_ENV, name: value})


def test_defaults_run_on_embedded_sqlite_without_redis():
    settings = Settings.from_env(BASE_ENV)
    assert settings.database_url.startswith("sqlite:///")
    assert not settings.uses_redis
    assert settings.graph_api_base_url == "https://graph.facebook.com"
    assert settings.graph_api_version.startswith("v")
    assert settings.app_secrets == (APP_SECRET,)


def test_rotation_accepts_both_secrets():
    settings = Settings.from_env({**BASE_ENV, "FB_APP_SECRET_PREVIOUS": PREVIOUS_SECRET})
    assert settings.app_secrets == (APP_SECRET, PREVIOUS_SECRET)


def test_secrets_never_show_in_repr():
    text = repr(Settings.from_env({**BASE_ENV, "FB_PAGE_ACCESS_TOKEN": "EAAGtoken"}))
    for secret in (BASE_ENV["FB_APP_SECRET"], BASE_ENV["FB_VERIFY_TOKEN"], BASE_ENV["SECRET_KEY"], "EAAGtoken"):
        assert secret not in text


def test_dotenv_fills_unset_variables(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"FB_APP_SECRET={'d' * 32}\nFB_VERIFY_TOKEN=v\nSECRET_KEY={'k' * 32}\n"
                                   "FB_PAGE_ID=104000000000001\n")
    monkeypatch.chdir(tmp_path)
    for key in ("FB_APP_SECRET", "FB_VERIFY_TOKEN", "SECRET_KEY", "FB_PAGE_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SECRET_KEY", "e" * 32)
    settings = Settings.from_env()
    assert settings.fb_app_secret == "d" * 32
    assert settings.secret_key == "e" * 32  # the environment wins


def test_without_the_page_id_production_refuses_to_start(tmp_path):
    """Without FB_PAGE_ID the page's own comments would look like citizens' and a delivery for any other page
    would be taken as ours: production needs it."""
    env = {key: value for key, value in BASE_ENV.items() if key != "FB_PAGE_ID"}
    with pytest.raises(ConfigError, match="FB_PAGE_ID is required"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "NTBCARE_ENV": "development"}).fb_page_id == ""


def test_cli_stops_with_one_line_naming_the_variable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FB_VERIFY_TOKEN": "v", "SECRET_KEY": "k", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ntbcare.cli", "tickets", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FB_APP_SECRET" in lines[0]
    assert "Traceback" not in result.stderr


def test_every_setting_is_in_the_readme_table_and_in_config_example_env():
    """README's Configuration table and config.example.env list every variable Settings reads, and nothing else."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    read = set(re.findall(r'\(env, "([A-Z0-9_]+)"', (root / "ntbcare/core/settings.py").read_text()))
    read |= {"NTBCARE_ENV", "FB_PAGE_ID"}  # read by helpers named after them
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {name for row in table.splitlines() if row.startswith("| `")
                  for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])}
    example = set(re.findall(r"^([A-Z0-9_]+)=", (root / "config.example.env").read_text(), re.MULTILINE))
    assert read - documented == set(), "missing from README's Configuration table"
    assert documented - read == set(), "in README's table but never read"
    assert read - example == set(), "missing from config.example.env"
