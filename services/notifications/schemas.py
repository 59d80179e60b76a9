"""Request and response bodies of the notifications API."""

from __future__ import annotations

import re
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

from shared.web import RequestBody, text_problem

KEY = re.compile(r"^(department:[a-z]+:.+|office:[a-z]+|leaders:[a-z]+|person:.+)$")
KEY_RULE = (
    "收件人键应为 department:<政协>:<单位>、office:<政协>、leaders:<政协> 或 person:<用户> / "
    "a recipient key is department:<office>:<name>, office:<office>, leaders:<office> or "
    "person:<user>"
)
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def check_key(key: str) -> str:
    if not KEY.match(key) or len(key) > 300:
        raise ValueError(KEY_RULE)
    if (problem := text_problem(key)) is not None:
        raise ValueError(problem)
    return key


def office_of(key: str) -> str | None:
    """The office a directory entry belongs to (a person's belongs to none)."""
    kind, _, rest = key.partition(":")
    return None if kind == "person" else rest.split(":", 1)[0]


class Robot(RequestBody):
    """A group robot's webhook (群机器人): 企业微信, 钉钉 (optional 加签 secret) or 飞书."""

    kind: Literal["wecom", "dingtalk", "feishu"]
    url: str = Field(pattern=r"^https?://\S+$", max_length=2000)
    secret: str | None = Field(default=None, max_length=200)


class RecipientBody(RequestBody):
    """A directory entry (通讯录): the addresses a department, office or person is reached at."""

    name: str = Field(min_length=1, max_length=200)
    emails: list[str] = Field(default_factory=list, max_length=50)
    robots: list[Robot] = Field(default_factory=list, max_length=20)
    users: list[str] = Field(default_factory=list, max_length=200)
    """Users (token subjects) whose in-app inbox gets the notices."""

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        for email in emails:
            if not EMAIL.match(email):
                raise ValueError(f"邮箱地址无效 / not an email address: {email!r}")
        return emails


class Recipient(RecipientBody):
    key: str


class ResendBody(RequestBody):
    """Which dead letters to send again: those named, or all (`all: true`)."""

    ids: list[str] = Field(default_factory=list, max_length=10_000)
    all: bool = False


class Resent(BaseModel):
    resent: int


class Notification(BaseModel):
    id: str
    kind: str
    office: str
    subject: str
    body: str
    created_at: str
    subject_id: str | None = None
    attachment_name: str | None = None
    recipient: str | None = None
    cause: str | None = None


class InboxNotice(Notification):
    """A notice in a user's in-app inbox (站内通知); `read_at` null while unread (未读)."""

    read_at: str | None = None


class Unread(BaseModel):
    unread: int


class DeliveryView(BaseModel):
    id: str
    notice_id: str
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: str | None
    kind: str
    subject: str
    recipient: str
    office: str
    created_at: str
    claims: int = 0
    """How many times a sender took it to send (认领次数)."""
    claimed_at: str | None = None
    resent_after_crash: int = 0
    """Times it was found in flight after a crash and sent again, under its Message-ID."""


class DeliverySummary(BaseModel):
    """How many email and robot deliveries are in each state (送达概况), and whether the
    sender has settled: every upstream event read, nothing due now or in flight."""

    due: int
    """Pending and due now (during quiet hours they wait for the end)."""
    later: int
    """Pending, due at a later time."""
    in_flight: int
    retrying: int
    """Sending again after a failed attempt, with backoff."""
    sent: int
    dead: int
    resent_after_crash: int
    """Sends again of deliveries that were in flight at a crash (each under its Message-ID:
    a receiver that keeps one message per Message-ID sees it once)."""
    quiet_hours: bool
    behind: list[str]
    """Upstream streams with events not yet read."""
    settled: bool


Status = Literal["pending", "sending", "sent", "dead"]


Item = TypeVar("Item")


class Listed(BaseModel, Generic[Item]):
    """A page of a list, as every list of the project answers (docs/API.md)."""

    items: list[Item]
    total: int
    page: int
    page_size: int
