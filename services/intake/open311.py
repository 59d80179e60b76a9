"""Open311 GeoReport v2 (市民诉求标准接口): the office's categories as services, residents'
requests as issues, and each issue's public status in the spec's own fields.

The spec: https://wiki.open311.org/GeoReport_v2 — field names, the `[{code, description}]`
error list and the XML shapes below follow it exactly.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from xml.etree.ElementTree import Element, SubElement, tostring

from eventsourcing.domain import Aggregate, event

from services.intake.domain import Issue
from services.intake.rules import IssueRuleBroken, cleaned_text
from shared.clock import CHINA

CLOSED_STATUSES = frozenset({"resolved", "closed", "duplicate", "rejected", "report"})
"""Where the resident's request has its answer: solved, forwarded, or declined with a reason."""


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_id_for(api_key: str) -> UUID:
    """The key's record is found by the key's hash alone: the key itself is never stored."""
    return uuid5(NAMESPACE_URL, f"shangliang:intake:open311-key:{key_digest(api_key)}")


def new_api_key() -> str:
    """256 random bits behind a prefix: a bare `token_urlsafe` may begin with `-`, which a
    command line (`shangliang open311 key revoke --key …`) takes for an option."""
    return f"o311_{secrets.token_urlsafe(32)}"


class Open311Key(Aggregate):
    """Open311 接入密钥: an office's credential for a GeoReport client (an app, a web form)."""

    id: UUID  # key_id_for(the key)

    @event("Issued")
    def __init__(self, office: str, label: str, digest: str, issued_at: datetime) -> None:
        self.office = office
        self.label = label
        self.digest = digest
        self.issued_at = issued_at
        self.revoked_at: datetime | None = None

    @classmethod
    def issue(cls, office: str, label: str, api_key: str, now: datetime) -> Open311Key:
        clean_label = cleaned_text("label", label, "名称")
        assert clean_label is not None
        return cls(
            id=key_id_for(api_key),
            office=office,
            label=clean_label,
            digest=key_digest(api_key),
            issued_at=now,
        )

    def revoke(self, now: datetime) -> None:
        if self.revoked_at is None:
            self._revoked(now)

    @event("Revoked")
    def _revoked(self, revoked_at: datetime) -> None:
        self.revoked_at = revoked_at

    def opens(self, api_key: str) -> bool:
        return self.revoked_at is None and secrets.compare_digest(self.digest, key_digest(api_key))


class Open311Error(Exception):
    """A request the spec's error list answers: `[{"code": 400, "description": ...}]`."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def refusal_of(error: IssueRuleBroken) -> Open311Error:
    """A domain rule broken by a request field, in Open311's words."""
    field = _SPEC_FIELD.get(error.field, error.field)
    return Open311Error(400, f"{field}: {error.reason}")


_SPEC_FIELD = {
    "category": "service_code",
    "reporter_phone": "phone",
    "reporter_name": "first_name",
    "submitted_at": "requested_datetime",
}


def _w3c(moment: datetime | None) -> str | None:
    """Open311's datetimes: W3C format with the offset, here China Standard Time."""
    return None if moment is None else moment.astimezone(CHINA).isoformat(timespec="seconds")


def _end_of(day: date | None) -> str | None:
    if day is None:
        return None
    return _w3c(datetime.combine(day, time(23, 59, 59), tzinfo=CHINA))


def status_notes(issue: Issue) -> str | None:
    """What the office says about the request, in plain words; never an internal note."""
    screening = issue.screening or {}
    decision = screening.get("decision")
    if issue.is_resolved:
        if issue.resolved_via == "answered":
            return f"已当场答复 / answered: {screening.get('answer')}"
        if issue.resolved_via == "original":
            return "已随同类问题一并解决 / resolved together with the same problem raised before"
        completed = [c.get("note") for c in issue.cases.values() if c.get("note")]
        department = issue.department or ""
        done = f"：{completed[-1]}" if completed else ""
        return f"{department}已办结并经政协验收{done} / completed by {department}, verified"
    if decision == "rejected":
        return f"不予采纳 / not taken up: {screening.get('reason')}"
    if decision == "duplicate":
        return "与已收到的同一问题合并办理 / merged with the same problem raised before"
    if decision == "report":
        return "已作为社情民意报送党委政府 / forwarded to the party committee and government"
    if decision == "topic":
        return "已列为协商议题 / taken up as a topic for a consultation meeting"
    if issue.department is not None:
        return f"已转{issue.department}办理 / referred to {issue.department}"
    return None


def service_request(issue: Issue) -> dict[str, Any]:
    """One request in the spec's fields; never the reporter's name, phone or e-mail."""
    location = issue.location or {}
    updated = issue.modified_on
    return {
        "service_request_id": str(issue.id),
        "status": "closed" if issue.status in CLOSED_STATUSES else "open",
        "status_notes": status_notes(issue),
        "service_name": issue.category,
        "service_code": issue.category,
        "description": issue.description,
        "agency_responsible": issue.department,
        "service_notice": None,
        "requested_datetime": _w3c(issue.submitted_at),
        "updated_datetime": _w3c(updated if updated.tzinfo else updated.replace(tzinfo=UTC)),
        "expected_datetime": _end_of(issue.deadline),
        "address": location.get("address_string"),
        "address_id": location.get("address_id"),
        "zipcode": None,
        "lat": location.get("lat"),
        "long": location.get("long"),
        "media_url": issue.media_url,
    }


def service(office: str, category: str, attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "service_code": category,
        "service_name": category,
        "description": f"{category}（{office}）",
        "metadata": bool(attributes),
        "type": "realtime",
        "keywords": "",
        "group": office,
    }


# --- XML, the spec's other format ------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml(root: str, item: str, rows: list[dict[str, Any]]) -> bytes:
    top = Element(root)
    for row in rows:
        element = SubElement(top, item)
        for name, value in row.items():
            if isinstance(value, list):
                _xml_list(SubElement(element, name), value)
            else:
                SubElement(element, name).text = _text(value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + tostring(top, encoding="unicode").encode()


def _xml_list(parent: Element, items: list[Any]) -> None:
    for item in items:
        if isinstance(item, dict):
            # attributes → attribute, values → value: the spec's singular child names.
            child = SubElement(parent, parent.tag.rstrip("s"))
            for name, value in item.items():
                if isinstance(value, list):
                    _xml_list(SubElement(child, name), value)
                else:
                    SubElement(child, name).text = _text(value)


def services_xml(rows: list[dict[str, Any]]) -> bytes:
    return _xml("services", "service", rows)


def requests_xml(rows: list[dict[str, Any]]) -> bytes:
    return _xml("service_requests", "request", rows)


def definition_xml(definition: dict[str, Any]) -> bytes:
    top = Element("service_definition")
    SubElement(top, "service_code").text = definition["service_code"]
    _xml_list(SubElement(top, "attributes"), definition["attributes"])
    return b'<?xml version="1.0" encoding="utf-8"?>' + tostring(top, encoding="unicode").encode()


def errors_xml(errors: list[dict[str, Any]]) -> bytes:
    return _xml("errors", "error", errors)
