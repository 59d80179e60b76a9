"""Meetings' reference data (基础资料): members, the expert panel, departments, venues.

One `Roster` per office keeps them as events, so every change has its history.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.meetings.rules import MeetingConflict, MeetingRuleBroken, stable_id

PERSON_KINDS = ("member", "expert", "department_head")
"""政协委员 · 协商议事专家团成员 · 承办单位负责人."""


class Roster(Aggregate):
    """基础资料: an office's members (委员), experts (专家团), departments (承办单位), venues."""

    id: UUID

    @staticmethod
    def id_for(office: str) -> UUID:
        return stable_id("roster", office)

    @event("Opened")
    def __init__(self, office: str) -> None:
        self.office = office
        self.people: dict[str, dict[str, Any]] = {}
        self.venues: dict[str, dict[str, Any]] = {}
        self.departments: dict[str, dict[str, Any]] = {}
        self.answered: dict[str, str] = {}

    @classmethod
    def open(cls, office: str) -> Roster:
        return cls(id=cls.id_for(office), office=office)

    def record_person(
        self, person_id: str, name: str, kind: str, department: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Register or update a person; returns them and whether this is a new person."""
        if not person_id.strip():
            raise MeetingRuleBroken("person_id", "不能为空 / must not be blank")
        if not name.strip():
            raise MeetingRuleBroken("name", "姓名不能为空 / the name must not be blank")
        if kind not in PERSON_KINDS:
            raise MeetingRuleBroken(
                "kind", f"未知的人员类别 / unknown kind {kind!r}; one of {', '.join(PERSON_KINDS)}"
            )
        if kind == "department_head" and department is None:
            raise MeetingRuleBroken(
                "department", "承办单位负责人需要所属单位 / a department head needs a department"
            )
        if department is not None and department not in self.departments:
            raise MeetingRuleBroken(
                "department",
                f"未登记的承办单位 / unknown department {department!r}: register it first",
            )
        person = {
            "person_id": person_id.strip(),
            "office": self.office,
            "name": name.strip(),
            "kind": kind,
            "department": department,
        }
        existing = self.people.get(person["person_id"])
        if existing != person:
            self._person_recorded(**{k: v for k, v in person.items() if k != "office"})
        return self.people[person["person_id"]], existing is None

    @event("PersonRecorded")
    def _person_recorded(
        self, person_id: str, name: str, kind: str, department: str | None
    ) -> None:
        self.people[person_id] = {
            "person_id": person_id,
            "office": self.office,
            "name": name,
            "kind": kind,
            "department": department,
        }

    def record_venue(self, name: str, address: str | None) -> tuple[dict[str, Any], bool]:
        if not name.strip():
            raise MeetingRuleBroken("name", "会场名称不能为空 / the venue name must not be blank")
        venue = {"name": name.strip(), "address": address.strip() if address else None}
        existing = self.venues.get(venue["name"])
        if existing != venue:
            self._venue_recorded(venue["name"], venue["address"])
        return self.venues[venue["name"]], existing is None

    @event("VenueRecorded")
    def _venue_recorded(self, name: str, address: str | None) -> None:
        self.venues[name] = {"name": name, "address": address}

    def record_department(self, name: str) -> tuple[dict[str, Any], bool]:
        if not name.strip():
            raise MeetingRuleBroken("name", "单位名称不能为空 / the department name is blank")
        existing = self.departments.get(name.strip())
        if existing is None:
            self._department_recorded(name.strip())
        return self.departments[name.strip()], existing is None

    @event("DepartmentRecorded")
    def _department_recorded(self, name: str) -> None:
        self.departments[name] = {"name": name}

    def answered_before(self, key: str, fingerprint: str) -> bool:
        """Whether this registration was already made; the same key for another → 409."""
        seen = self.answered.get(key)
        if seen is None:
            return False
        if seen != fingerprint:
            raise MeetingConflict(
                "Idempotency-Key 已用于另一个不同的请求 / this Idempotency-Key was already used "
                "for a different request"
            )
        return True

    @event("RequestAnswered")
    def remember(self, key: str, fingerprint: str) -> None:
        self.answered[key] = fingerprint
