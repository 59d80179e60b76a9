"""The three streams may interleave in any order: the read model ends in the same state."""

from __future__ import annotations

import tempfile
from pathlib import Path

from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.projections.views import ProjectionView, open_projection_view
from shared.consumer import Delivered
from tests.support.history import STREAMS, history

Plan = list[tuple[str, int]]
"""(stream, how many of its next messages to apply in one batch)."""


def apply_plan(
    streams: dict[str, list[Delivered]], plan: Plan
) -> dict[str, list[tuple[object, ...]]]:
    with tempfile.TemporaryDirectory() as folder:
        view = open_projection_view(str(Path(folder) / "p.sqlite"))
        try:
            apply_in(view, streams, plan)
            return view.dump()
        finally:
            view.datastore.close()


def apply_in(view: ProjectionView, streams: dict[str, list[Delivered]], plan: Plan) -> None:
    taken = dict.fromkeys(streams, 0)
    for stream, count in plan:
        batch = streams[stream][taken[stream] : taken[stream] + count]
        if batch:
            taken[stream] += len(batch)
            view.apply(batch, Tracking(stream, batch[-1].position))
    for stream, messages in streams.items():  # whatever the plan left over, in order
        rest = messages[taken[stream] :]
        if rest:
            view.apply(rest, Tracking(stream, rest[-1].position))


def in_time_order(streams: dict[str, list[Delivered]]) -> Plan:
    """One message at a time, in the order the events happened across the services."""
    everything = sorted(
        (m.contract.occurred_at, stream)
        for stream, messages in streams.items()
        for m in messages
        if m.contract is not None
    )
    return [(stream, 1) for _, stream in everything]


plans = st.lists(st.tuples(st.sampled_from(STREAMS), st.integers(1, 6)), max_size=120)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(issues=st.integers(1, 24), seed=st.integers(0, 10_000), plan=plans)
def test_any_interleaving_of_the_streams_reaches_the_state_of_the_in_order_application(
    issues: int, seed: int, plan: Plan
) -> None:
    streams = history(issues, seed=seed, days=3)
    expected = apply_plan(streams, in_time_order(streams))

    assert apply_plan(streams, plan) == expected


def test_supervision_and_resolution_seen_before_the_issue_itself_end_the_same() -> None:
    streams = history(40, seed=7, days=3)
    backwards: Plan = [("SUPERVISION", 1000), ("MEETINGS", 1000), ("INTAKE", 1000)]

    expected = apply_plan(streams, in_time_order(streams))
    assert apply_plan(streams, backwards) == expected
    assert any(row[11] == "resolved" for row in expected["issue_status"])
    assert any(row[11] == "overdue" for row in expected["issue_status"])
