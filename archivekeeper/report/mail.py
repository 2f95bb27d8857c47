"""Mailing the report: multipart/alternative (text, then HTML) over SMTP, with STARTTLS and
login when configured. The password is read from report.email.password_file, which others may
not read."""

from __future__ import annotations

import base64
import os
import smtplib
import ssl
import stat
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

TIMEOUT = 60  # seconds for each SMTP step: a dead server must not hang the daemon


class MailError(Exception):
    """The report could not be mailed; the message is one line."""


def message(email, subject: str, text: str, html: str, now: datetime) -> EmailMessage:
    """Given report.email, the subject, both renderings and now, return the message."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject  # encoded (RFC 2047) by the policy when it is not ASCII
    msg["From"] = email.from_
    msg["To"] = ", ".join(email.to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("archivekeeper", domain=email.from_.rpartition("@")[2])
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def read_password(path) -> str:
    """Return the password in `path` (its first line). Raise MailError if it cannot be read,
    is not a regular file, or others may read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise MailError(f"{path}: cannot read the SMTP password: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise MailError(f"{path}: the SMTP password_file is not a regular file")
        if st.st_mode & 0o007:
            raise MailError(f"{path}: the SMTP password_file may be read by others (mode "
                            f"{stat.S_IMODE(st.st_mode):04o}); run chmod 600 {path}")
        try:
            lines = src.read().decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise MailError(f"{path}: the SMTP password_file is not UTF-8 text") from None
    return lines[0] if lines else ""


def send(email, msg: EmailMessage) -> None:
    """Send msg as report.email says. Raise MailError with the SMTP error in one line."""
    password = read_password(email.password_file) if email.password_file else None
    where = f"{email.host}:{email.port}"
    try:
        with smtplib.SMTP(email.host, email.port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            if email.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if email.username:
                _login(smtp, email.username, password or "")
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        raise MailError(_one_line(f"mail via {where} failed: {exc.smtp_code} {detail}")
                        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailError(_one_line(f"mail via {where} failed: {exc}")) from None


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib encodes credentials as ASCII; a password with ä goes as UTF-8 AUTH PLAIN."""
    if (user + password).isascii():
        smtp.login(user, password)
        return
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, answer = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _one_line(text: str) -> str:
    return " ".join(text.split())
