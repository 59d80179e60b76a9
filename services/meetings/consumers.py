"""What meetings learns from intake (上游事件): which issues are consultation topics."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import ProcessingEvent

from services.meetings.application import MeetingsApplication
from services.meetings.bookings import AcceptedTopic
from shared.contracts import IssueReopenedV1, IssueScreenedV1
from shared.process import Policy, Upstream


def intake_policy(app: MeetingsApplication) -> Policy:
    """Keeps one `AcceptedTopic` per issue intake screened as `topic`.

    A topic decision creates it (or accepts it again); any other decision on the same issue,
    or its reopening, withdraws it until it is screened again. Meetings already holding it
    keep it on their agenda: what was consulted stays consulted.
    """

    def apply(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        event = upstream.event
        if isinstance(event, IssueScreenedV1):
            topic = app.accepted_topic(event.issue_id)
            if event.decision == "topic":
                if topic is None:
                    topic = AcceptedTopic.accept(
                        event.issue_id,
                        event.office,
                        event.title,
                        event.category,
                        event.key_problem,
                        event.screened_at,
                    )
                elif topic.accepted and topic.screened_at == event.screened_at:
                    return  # the same decision published again (e.g. after the dedupe window)
                else:
                    topic.accept_again(
                        event.title, event.category, event.key_problem, event.screened_at
                    )
            elif topic is not None and topic.accepted:
                topic.withdraw(f"screened {event.decision}", event.screened_at)
            else:
                return
            processing.collect_events(topic)
        elif isinstance(event, IssueReopenedV1):
            topic = app.accepted_topic(event.issue_id)
            if topic is not None and topic.accepted:
                topic.withdraw(f"reopened: {event.reason}", event.reopened_at)
                processing.collect_events(topic)

    return apply
