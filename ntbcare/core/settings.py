"""Typed settings, read once from the environment (and an optional .env file).

This is the only module that reads ``os.environ``. A missing secret or a malformed value raises
:class:`ConfigError` whose message names the variable, so start-up stops with one clear line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///ntbcare.db"
DEFAULT_GRAPH_API_VERSION = "v25.0"
DEVELOPMENT = "development"
PRODUCTION = "production"
MIN_KEY_BYTES = 32
# The values config.example.env ships (``make run`` copies them into .env): public, so they sign nothing real.
TRIAL_SECRETS = frozenset({"dev-secret-key-change-me", "dev-app-secret-change-me", "dev-verify-token-change-me"})
SECRET_VARIABLES = ("SECRET_KEY", "FB_APP_SECRET", "FB_APP_SECRET_PREVIOUS", "FB_VERIFY_TOKEN")
# Shortest value per variable; app secrets as Facebook issues them are 32 hex characters, the verify token is
# typed by whoever registers the webhook and only guards the subscription handshake.
MIN_SECRET_BYTES = {"SECRET_KEY": MIN_KEY_BYTES, "FB_APP_SECRET": 32, "FB_APP_SECRET_PREVIOUS": 32}
NEW_KEY_HINT = "python -c \"import secrets; print(secrets.token_urlsafe(48))\""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and says what to do."""


def _text(env: Mapping[str, str], name: str, default: str | None = None, *, required: bool = False) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if required:
        raise ConfigError(f"{name} is not set: put it in the environment or in .env (see config.example.env)")
    return default or ""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = _text(env, name, default)
    if not value:
        return ""
    parts = urlsplit(value)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in schemes or (scheme not in {"sqlite"} and not parts.netloc):
        allowed = ", ".join(f"{s}://" for s in schemes)
        shown = value if parts.password is None else value.replace(parts.password, "***")
        raise ConfigError(f"{name} must be a URL starting with {allowed}; got {shown!r}")
    return value


def _environment(env: Mapping[str, str]) -> str:
    value = _text(env, "NTBCARE_ENV", PRODUCTION).lower()
    if value not in {PRODUCTION, DEVELOPMENT}:
        raise ConfigError(f"NTBCARE_ENV must be production (the default) or development, got {value!r}")
    return value


def _check_secrets(env: Mapping[str, str], environment: str) -> None:
    """Refuse the trial values and short keys: whoever knows a key signs agency links or forges deliveries.

    ``NTBCARE_ENV=development`` (set by ``make run`` on the trial .env) lets a local trial run on them.
    """
    if environment == DEVELOPMENT:
        return
    for name in SECRET_VARIABLES:
        value = _text(env, name)
        if not value:
            continue
        if value in TRIAL_SECRETS or "change-me" in value.lower():
            raise ConfigError(f"{name} is a trial value from config.example.env: {_what_to_do(name)}")
        minimum = MIN_SECRET_BYTES.get(name, 0)
        if len(value.encode()) < minimum:
            raise ConfigError(f"{name} is shorter than {minimum} bytes: {_what_to_do(name)}")


def _what_to_do(name: str) -> str:
    if name.startswith("FB_APP_SECRET"):
        fix = "copy the app secret from the Facebook app dashboard (Settings > Basic)"
    elif name == "FB_VERIFY_TOKEN":
        fix = f"set a random one ({NEW_KEY_HINT}) and type it into the webhook settings"
    else:
        fix = f"set a random one ({NEW_KEY_HINT})"
    return f"{fix}, or NTBCARE_ENV=development for a local trial that is never exposed"


