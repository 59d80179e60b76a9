"""Audit (审计留痕): each stored event names who caused it, also when group commit writes the
events of many requests together, and events stored before auditing still load."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application

from services.intake.application import IntakeApplication
from services.intake.domain import Issue, issue_id_for
from shared.audit import acting, system_actor
from shared.auth import Principal, require_role
from shared.contracts import Actor
from shared.observability import request_id
from tests.conftest import acting_as

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
SUBMITTED = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)


def new_issue(key: str) -> Issue:
    return Issue.submit(
        issue_id_for("yanji", key),
        "yanji",
        f"问题 {key}",
        "描述",
        "城市管理",
        SUBMITTED,
        now=SUBMITTED,
        reporter_name="李明",
    )


def as_request(actor: Actor) -> contextvars.Context:
    """The context a request handler runs in once its token and role were checked."""
    context = contextvars.copy_context()
    context.run(acting.set, actor)
    return context


def actors(app: IntakeApplication, issue_id: UUID) -> list[Actor | None]:
    return [entry.actor for entry in app.audit_trail(issue_id, personal=False)]


async def test_two_requests_saved_in_one_group_commit_each_keep_their_own_actor() -> None:
    app = IntakeApplication(env=IN_MEMORY)
    transactions: list[int] = []
    app.saved_listeners.append(lambda: transactions.append(1))
    clerk = Actor(subject="clerk-li", office="yanji", role="clerk", roles=["clerk"], request_id="1")
    other = Actor(subject="clerk-jin", office="yanji", role="clerk", roles=["clerk", "leader"])
    first, second = new_issue("a"), new_issue("b")
    # Both requests hand their events over before the writer runs, so they share a batch.
    saves = [
        asyncio.create_task(app.group_commit.save(first), context=as_request(clerk)),
        asyncio.create_task(app.group_commit.save(second), context=as_request(other)),
    ]
    await asyncio.sleep(0)
    # The writer acting as someone else must not matter: the actor is read at command time.
    with acting_as(system_actor("writer")):
        writer = asyncio.create_task(app.group_commit.run())
    try:
        await asyncio.wait_for(asyncio.gather(*saves), 5)
    finally:
        writer.cancel()

    assert transactions == [1]
    assert actors(app, first.id) == [clerk]
    assert actors(app, second.id) == [other]


async def test_a_command_without_an_actor_stores_the_event_as_before(
    intake: IntakeApplication,
) -> None:
    issue, _ = await intake.submit_issue("yanji", "路灯损坏", "路灯不亮", "城市管理", SUBMITTED)
    assert actors(intake, issue.id) == [None]
    assert intake.get_issue(issue.id).title == "路灯损坏"


async def test_events_stored_before_auditing_load_and_show_who_as_unknown(
    tmp_path: Path,
) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "i.db")}
    before = Application[UUID](env=dict(env))  # the library's own mapper, as before auditing
    old = new_issue("old")
    before.save(old)
    before.close()

    app = IntakeApplication(env=dict(env))
    writer = asyncio.create_task(app.group_commit.run())
    leader = Actor(subject="leader-wang", office="yanji", role="leader", roles=["leader"])
    try:
        with acting_as(leader):
            await app.screen_issue(
                old.id, "rejected", "leader-wang", SUBMITTED, reason="不属于政协职责"
            )
        trail = app.audit_trail(old.id, personal=True)
        assert [(e.event, e.version, e.actor) for e in trail] == [
            ("Submitted", 1, None),
            ("Screened", 2, leader),
        ]
        assert trail[0].data["reporter_name"] == "李明"
        assert "reporter_name" not in app.audit_trail(old.id, personal=False)[0].data
        assert app.get_issue(old.id).status == "rejected"
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        app.close()


def test_the_actor_names_the_role_the_command_required_or_the_tokens_only_role() -> None:
    both = Principal(subject="wang", office="yanji", roles=frozenset({"clerk", "leader"}))
    clerk = Principal(subject="li", office="yanji", roles=frozenset({"clerk"}))

    def checked(principal: Principal, role: str | None) -> Actor | None:
        """As in a handler: the token checked, maybe a role required, in a request."""
        request_id.set("r-9")
        acting.set(principal.actor())
        if role is not None:
            require_role(principal, role)
        return acting.get()

    assert contextvars.copy_context().run(checked, both, None) == Actor(
        subject="wang", office="yanji", roles=["clerk", "leader"], request_id="r-9"
    )
    assert contextvars.copy_context().run(checked, both, "leader").role == "leader"  # type: ignore[union-attr]
    assert contextvars.copy_context().run(checked, clerk, None).role == "clerk"  # type: ignore[union-attr]
