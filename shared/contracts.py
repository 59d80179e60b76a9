"""Event contracts on the wire (事件契约): versioned, frozen, in a CloudEvents-style envelope.

Within a version only optional fields are added; a breaking change is a new version,
published beside the old until every consumer has moved. Every version stays readable.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Contract(BaseModel):
    """Base of every published event: knows its service, name and version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[int]

    @classmethod
    def type_name(cls) -> str:
        return f"shangliang.{cls.service}.{cls.name}.v{cls.version}"

    def subject(self, office: str) -> str:
        """The NATS subject, e.g. `intake.yanji.IssueSubmitted.v1`."""
        return f"{self.service}.{office}.{self.name}.v{self.version}"


class IssueSubmittedV1(Contract):
    """问题和建议已收集: an issue was recorded for an office."""

    service: ClassVar[str] = "intake"
    name: ClassVar[str] = "IssueSubmitted"
    version: ClassVar[int] = 1

    issue_id: UUID
    office: str
    title: str
    description: str
    category: str
    submitted_at: datetime


CONTRACTS: dict[str, type[Contract]] = {c.type_name(): c for c in (IssueSubmittedV1,)}


class Envelope(BaseModel):
    """CloudEvents-style envelope: `id` is stable per event, so re-publishing is harmless."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def wrap(cls, event_id: str, time: datetime, subject: str, contract: Contract) -> Envelope:
        return cls(
            id=event_id,
            source=f"/shangliang/{contract.service}",
            type=contract.type_name(),
            time=time,
            subject=subject,
            data=contract.model_dump(mode="json"),
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Envelope:
        return cls.model_validate_json(payload)

    def contract(self) -> Contract | None:
        """The typed event, or None for a type this build does not know (a newer producer)."""
        contract_class = CONTRACTS.get(self.type)
        return None if contract_class is None else contract_class.model_validate(self.data)


class UndecodableMessage(Exception):
    """A message on a stream that is not a valid envelope of a known contract."""


def decode(payload: bytes) -> tuple[Envelope, Contract | None]:
    try:
        envelope = Envelope.from_bytes(payload)
        return envelope, envelope.contract()
    except (ValidationError, json.JSONDecodeError) as error:
        raise UndecodableMessage(str(error)) from error