def _version(env: Mapping[str, str], name: str) -> str:
    value = _text(env, name, DEFAULT_GRAPH_API_VERSION)
    digits = value[1:].split(".")
    if not (value.startswith("v") and len(digits) == 2 and all(d.isdigit() for d in digits)):
        raise ConfigError(f"{name} must look like v25.0, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with. Build it with :meth:`from_env`."""

    fb_app_secret: str
    fb_verify_token: str
    secret_key: str
    fb_app_secret_previous: str = ""
    fb_page_id: str = ""
    fb_page_access_token: str = field(default="", repr=False)
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = DEFAULT_GRAPH_API_VERSION
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = ""
    public_base_url: str = "http://localhost:8000"
    smtp_url: str = ""
    mail_from: str = "NTB Care <ntbcare@localhost>"
    bounce_address: str = ""
    webhook_max_body_bytes: int = 4 * 1024 * 1024
    webhook_commit_timeout: float = 0.9
    ingest_batch_size: int = 200
    sweep_interval: float = 10.0
    redispatch_after: float = 60.0
    max_delivery_attempts: int = 5
    embedded_worker_threads: int = 1
    log_level: str = "INFO"
    routing_model_path: str = "routing-model.pkl"
    operator_emails: tuple[str, ...] = ()
    deadline_urgent_hours: float = 1.0
    deadline_important_hours: float = 24.0
    deadline_normal_hours: float = 48.0
    office_hours: tuple[tuple[int, int], tuple[int, int]] = ((8, 0), (16, 0))
    agency_link_max_age_days: int = 14
    agency_session_hours: int = 12
    ack_comment: bool = True
    ack_post: bool = True
    ack_messenger: bool = True
    ack_mention: bool = True
    hide_pii_comments: bool = True
    human_agent_tag: bool = False
    environment: str = PRODUCTION
    ops_idle_minutes: int = 60
    retrain_after_decisions: int = 50
    media_dir: str = "media"
    media_max_bytes: int = 10 * 1024 * 1024
    attachment_grace_seconds: float = 120.0
    metrics_token: str = field(default="", repr=False)
    metrics_dir: str = ""
    log_format: str = "text"
    webhook_silence_minutes: int = 120
    raw_retention_days: int = 90

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in {"fb_app_secret", "fb_app_secret_previous", "fb_verify_token", "secret_key",
                          "fb_page_access_token", "metrics_token"}:
                value = "***" if value else ""
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def app_secrets(self) -> tuple[str, ...]:
        """Secrets a webhook signature may be made with: the current one and, during rotation, the previous."""
        return tuple(s for s in (self.fb_app_secret, self.fb_app_secret_previous) if s)

    @property
    def development(self) -> bool:
        """A local trial: trial and short secrets were accepted, so the instance must never be exposed."""
        return self.environment == DEVELOPMENT

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Read settings; with ``dotenv`` a ``.env`` in the working directory fills unset variables."""
        env: dict[str, str] = {}
        if dotenv and environ is None:
            env.update(_read_dotenv(Path.cwd() / ".env"))
        env.update(os.environ if environ is None else environ)
        environment = _environment(env)
        for name in ("FB_APP_SECRET", "FB_VERIFY_TOKEN", "SECRET_KEY"):
            _text(env, name, required=True)
        _check_secrets(env, environment)
        return cls(
            fb_app_secret=_text(env, "FB_APP_SECRET", required=True),
            fb_app_secret_previous=_text(env, "FB_APP_SECRET_PREVIOUS"),
            fb_verify_token=_text(env, "FB_VERIFY_TOKEN", required=True),
            secret_key=_text(env, "SECRET_KEY", required=True),
            fb_page_id=_page_id(env, environment),
            fb_page_access_token=_text(env, "FB_PAGE_ACCESS_TOKEN"),
            graph_api_base_url=_url(env, "GRAPH_API_BASE_URL", "https://graph.facebook.com",
                                    ("http", "https")).rstrip("/"),
            graph_api_version=_version(env, "GRAPH_API_VERSION"),
            database_url=_url(env, "DATABASE_URL", DEFAULT_DATABASE_URL, ("sqlite", "postgresql", "postgres")),
            redis_url=_url(env, "REDIS_URL", "", ("redis", "rediss", "unix")),
            public_base_url=_url(env, "PUBLIC_BASE_URL", "http://localhost:8000", ("http", "https")).rstrip("/"),
            smtp_url=_url(env, "SMTP_URL", "", ("smtp", "smtps")),
            mail_from=_text(env, "MAIL_FROM", "NTB Care <ntbcare@localhost>"),
            bounce_address=_address(env, "BOUNCE_ADDRESS"),
            webhook_max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            webhook_commit_timeout=_float(env, "WEBHOOK_COMMIT_TIMEOUT", 0.9, minimum=0.05),
            ingest_batch_size=_int(env, "INGEST_BATCH_SIZE", 200, minimum=1),
            sweep_interval=_float(env, "SWEEP_INTERVAL", 10.0, minimum=0.1),
            redispatch_after=_float(env, "REDISPATCH_AFTER", 60.0, minimum=0.1),
            max_delivery_attempts=_int(env, "MAX_DELIVERY_ATTEMPTS", 5, minimum=1),
            embedded_worker_threads=_int(env, "EMBEDDED_WORKER_THREADS", 1, minimum=1),
            log_level=_log_level(env),
            routing_model_path=_text(env, "ROUTING_MODEL_PATH", "routing-model.pkl"),
            operator_emails=_emails(env, "OPERATOR_EMAILS"),
            deadline_urgent_hours=_float(env, "DEADLINE_URGENT_HOURS", 1.0, minimum=0.1),
            deadline_important_hours=_float(env, "DEADLINE_IMPORTANT_HOURS", 24.0, minimum=0.1),
            deadline_normal_hours=_float(env, "DEADLINE_NORMAL_HOURS", 48.0, minimum=0.1),
            office_hours=_office_hours(env, "OFFICE_HOURS"),
            agency_link_max_age_days=_int(env, "AGENCY_LINK_MAX_AGE_DAYS", 14, minimum=1),
            agency_session_hours=_int(env, "AGENCY_SESSION_HOURS", 12, minimum=1),
            ack_comment=_bool(env, "ACK_COMMENT", True),
            ack_post=_bool(env, "ACK_POST", True),
            ack_messenger=_bool(env, "ACK_MESSENGER", True),
            ack_mention=_bool(env, "ACK_MENTION", True),
            hide_pii_comments=_bool(env, "HIDE_PII_COMMENTS", True),
            human_agent_tag=_bool(env, "HUMAN_AGENT_TAG", False),
            environment=environment,
            ops_idle_minutes=_int(env, "OPS_IDLE_MINUTES", 60, minimum=1),
            retrain_after_decisions=_int(env, "RETRAIN_AFTER_DECISIONS", 50, minimum=1),
            media_dir=_text(env, "MEDIA_DIR", "media"),
            media_max_bytes=_int(env, "MEDIA_MAX_BYTES", 10 * 1024 * 1024, minimum=1024),
            attachment_grace_seconds=_float(env, "ATTACHMENT_GRACE_SECONDS", 120.0, minimum=0.0),
            metrics_token=_text(env, "METRICS_TOKEN"),
            metrics_dir=_text(env, "METRICS_DIR"),
            log_format=_choice(env, "LOG_FORMAT", "text", ("text", "json")),
            webhook_silence_minutes=_int(env, "WEBHOOK_SILENCE_MINUTES", 120, minimum=1),
            raw_retention_days=_int(env, "RAW_RETENTION_DAYS", 90, minimum=1),
        )


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(env, name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _page_id(env: Mapping[str, str], environment: str) -> str:
    """Required outside development: without it the page's own comments look like citizens' and deliveries
    for any other page would be taken as ours."""
    value = _text(env, "FB_PAGE_ID")
    if not value and environment != DEVELOPMENT:
        raise ConfigError("FB_PAGE_ID is required: the NTB Care page's numeric id (the page's About > Page "
                          "transparency, or `GET /me?fields=id` with the page token)")
    if value and not value.isdigit():
        raise ConfigError(f"FB_PAGE_ID must be the page's numeric id, got {value!r}")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    value = _text(env, "LOG_LEVEL", "INFO").upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; got {value!r}")
    return value


def _emails(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in _text(env, name).split(",") if v.strip())
    for value in values:
        if "@" not in value or " " in value:
            raise ConfigError(f"{name} must be a comma-separated list of e-mail addresses, got {value!r}")
    return values


def _address(env: Mapping[str, str], name: str) -> str:
    """One bare e-mail address (``local@domain``, no ``+``: the mail's id and signature go after one), or empty."""
    value = _text(env, name)
    local, _, domain = value.rpartition("@")
    if value and (not local or "." not in domain or any(c in value for c in " <>,+\"")):
        raise ConfigError(f"{name} must be one address such as bounces@ntbcare.ntbprov.go.id (no name, no +), "
                          f"got {value!r}")
    return value


def _office_hours(env: Mapping[str, str], name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``HH:MM-HH:MM`` (WITA) as ((start hour, minute), (end hour, minute)); minutes are honoured."""
    raw = _text(env, name, "08:00-16:00")
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", raw)
    if match is None:
        raise ConfigError(f"{name} must look like 08:00-16:00 or 07:30-15:30, got {raw!r}")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    start, end = (start_h, start_m), (end_h, end_m)
    if start_m > 59 or end_m > 59 or end > (24, 0) or start >= end:
        raise ConfigError(f"{name} must be two times of day (HH:MM, up to 24:00) with the start before the end, "
                          f"got {raw!r}")
    return start, end


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}
