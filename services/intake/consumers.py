"""What intake learns from supervision and meetings (上游事件): the cases that cover its issues
and their verification, and the agendas that take them up."""

from __future__ import annotations

import logging
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate

from services.intake.application import IntakeApplication, IssueNotFound
from services.intake.domain import Issue
from services.intake.rules import TransitionRefused
from shared.contracts import (
    CaseOpenedV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    TopicAddedV1,
    TopicRemovedV1,
)
from shared.process import Policy, PolicyRefused, Upstream

log = logging.getLogger(__name__)


def supervision_policy(app: IntakeApplication) -> Policy:
    """What supervision tells about a case: who is in charge, the deadline, the department's
    completion (for Open311 and the public lookup), and its verification."""
    resolve = verified_case_policy(app)

    def apply(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        told = upstream.event
        if isinstance(told, CaseVerifiedV1):
            resolve(upstream, processing)
            return
        if isinstance(told, CaseOpenedV1):
            known = (_known_issue(app, issue_id) for issue_id in told.issue_ids)
            covered = [issue for issue in known if issue is not None]
            step = ("opened", told.opened_at, told.department, told.deadline, None)
            meeting_id = told.meeting_id
        elif isinstance(told, CaseReopenedV1):
            covered = _issues_of_case(app, told.case_id)
            step = ("reopened", told.reopened_at, told.department, told.deadline, None)
            meeting_id = None
        elif isinstance(told, CompletionReportedV1):
            covered = _issues_of_case(app, told.case_id)
            step = ("completed", told.reported_at, told.department, None, told.note)
            meeting_id = None
        else:
            return
        name, at, department, deadline, note = step
        for issue in covered:
            if issue.note_case(told.case_id, name, at, department, deadline, note, meeting_id):
                processing.collect_events(issue)

    return apply


def meetings_policy(app: IntakeApplication) -> Policy:
    """What meetings tells: an issue put on a meeting's agenda (议题列入协商) or taken off it
    (议题移出), for the public lookup. Events published before the meeting's title and start
    travelled with them, and issues of another intake, are passed over."""

    def apply(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        told = upstream.event
        if isinstance(told, TopicRemovedV1):
            issue = _known_issue(app, told.issue_id)
            if issue is not None and issue.note_agenda_left(told.meeting_id, told.removed_at):
                processing.collect_events(issue)
            return
        if not isinstance(told, TopicAddedV1) or told.meeting_title is None or not told.starts_at:
            return
        issue = _known_issue(app, told.issue_id)
        if issue is not None and issue.note_agenda(
            told.meeting_id, told.meeting_title, told.starts_at, told.added_at
        ):
            processing.collect_events(issue)

    return apply


def verified_case_policy(app: IntakeApplication) -> Policy:
    """A verified supervision case (督办件已验收) resolves the issues it covers, once."""

    def apply(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        verified = upstream.event
        if not isinstance(verified, CaseVerifiedV1):
            return
        loaded: dict[UUID, Issue] = {}
        unknown: list[UUID] = []
        changed: dict[UUID, Aggregate] = {}
        for issue_id in verified.issue_ids:
            try:
                issue = loaded.get(issue_id) or app.get_issue(issue_id)
            except IssueNotFound:
                unknown.append(issue_id)
                continue
            loaded[issue_id] = issue
            try:
                resolved = issue.resolve_by_case(verified.case_id, verified.verified_at)
            except TransitionRefused as refusal:
                log.warning("case %s cannot resolve %s: %s", verified.case_id, issue_id, refusal)
                continue
            if resolved:
                changed[issue.id] = issue
                for duplicate in app.duplicates_follow(issue, loaded):
                    changed[duplicate.id] = duplicate
        if unknown and len(unknown) == len(verified.issue_ids):
            raise PolicyRefused(f"case {verified.case_id} covers no issue of intake: {unknown}")
        if unknown:
            log.warning("case %s covers unknown issues %s", verified.case_id, unknown)
        for aggregate in changed.values():
            processing.collect_events(aggregate)

    return apply


def _known_issue(app: IntakeApplication, issue_id: UUID) -> Issue | None:
    try:
        return app.get_issue(issue_id)
    except IssueNotFound:
        return None


def _issues_of_case(app: IntakeApplication, case_id: UUID) -> list[Issue]:
    return [app.get_issue(i) for i in app.catalog.issues_of_case(case_id)]
