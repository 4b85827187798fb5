"""Mail: SMTP settings and audiences from the environment, and one way to send.

Settings (all optional when the local sink is used, i.e. ``EXOPS_SMTP_HOST`` unset):

- ``EXOPS_SMTP_HOST`` (default 127.0.0.1, the local sink), ``EXOPS_SMTP_PORT`` (default
  8025 locally, else 587), ``EXOPS_SMTP_STARTTLS`` (true/false; default false locally, else
  true), ``EXOPS_SMTP_USER`` and ``EXOPS_SMTP_PASSWORD`` (both or neither; the password may
  be a file, ``EXOPS_SMTP_PASSWORD_FILE``),
  ``EXOPS_MAIL_FROM`` (default ``exops@localhost``).
- ``EXOPS_MAIL_TO_<AUDIENCE>``: comma-separated addresses of an audience (``ops``,
  ``data_eng``, ``risk``, or any name an alert rule uses). With a configured SMTP host every
  audience mail goes to must be set; against the local sink an unset audience goes to
  ``<audience>@exops.local`` so a local run shows every mail it would send.

Every header exops builds goes through :func:`header_text` (or :func:`attachment_name`):
values that come from data (a campaign id, a product id, an error message) may hold CR/LF
or other control characters, which would otherwise inject headers or make the email
library refuse the message.
"""

from __future__ import annotations

import smtplib
import ssl
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from exops.settings import SettingError, load_settings

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 8025


# C0/C1 controls (CR, LF, tab, NUL, ESC, ...) and Unicode's line/paragraph separators
_UNSAFE_CATEGORIES = {"Cc", "Zl", "Zp"}
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
_MAX_HEADER_CHARS = 500


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"


def header_text(value: object, limit: int = _MAX_HEADER_CHARS) -> str:
    """``value`` as one safe header line: control characters escaped (CR -> ``\\r``,
    NUL -> ``\\x00``), so nothing in the value can start another header; cut to ``limit``."""
    text = "".join(
        _escaped(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in str(value)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def attachment_name(name: object) -> str:
    """A safe attachment filename: a header value with no path separators or quotes."""
    safe = header_text(name, limit=120)
    return "".join("_" if ch in '/\\"' else ch for ch in safe) or "attachment"


class MailConfigError(ValueError):
    pass


class SendError(RuntimeError):
    """Sending failed. ``not_sent`` is True when the server certainly did not accept it."""

    def __init__(self, message: str, not_sent: bool):
        super().__init__(message)
        self.not_sent = not_sent


@dataclass(frozen=True)
class MailSettings:
    host: str = LOCAL_HOST
    port: int = LOCAL_PORT
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "exops@localhost"
    audiences: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    local: bool = True  # no SMTP host configured: the local sink

    def recipients(self, audiences: Iterable[str]) -> list[str]:
        """The addresses of these audiences, deduplicated, in order."""
        out: list[str] = []
        for audience in audiences:
            addresses = self.audiences.get(audience)
            if not addresses:
                if not self.local:
                    raise MailConfigError(
                        f"{_audience_var(audience)} is not set: give the comma-separated "
                        f"addresses of audience {audience!r}"
                    )
                addresses = (f"{audience}@exops.local",)
            out.extend(a for a in addresses if a not in out)
        return out


def _audience_var(audience: str) -> str:
    return f"EXOPS_MAIL_TO_{audience.upper()}"


def mail_settings(env: Mapping[str, str] | None = None) -> MailSettings:
    """Mail settings of ``env`` (default: the environment, :mod:`exops.settings`); raises
    MailConfigError naming the variable at fault."""
    try:
        s = load_settings(env)
    except SettingError as exc:
        raise MailConfigError(str(exc)) from None
    local = not s.smtp_host
    return MailSettings(
        host=s.smtp_host or LOCAL_HOST,
        port=s.smtp_port or (LOCAL_PORT if local else 587),
        starttls=(not local) if s.smtp_starttls is None else s.smtp_starttls,
        user=s.smtp_user or None,
        password=s.smtp_password or None,
        sender=s.mail_from,
        audiences=dict(s.mail_to),
        local=local,
    )


def send(message: EmailMessage, settings: MailSettings, timeout: float = 30.0) -> None:
    """Send one message. Raises SendError; ``not_sent`` says whether a retry is safe."""
    recipients = [a.strip() for a in str(message.get("To", "")).split(",") if a.strip()]
    if not recipients:
        raise SendError("message has no recipients", not_sent=True)
    # serialised before connecting: a message that cannot be rendered was certainly not sent
    try:
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    except Exception as exc:  # noqa: BLE001 - any rendering failure means nothing left
        raise SendError(f"message could not be rendered: {exc!r}", not_sent=True) from exc
    accepted_data = False
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=timeout) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.ehlo_or_helo_if_needed()
            code, resp = smtp.mail(settings.sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, resp, settings.sender)
            for rcpt in recipients:
                code, resp = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({rcpt: (code, resp)})
            # From here on the server may have queued the message even if we see an error.
            accepted_data = True
            # SMTP needs CRLF line ends; smtplib only converts str payloads, not bytes
            code, resp = smtp.data(data)
            if code != 250:
                raise smtplib.SMTPDataError(code, resp)
    except smtplib.SMTPDataError as exc:
        raise SendError(
            f"SMTP server {settings.host}:{settings.port} refused the message: {exc}", True
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        where = f"{settings.host}:{settings.port}"
        if accepted_data:
            raise SendError(
                f"SMTP {where} failed while sending the message: {exc!r}", False
            ) from exc
        raise SendError(f"cannot send mail through {where}: {exc!r}", True) from exc
