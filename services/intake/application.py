"""Intake's application (问题收集服务): commands and queries over the event store."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.intake.activity import OutreachActivity
from services.intake.catalog import (
    ActivityFilter,
    CallbackFilter,
    Catalog,
    IssueFilter,
    Page,
    RequestFilter,
)
from services.intake.domain import (
    DEFAULT_CATEGORIES,
    STATUSES,
    Issue,
    activity_id_for,
    issue_id_for,
)
from services.intake.imports import Kind, RowChecker, RowError, data_rows, read_table
from services.intake.open311 import (
    CLOSED_STATUSES,
    Open311Error,
    Open311Key,
    key_id_for,
    new_api_key,
    refusal_of,
)
from services.intake.rules import IssueRuleBroken, previous_command
from services.intake.tracking import TrackingCodes, public_timeline
from shared import commands
from shared.aio import in_thread
from shared.audit import HistoryEntry, read_history
from shared.clock import add_working_days, china_day, china_time
from shared.commands import Command, Decision, IdempotencyConflict, decide_and_save
from shared.eventstore import ServiceApplication

A = TypeVar("A", bound=Aggregate)

PERSONAL_FIELDS = frozenset({"reporter_name", "reporter_phone"})
_BOOKKEEPING = frozenset({"command"})
"""A request's Idempotency-Key and fingerprint: retry bookkeeping, not what happened."""


class IssueNotFound(LookupError):
    pass


class ActivityNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ImportResult:
    stored: int
    unchanged: int
    errors: list[RowError]


FINGERPRINT_DIGITS = 32
"""Intake's events hold fingerprints of 32 hex digits: a retry must still match them."""


def command_of(idempotency_key: str | None, *parts: Any) -> Command:
    return commands.command_of(idempotency_key, *parts, digits=FINGERPRINT_DIGITS)


