"""Delivery channels (送达渠道): email over SMTP (aiosmtplib) and the group robots offices
already use — 企业微信 (WeCom), 钉钉 (DingTalk), 飞书 (Feishu / Lark) — each a plain HTTPS POST
in the robot's documented JSON format. A failed send raises `DeliveryFailed`; the sender
retries with backoff and finally keeps it as a dead letter.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
import httpx

from services.notifications.settings import NotificationsSettings
from shared.clock import CHINA


class DeliveryFailed(Exception):
    """The channel refused or could not be reached; the message says why."""


@dataclass(frozen=True)
class Outgoing:
    """One delivery as it goes out."""

    delivery_id: str
    channel: str
    address: str
    secret: str | None
    subject: str
    body: str
    created_at: Any
    attachment_name: str | None = None
    attachment_type: str | None = None
    attachment: bytes | None = None

    @property
    def message_id(self) -> str:
        """Stable per delivery: a message sent again after a crash carries the same one, so
        that mail systems (and our sink) can tell it is the same message."""
        return f"<{self.delivery_id}@shangliang>"

    @property
    def reference(self) -> str:
        """A robot message's stable mark (编号), the start of the delivery id: the robots'
        webhooks take no idempotency key, so a post sent again after a crash shows twice in
        the group, under the same mark, by which readers (and any bot reading the group)
        tell it is the same message."""
        return self.delivery_id[:8]

    def text(self) -> str:
        lines = [self.subject, "", self.body]
        if self.attachment_name:
            lines += ["", f"附件见邮件 / the attachment ({self.attachment_name}) comes by email."]
        lines += ["", f"编号 / ref: {self.reference}"]
        return "\n".join(lines)


def email_message(outgoing: Outgoing, sender: str) -> EmailMessage:
    message = EmailMessage()
    # The default policy encodes a non-ASCII subject as RFC 2047 encoded words.
    message["Subject"] = outgoing.subject
    message["From"] = sender
    message["To"] = outgoing.address
    message["Message-ID"] = outgoing.message_id
    message["Date"] = format_datetime(outgoing.created_at.astimezone(CHINA))
    message.set_content(outgoing.body + "\n", charset="utf-8")
    if outgoing.attachment is not None and outgoing.attachment_type and outgoing.attachment_name:
        maintype, subtype = outgoing.attachment_type.split("/", 1)
        params = {"method": "REQUEST"} if subtype == "calendar" else {}
        message.add_attachment(
            outgoing.attachment,
            maintype=maintype,
            subtype=subtype,
            filename=outgoing.attachment_name,
            params=params,
        )
    return message


def dingtalk_url(url: str, secret: str | None, now: float | None = None) -> str:
    """钉钉 加签: HMAC-SHA256 of `timestamp\\nsecret` keyed by the secret, in the query."""
    if not secret:
        return url
    timestamp = str(round((time.time() if now is None else now) * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp}&sign={sign}"


def feishu_sign(secret: str, timestamp: str) -> str:
    """飞书 签名校验: HMAC-SHA256 keyed by `timestamp\\nsecret` of nothing, base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def robot_request(outgoing: Outgoing) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of a robot message."""
    text = outgoing.text()
    if outgoing.channel == "wecom":
        return outgoing.address, {"msgtype": "text", "text": {"content": text}}
    if outgoing.channel == "dingtalk":
        url = dingtalk_url(outgoing.address, outgoing.secret)
        return url, {"msgtype": "text", "text": {"content": text}}
    if outgoing.channel == "feishu":
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if outgoing.secret:
            timestamp = str(int(time.time()))
            body |= {"timestamp": timestamp, "sign": feishu_sign(outgoing.secret, timestamp)}
        return outgoing.address, body
    raise DeliveryFailed(f"未知渠道 / unknown channel {outgoing.channel!r}")


def robot_accepted(channel: str, answer: dict[str, Any]) -> bool:
    """WeCom and DingTalk answer `errcode: 0`, Feishu `code: 0` (older bots `StatusCode`)."""
    if channel == "feishu":
        return answer.get("code", answer.get("StatusCode")) == 0
    return answer.get("errcode") == 0


class Channels:
    """Sends one delivery on its channel. SMTP connections are kept open and reused (one
    per delivery in flight at most): a connection per message cost more than the message."""

    def __init__(self, settings: NotificationsSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, outgoing: Outgoing) -> None:
        if outgoing.channel == "email":
            await self._email(outgoing)
        else:
            await self._robot(outgoing)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await smtp.quit()

    def _connection(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            timeout=s.smtp_timeout_seconds,
        )

    async def _email(self, outgoing: Outgoing) -> None:
        message = email_message(outgoing, self._settings.mail_from)
        reused = self._idle.pop() if self._idle else None
        if reused is not None:
            try:
                await reused.send_message(message)
                self._idle.append(reused)
                return
            except aiosmtplib.SMTPServerDisconnected:
                # An idle connection the server closed: nothing was sent; a new one below.
                reused.close()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                reused.close()
                raise DeliveryFailed(f"SMTP: {error!r}") from error
        smtp = self._connection()
        try:
            await smtp.connect()
            await smtp.send_message(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            smtp.close()
            raise DeliveryFailed(f"SMTP: {error!r}") from error
        self._idle.append(smtp)

    async def _robot(self, outgoing: Outgoing) -> None:
        url, body = robot_request(outgoing)
        try:
            response = await self._http.post(
                url,
                json=body,
                # Ignored by the three platforms; a proxy or receiver that dedupes may use it.
                headers={"Idempotency-Key": outgoing.delivery_id},
                timeout=self._settings.webhook_timeout_seconds,
            )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{outgoing.channel}: {error!r}") from error
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not robot_accepted(outgoing.channel, answer):
            raise DeliveryFailed(
                f"{outgoing.channel}: HTTP {response.status_code} {response.text[:200]}"
            )
