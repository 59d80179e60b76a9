"""What supervision learns from meetings and intake (上游事件): the outcomes and referrals that
open cases, and the unsatisfied follow-up calls that send cases back."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from services.supervision.application import CaseNotFound, SupervisionApplication
from services.supervision.domain import (
    SupervisionCase,
    case_id_for_outcome,
    case_id_for_referral,
)
from shared.clock import add_working_days, china_day
from shared.contracts import IssueCallbackRecordedV1, IssueScreenedV1, MeetingConcludedV1
from shared.process import Policy, PolicyRefused, Upstream


def upstream_policy(app: SupervisionApplication) -> Policy:
    """The policy over MEETINGS and INTAKE: each outcome and each `refer` opens one case; an
    unsatisfied follow-up call (回访不满意) sends back the cases that had resolved the issue."""

    def apply(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        event = upstream.event
        if isinstance(event, MeetingConcludedV1):
            if not event.offices:
                raise PolicyRefused(f"meeting {event.meeting_id} names no office")
            for outcome in event.outcomes:
                _open(
                    app,
                    processing,
                    case_id_for_outcome(outcome.outcome_id),
                    office=event.offices[0],
                    origin="outcome",
                    meeting_id=event.meeting_id,
                    outcome_id=outcome.outcome_id,
                    issue_ids=list(outcome.issue_ids),
                    department=outcome.department,
                    deadline=outcome.deadline,
                    requirements=outcome.recommendation,
                    opened_at=event.concluded_at,
                    meeting_title=event.title,
                )
        elif isinstance(event, IssueCallbackRecordedV1) and event.satisfaction == "unsatisfied":
            _send_back_after_callback(app, processing, event)
        elif isinstance(event, IssueScreenedV1) and event.decision == "refer":
            if not event.department:
                raise PolicyRefused(f"referral of issue {event.issue_id} names no department")
            deadline = event.deadline or add_working_days(
                china_day(event.screened_at), app.config.referral_working_days, approximate=True
            )
            _open(
                app,
                processing,
                case_id_for_referral(event.issue_id, upstream.envelope.id),
                office=event.office,
                origin="referral",
                meeting_id=None,
                outcome_id=None,
                issue_ids=[event.issue_id],
                department=event.department,
                deadline=deadline,
                requirements=event.title,
                opened_at=event.screened_at,
            )

    return apply


def _send_back_after_callback(
    app: SupervisionApplication, processing: ProcessingEvent[UUID], event: IssueCallbackRecordedV1
) -> None:
    """The cases that had resolved an issue its resident is unsatisfied with go back."""
    deadline = add_working_days(
        china_day(event.called_at), app.config.referral_working_days, approximate=True
    )
    for case_id in event.reopened_cases:
        try:
            case = app.get_case(case_id)
        except CaseNotFound:
            continue
        reason = "居民回访不满意 / the resident was not satisfied when called back"
        ladder = app.config.ladder(case.office, app.prefecture)
        if case.reopen_after_callback(reason, deadline, event.called_at, ladder):
            processing.collect_events(case)


def _open(
    app: SupervisionApplication, processing: ProcessingEvent[UUID], case_id: UUID, **fields: Any
) -> None:
    # A conclusion received again (a restarted relay publishes it at a new position) finds
    # its cases stored; a replica opening the same case at once collides on the id.
    if case_id in app.repository or case_id in {e.originator_id for e in processing.events}:
        return
    processing.collect_events(SupervisionCase(id=case_id, **fields))
