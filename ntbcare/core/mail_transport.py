"""Handing e-mail to the SMTP server named by SMTP_URL.

:func:`send_email` sorts every failure into :class:`MailTemporaryError` (retry later: refused connection,
timeout, 4xx) or :class:`MailPermanentError` (5xx: retrying cannot help), so the caller's queue retries only
what can heal.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger(__name__)

_URL_HELP = "expected e.g. smtp://user:pass@host:587?starttls=1 or smtps://user:pass@host:465?timeout=10"


class MailError(Exception):
    """A message could not be handed to the SMTP server; ``smtp_code`` is the server's reply code if any."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class MailTemporaryError(MailError):
    """Worth retrying later: the server is down, slow, or answered 4xx."""


class MailPermanentError(MailError):
    """Not worth retrying: the server answered 5xx (e.g. 550 recipient rejected) or refuses our setup."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail; ``security`` is "none", "starttls" or "tls" (implicit, smtps://)."""

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    security: str = "none"
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse SMTP_URL; STARTTLS is on by default when credentials are given, off otherwise."""
        parts = urlsplit((url or "").strip())
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://; {_URL_HELP}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SMTP_URL has an invalid port; {_URL_HELP}") from None
        if not parts.hostname or parts.path not in {"", "/"} or parts.fragment:
            raise ValueError(f"SMTP_URL needs a host and nothing after it but ?parameters; {_URL_HELP}")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(params) - {"starttls", "timeout"}
        if unknown:
            raise ValueError(f"SMTP_URL has unknown parameters {sorted(unknown)}; {_URL_HELP}")
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        starttls = _flag(params["starttls"]) if "starttls" in params else bool(username)
        if parts.scheme == "smtps" and "starttls" in params:
            raise ValueError("SMTP_URL: smtps:// is already TLS, drop the starttls parameter")
        security = "tls" if parts.scheme == "smtps" else ("starttls" if starttls else "none")
        try:
            timeout = float(params.get("timeout", "10"))
        except ValueError:
            raise ValueError(f"SMTP_URL timeout must be a number of seconds; {_URL_HELP}") from None
        if not 0 < timeout <= 600:
            raise ValueError("SMTP_URL timeout must be between 0 and 600 seconds")
        default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
        return cls(parts.hostname, port or default_port, username, password, security, timeout)


def _flag(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"SMTP_URL starttls must be 1 or 0, got {value!r}")


def _error_for_code(code: int, detail: str) -> MailError:
    kind = MailTemporaryError if 400 <= code < 500 else MailPermanentError
    return kind(f"SMTP server answered {code}: {detail}", smtp_code=code)


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    if config.security == "tls":
        return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    if config.security == "starttls":
        try:
            smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
    return smtp


def send_email(config: SmtpConfig, message: EmailMessage, *, envelope_from: str | None = None) -> None:
    """Hand ``message`` to the SMTP server, or raise MailTemporaryError / MailPermanentError. ``envelope_from``
    is the SMTP ``MAIL FROM`` (the Return-Path bounces go to: :func:`ntbcare.core.bounces.bounce_address`);
    without it, the From address."""
    number, message_id = message.get("X-NTBCare-Ticket", "-"), message.get("Message-ID", "-")
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _connect(config)
        if config.username:
            smtp.login(config.username, config.password)
        refused = smtp.send_message(message, from_addr=envelope_from)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        kind = MailTemporaryError if any(400 <= code < 500 for code in codes) else MailPermanentError
        raise kind(f"SMTP server refused every recipient (codes {sorted(set(codes))})",
                   smtp_code=min(codes, default=None)) from exc
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise _error_for_code(exc.smtp_code, str(detail)) from exc
    except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
        raise MailPermanentError(f"SMTP setup rejected ({type(exc).__name__}): check SMTP_URL") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailTemporaryError(f"SMTP server unreachable ({type(exc).__name__}: {exc})") from exc
    finally:
        if smtp is not None:
            _close(smtp)
    if refused:
        logger.warning("mail for ticket %s accepted for some recipients only; refused: %s",
                       number, {address: code for address, (code, _) in refused.items()})
    logger.info("mail for ticket %s handed to %s:%s (Message-ID %s)", number, config.host, config.port, message_id)


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT politely; a failure here must not turn a delivered message into a retried one."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