class IntakeApplication(ServiceApplication):
    """问题收集: records activities and issues; its notification log is intake's outbox."""

    name = "intake"
    key_cache_seconds = 10.0

    def __init__(
        self,
        env: dict[str, str] | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
        tracking_secret: bytes | None = None,
        open311_attributes: Mapping[str, Mapping[str, list[dict[str, Any]]]] | None = None,
        callback_working_days: int = 5,
    ) -> None:
        super().__init__(env)
        self.callback_working_days = callback_working_days
        self._categories = {office: tuple(c) for office, c in (categories or {}).items()}
        self._attributes = open311_attributes or {}
        # Without a configured secret (tests in memory) the codes last as long as the process.
        self.tracking = TrackingCodes(tracking_secret or secrets.token_bytes(32))
        with self._schema_changes_one_at_a_time():
            self.catalog = Catalog(self, self.tracking.code_of)
        self._keys: dict[UUID, tuple[str, float]] = {}

    def categories_of(self, office: str) -> tuple[str, ...]:
        return self._categories.get(office) or DEFAULT_CATEGORIES

    # --- reading ------------------------------------------------------------------------

    def get_issue(self, issue_id: UUID) -> Issue:
        return self._get(issue_id, Issue, IssueNotFound)

    def get_activity(self, activity_id: UUID) -> OutreachActivity:
        return self._get(activity_id, OutreachActivity, ActivityNotFound)

    def _get(self, aggregate_id: UUID, kind: type[A], missing: type[LookupError]) -> A:
        try:
            found = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing(aggregate_id) from None
        if not isinstance(found, kind):
            raise missing(aggregate_id)
        return found

    def history(self, aggregate_id: UUID) -> list[dict[str, Any]]:
        """Every stored event of an aggregate, without personal data or request keys."""
        steps = []
        for entry in self.audit_trail(aggregate_id, personal=False):
            fields = dict(entry.data)
            details = fields.pop("details", {})
            steps.append(
                {
                    "event": entry.event,
                    "version": entry.version,
                    "recorded_at": entry.recorded_at,
                    **fields,
                    **details,
                }
            )
        return steps

    def audit_trail(self, aggregate_id: UUID, personal: bool) -> list[HistoryEntry]:
        """Every stored event with who caused it; the reporter only if `personal`."""
        hidden = _BOOKKEEPING if personal else _BOOKKEEPING | PERSONAL_FIELDS
        return read_history(self, aggregate_id, hidden)

    async def warm_up_catalog(self) -> None:
        """Catch the lists' catalog up at start, a batch at a time, so that the first list
        after an upgrade or a large import does not do it (a million issues: ~3 minutes).
        A list meanwhile waits for the batch in hand, then catches up the rest itself."""
        while await in_thread(self.catalog.catch_up_batch):
            pass

    def list_issues(self, where: IssueFilter, page: int, page_size: int) -> Page:
        ids, total = self.catalog.page(where, page, page_size)
        return Page([self.get_issue(i) for i in ids], total, page, page_size)

    def list_activities(self, where: ActivityFilter, page: int, page_size: int) -> Page:
        ids, total = self.catalog.page(where, page, page_size)
        return Page([self.get_activity(i) for i in ids], total, page, page_size)

    def _found(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        try:
            return self._get(aggregate_id, kind, LookupError)
        except LookupError:
            return None

    # --- activities ---------------------------------------------------------------------

    async def record_activity(
        self,
        office: str,
        held_at: datetime,
        members: list[str],
        community: str | None = None,
        liaison_station: str | None = None,
        activity_group: str | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[OutreachActivity, bool]:
        """Record an activity; returns it and whether it is new (False for a retry)."""
        activity = OutreachActivity.record(
            activity_id_for(office, idempotency_key),
            office,
            held_at,
            members,
            now=datetime.now(UTC),
            community=community,
            liaison_station=liaison_station,
            activity_group=activity_group,
            note=note,
        )
        return await self._create(activity, idempotency_key, ActivityNotFound)

    async def correct_activity(
        self,
        activity_id: UUID,
        members: list[str],
        reason: str,
        corrected_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> OutreachActivity:
        """更正参加委员 with the full new list."""
        command = command_of(idempotency_key, members, reason, corrected_at)

        def change(activity: OutreachActivity) -> list[Aggregate]:
            if previous_command(activity, command):
                return []
            now = datetime.now(UTC)
            activity.correct(members, reason, corrected_at or now, now, command)
            return [activity]

        return await self._change(activity_id, OutreachActivity, ActivityNotFound, change)

    # --- issues -------------------------------------------------------------------------

    async def submit_issue(
        self,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
        idempotency_key: str | None = None,
        community: str | None = None,
        liaison_station: str | None = None,
        source: str | None = None,
        activity_id: UUID | None = None,
        recorded_by: str | None = None,
        key_problem: bool = False,
        reporter_name: str | None = None,
        reporter_phone: str | None = None,
    ) -> tuple[Issue, bool]:
        """Record an issue; returns it and whether it is new (False for a retried request)."""
        activity = None
        if activity_id is not None:
            activity = await asyncio.to_thread(self._found, activity_id, OutreachActivity)
            if activity is None:
                raise IssueRuleBroken(
                    "activity_id", "没有这个委员进基层活动 / no such outreach activity"
                )
        issue = Issue.submit(
            issue_id_for(office, idempotency_key),
            office,
            title,
            description,
            category,
            submitted_at,
            now=datetime.now(UTC),
            categories=self.categories_of(office),
            community=community,
            liaison_station=liaison_station,
            source=source,
            activity=activity,
            recorded_by=recorded_by,
            key_problem=key_problem,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
        )
        return await self._create(issue, idempotency_key, IssueNotFound)

    async def _create(
        self,
        new: A,
        idempotency_key: str | None,
        missing: type[LookupError],
        same: Callable[[Any, Any], bool] | None = None,
        look_first: bool = True,
    ) -> tuple[A, bool]:
        """Store a new aggregate; a retry with the same key returns the first one. Without
        `look_first` a retry is found by its save colliding (for keys that are seldom
        retried: one read fewer for every first request)."""

        def previous() -> A | None:
            try:
                existing = self._get(new.id, type(new), missing)
            except LookupError:
                return None
            if not (same or type(new).same_record)(existing, new):  # type: ignore[attr-defined]
                raise IdempotencyConflict(new.id)
            return existing

        if idempotency_key is not None and look_first:
            existing = await asyncio.to_thread(previous)
            if existing is not None:
                return existing, False
        try:
            await self.group_commit.save(new)
        except IntegrityError:
            # A concurrent retry with the same key won the race.
            existing = await asyncio.to_thread(previous)
            if existing is None:
                raise
            return existing, False
        return new, True

    async def screen_issue(
        self,
        issue_id: UUID,
        decision: str,
        screened_by: str,
        screened_at: datetime | None = None,
        report_title: str | None = None,
        department: str | None = None,
        deadline: date | None = None,
        answer: str | None = None,
        duplicate_of: UUID | None = None,
        reason: str | None = None,
        key_problem: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Issue:
        """筛选议题: the one decision; `answered` also resolves it and the duplicates it has."""
        asked = (decision, screened_at, report_title, department, deadline, answer)
        # Left out when absent, so a key stored before the flag existed still matches its retry.
        flag = () if key_problem is None else (key_problem,)
        command = command_of(idempotency_key, *asked, duplicate_of, reason, *flag)

        def change(issue: Issue) -> list[Aggregate]:
            if previous_command(issue, command):
                return []
            original = None
            if duplicate_of is not None and decision == "duplicate":
                try:
                    original = self.get_issue(duplicate_of)
                except IssueNotFound:
                    raise IssueRuleBroken(
                        "duplicate_of", "没有这个原问题 / no such original issue"
                    ) from None
            now = datetime.now(UTC)
            issue.screen(
                decision,
                screened_at or now,
                screened_by,
                now,
                report_title=report_title,
                department=department,
                deadline=deadline,
                answer=answer,
                duplicate_of=original,
                reason=reason,
                key_problem=key_problem,
                command=command,
            )
            changed: list[Aggregate] = [issue]
            if original is not None:
                original.link_duplicate(issue)
                changed.append(original)
            if issue.status == "resolved":
                changed += self.duplicates_follow(issue, {})
            return changed

        return await self._change(issue_id, Issue, IssueNotFound, change)

    async def close_issue(
        self, issue_id: UUID, closed_at: datetime | None = None, idempotency_key: str | None = None
    ) -> Issue:
        """办结归档 a resolved issue."""
        command = command_of(idempotency_key, closed_at)

        def change(issue: Issue) -> list[Aggregate]:
            if previous_command(issue, command):
                return []
            now = datetime.now(UTC)
            issue.close(closed_at or now, now, command)
            return [issue]

        return await self._change(issue_id, Issue, IssueNotFound, change)

    async def reopen_issue(
        self,
        issue_id: UUID,
        reason: str,
        reopened_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Issue:
        """重新打开 a closed issue: it awaits screening again."""
        command = command_of(idempotency_key, reason, reopened_at)

        def change(issue: Issue) -> list[Aggregate]:
            if previous_command(issue, command):
                return []
            now = datetime.now(UTC)
            issue.reopen(reason, reopened_at or now, now, command)
            return [issue]

        return await self._change(issue_id, Issue, IssueNotFound, change)

    async def _change(
        self,
        aggregate_id: UUID,
        kind: type[A],
        missing: type[LookupError],
        change: Callable[[A], list[Aggregate]],
    ) -> A:
        """Load, change and save; a concurrent change of the same aggregates is retried."""

        def decide() -> Decision[A]:
            aggregate = self._get(aggregate_id, kind, missing)
            return aggregate, change(aggregate)

        return await decide_and_save(self.group_commit.save, decide)

    def duplicates_follow(self, original: Issue, loaded: dict[UUID, Issue]) -> list[Aggregate]:
        """The duplicates of a resolved original are resolved with it."""
        followed: list[Aggregate] = []
        for duplicate_id in original.duplicates:
            duplicate = loaded.get(duplicate_id) or self.get_issue(duplicate_id)
            loaded[duplicate_id] = duplicate
            if duplicate.follow_original(original):
                followed.append(duplicate)
        return followed

    # --- Open311 GeoReport v2 ---------------------------------------------------------------

    def attributes_of(self, office: str, category: str) -> list[dict[str, Any]]:
        return list(self._attributes.get(office, {}).get(category, []))

    async def issue_open311_key(self, office: str, label: str) -> tuple[str, Open311Key]:
        """A new credential for one office's Open311 clients; the key is shown only here."""
        api_key = new_api_key()
        record = Open311Key.issue(office, label, api_key, datetime.now(UTC))
        await self.group_commit.save(record)
        return api_key, record

    def open311_key(self, key_id: UUID) -> Open311Key | None:
        return self._found(key_id, Open311Key)

    async def revoke_open311_key(self, key_id: UUID) -> Open311Key:
        """吊销: the key opens nothing from now on (other replicas: within the cache time)."""

        def change(record: Open311Key) -> list[Aggregate]:
            if record.revoked_at is not None:
                return []
            record.revoke(datetime.now(UTC))
            return [record]

        revoked = await self._change(key_id, Open311Key, _NoKey, change)
        self._keys.pop(revoked.id, None)
        return revoked

    def cached_office_of_key(self, api_key: str) -> str | None:
        """`office_of_key` when the answer is cached (no store read: fine on the event loop)."""
        cached = self._keys.get(key_id_for(api_key))
        if cached is not None and time.monotonic() - cached[1] < self.key_cache_seconds:
            return cached[0]
        return None

    def office_of_key(self, api_key: str) -> str | None:
        """The office an Open311 key belongs to; None for an unknown or revoked one. A key
        found valid is trusted for `key_cache_seconds` (a revocation takes that long to
        reach every replica), so a client's requests do not each read the store. The key is
        read by its id from the store, not through the catalog: catching up with every issue
        stored since (thousands, under load) held every request on the GIL for up to 1.5 s."""
        key_id = key_id_for(api_key)
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is not None and now - cached[1] < self.key_cache_seconds:
            return cached[0]
        try:
            record: Open311Key | None = self._get(key_id, Open311Key, _NoKey)
        except _NoKey:
            record = None
        if record is None or not record.opens(api_key):
            self._keys.pop(key_id, None)
            return None
        self._keys[key_id] = (record.office, now)
        return record.office

    async def submit_request(
        self,
        office: str,
        service_code: str,
        description: str,
        attributes: Mapping[str, str],
        location: dict[str, Any],
        media_url: str | None,
        reporter_name: str | None,
        reporter_phone: str | None,
        idempotency_key: str,
    ) -> tuple[Issue, bool]:
        """A resident's Open311 request becomes an issue from the source `online`."""
        if service_code not in self.categories_of(office):
            raise Open311Error(404, f"service_code: 没有这项服务 / no such service {service_code}")
        details = self._attribute_lines(office, service_code, attributes)
        text = description.strip()
        title = text.splitlines()[0][:40] if text else service_code
        try:
            issue = Issue.submit(
                issue_id_for(office, idempotency_key),
                office,
                title,
                "\n".join([text, *details]),
                service_code,
                datetime.now(UTC),
                now=datetime.now(UTC),
                categories=self.categories_of(office),
                source="online",
                location=location,
                media_url=media_url,
                reporter_name=reporter_name,
                reporter_phone=reporter_phone,
            )
        except IssueRuleBroken as broken:
            raise refusal_of(broken) from None
        # A retry of the same request (same key) is answered with the first issue, whenever
        # it comes: the time it was received is not part of what it asks for.
        return await self._create(
            issue, idempotency_key, IssueNotFound, _same_request, look_first=False
        )

    def _attribute_lines(self, office: str, category: str, given: Mapping[str, str]) -> list[str]:
        """The answers to a service's attributes, checked, as lines of the description."""
        lines = []
        known = {a["code"]: a for a in self.attributes_of(office, category)}
        for code in given:
            if code not in known:
                raise Open311Error(400, f"attribute[{code}]: 没有这个属性 / no such attribute")
        for code, attribute in known.items():
            value = given.get(code, "").strip()
            if not value:
                if attribute.get("required"):
                    raise Open311Error(
                        400, f"attribute[{code}]: 必填 / required: {attribute['description']}"
                    )
                continue
            keys = {v["key"]: v["name"] for v in attribute.get("values", [])}
            if keys and value not in keys:
                raise Open311Error(
                    400, f"attribute[{code}]: 不是可选值 / not one of {', '.join(keys)}"
                )
            if attribute.get("datatype") == "number":
                try:
                    float(value)
                except ValueError:
                    raise Open311Error(
                        400, f"attribute[{code}]: 需要数字 / a number is required"
                    ) from None
            lines.append(f"{attribute['description']}：{keys.get(value, value)}")
        return lines

    def service_requests(
        self,
        office: str | None,
        ids: list[UUID] | None,
        codes: list[str] | None,
        start: datetime,
        end: datetime,
        statuses: list[str] | None,
    ) -> list[Issue]:
        """The office's Open311 requests (source `online`), newest first."""

        if ids is not None:
            # By id: each looked up, not the whole list scanned.
            named = (self._found(i, Issue) for i in dict.fromkeys(ids))
            return [
                i
                for i in named
                if i is not None and (office is None or i.office == office) and i.source == "online"
            ]
        # Open311's two statuses, as the issue statuses each stands for (`service_request`).
        wanted = None
        if statuses is not None:
            wanted = frozenset(
                s for s in STATUSES if ("closed" if s in CLOSED_STATUSES else "open") in statuses
            )
        where = RequestFilter(start, end, office, codes, wanted)
        return [self.get_issue(i) for i in self.catalog.ids(where)]

    # --- 查询码: the public status lookup -----------------------------------------------------

    def tracking_code(self, issue: Issue) -> str:
        return self.tracking.code_of(issue.id)

    def track(self, code: str, office: str | None = None) -> tuple[Issue, list[Any]] | None:
        """The issue a tracking code names and its public timeline; None for an unknown code
        or another office's (the same work either way, so the answer takes the same time)."""
        issue_id = self.catalog.issue_with_code(code)
        issue = None if issue_id is None else self._found(issue_id, Issue)
        if issue is None or (office is not None and issue.office != office):
            return None
        events = list(self.events.get(issue.id))
        return issue, public_timeline(issue, events)

    # --- 回访: the follow-up call with the resident --------------------------------------------

    async def record_callback(
        self,
        issue_id: UUID,
        reached: bool,
        satisfaction: str | None,
        note: str | None,
        called_by: str,
        called_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Issue:
        """回访: reached or not, how satisfied; `unsatisfied` reopens the issue."""
        command = command_of(idempotency_key, reached, satisfaction, note, called_at)

        def change(issue: Issue) -> list[Aggregate]:
            if previous_command(issue, command):
                return []
            now = datetime.now(UTC)
            issue.record_callback(
                reached, satisfaction, note, called_at or now, called_by, now, command
            )
            return [issue]

        return await self._change(issue_id, Issue, IssueNotFound, change)

    def due_for_callback(self, offices: frozenset[str] | None, as_of: datetime) -> list[Issue]:
        """Resolved issues not called back within the setting's working days, oldest first."""
        cut_off = resolved_before(as_of, self.callback_working_days)
        where = CallbackFilter(cut_off, offices)
        return [self.get_issue(i) for i in self.catalog.ids(where)]

    # --- spreadsheet imports --------------------------------------------------------------

    async def import_file(
        self, kind: Kind, office: str, data: bytes, filename: str, first_row: int = 2
    ) -> ImportResult:
        """Store the good rows of a spreadsheet; report the bad ones; skip what is stored."""
        table = await asyncio.to_thread(read_table, data, filename)
        rows = list(data_rows(table, kind, first_row))
        checker = RowChecker(
            kind, office, self.categories_of(office), functools.cache(self._activity_or_none)
        )
        checked = await asyncio.to_thread(checker.check, iter(rows))
        existing = await asyncio.to_thread(self._existing, [a.id for _, a in checked.aggregates])
        errors = list(checked.errors)
        new: list[Aggregate] = []
        unchanged = 0
        for number, aggregate in checked.aggregates:
            before = existing.get(aggregate.id)
            if before is None:
                new.append(aggregate)
            elif type(before) is type(aggregate) and before.same_record(aggregate):  # type: ignore[attr-defined]
                unchanged += 1
            else:
                errors.append(
                    RowError(
                        number,
                        "编号",
                        "该编号已导入，内容不同（或已更正）/ this key was imported before with "
                        "other content (or corrected since)",
                    )
                )
        stored = sum(await self.store_new(new))
        errors.sort(key=lambda e: e.row)
        return ImportResult(stored, unchanged + len(new) - stored, errors)

    def _activity_or_none(self, activity_id: UUID) -> OutreachActivity | None:
        return self._found(activity_id, OutreachActivity)

    def _existing(self, ids: list[UUID]) -> dict[UUID, Aggregate]:
        """The stored aggregates among these ids: the catalog says which, the store has them."""
        return {i: self.repository.get(i) for i in self.catalog.known(ids)}

    async def store_new(self, aggregates: Sequence[Aggregate]) -> list[bool]:
        """Store new aggregates in group commits; False for one whose id already exists."""
        outcomes = await asyncio.gather(
            *[self.group_commit.save(a) for a in aggregates], return_exceptions=True
        )
        stored = []
        for outcome in outcomes:
            if isinstance(outcome, IntegrityError):
                stored.append(False)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                stored.append(True)
        return stored


class _NoKey(LookupError):
    """No Open311 key with this value."""


def _same_request(existing: Issue, new: Issue) -> bool:
    return existing.same_record(new, ignoring=("submitted_at",))


def resolved_before(as_of: datetime, working_days: int) -> datetime:
    """The latest resolution that is due for a call back at `as_of`: `working_days` working
    days (Chinese calendar, weekdays where it does not reach) before."""
    day = add_working_days(china_day(as_of), -working_days, approximate=True)
    return datetime.combine(day, china_time(as_of).timetz())
