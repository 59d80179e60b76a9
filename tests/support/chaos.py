"""The chaos trials (随机杀进程): writes go on while a random process of the stack is
SIGKILLed, and every acknowledged write is then checked in its store, on its stream and in the
projections. `bench/chaos.py` runs a hundred of them on the embedded default and twenty on
the 3-node cluster with PostgreSQL (`--cluster`, tests/support/cluster.py: there a node or
PostgreSQL may be the process killed); `tests/e2e/test_chaos.py` runs a few.

Each trial: a client writes a realistic mix — issues with an Idempotency-Key, their
screenings, written consultations with the issues as topics, referral cases through letter,
acknowledgement, completion and verification — retrying each write with the same key until
it gets a 2xx, while one process (intake, meetings, supervision, projections or nats-server)
is SIGKILLed at a random moment, in some trials twice in a row. Once the launcher has
restarted it and the client is done, the trial checks every acknowledged write: its event is
in its store exactly once, on its stream exactly once, and counted once by projections (the
year's figures, and `shangliang projections check` exits 0). The stores are read where the
stack keeps them: its SQLite files, or its PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg.sql import SQL, Identifier

from shared.auth import Authenticator
from shared.messaging import connect
from shared.relay import POSITION_HEADER
from shared.settings import Settings
from shared.streams import STREAMS
from tests.support.cluster import cluster_stack
from tests.support.stack import ROOT, RunningStack, launch_stack, wait_ready
from tests.support.streams import read_stream
from tools.launcher import PASSWORDS_FILE, SERVICES, read_state

OFFICE = "yanji"
DEPARTMENT = "市住建局"
YEAR = 2020
TARGETS = (*(service.name for service in SERVICES), "nats-server")
"""Every process the launcher supervises (services added to its list are killed too)."""
WRITE_GIVE_UP_SECONDS = 120.0
"""A write still not acknowledged after this is reported as refused, not retried further."""
RECOVER_TIMEOUT_SECONDS = 120.0
QUIET_TIMEOUT_SECONDS = 120.0
APPLICATIONS = {"intake": "intake", "meetings": "meetings", "supervision": "supervision"}


@dataclass(frozen=True)
class Acknowledged:
    """A write the client got a 2xx for, and the one event it must have caused."""

    service: str
    aggregate_id: str
    store_topic: str
    """The stored event's topic ends with this, e.g. `:Issue.Submitted`."""
    stream_type: str
    """The published envelope's type ends with this, e.g. `.IssueSubmitted.v1`."""


@dataclass
class Tally:
    """What the year's figures must show for the office once projections caught up."""

    issues_collected: int = 0
    issues_resolved: int = 0
    letters_issued: int = 0

    def add(self, other: Tally) -> None:
        self.issues_collected += other.issues_collected
        self.issues_resolved += other.issues_resolved
        self.letters_issued += other.letters_issued


@dataclass
class TrialResult:
    number: int
    killed: list[str]
    writes: int = 0
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    recover_seconds: list[float] = field(default_factory=list)
    check_exit: int | None = None
    seconds: float = 0.0
    longest_wait: float = 0.0
    """The longest the writers went without any write acknowledged, while they wrote."""
    load: float = 0.0
    """The machine's load average (1 minute) when the trial ended."""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.refused) and self.check_exit == 0

    def line(self) -> str:
        recovered = ", ".join(f"{s:.1f}" for s in self.recover_seconds)
        return (
            f"trial {self.number:3d}: killed {'+'.join(self.killed):24} writes {self.writes:3d} "
            f"retries {self.retries:3d} lost {len(self.lost)} doubled {len(self.doubled)} "
            f"refused {len(self.refused)} check {self.check_exit} recover [{recovered}] s "
            f"no ack for {self.longest_wait:.1f} s ({self.seconds:.1f} s, load {self.load:.1f})"
        )


def issue_body(key: str) -> dict[str, Any]:
    return {
        "office": OFFICE,
        "title": "老旧小区加装电梯",
        "description": f"居民反映加装电梯进展缓慢（{key}）",
        "category": "城市管理",
        "submitted_at": f"{YEAR}-03-02T10:00:00+08:00",
    }


class Client:
    """An office's desks over HTTP: every write retried with the same key until a 2xx."""

    def __init__(self, stack: RunningStack, authenticator: Authenticator, run: str) -> None:
        self.stack = stack
        self.run = run
        self.http = httpx.AsyncClient(timeout=10.0)
        mint = authenticator.mint
        self.tokens = {
            role: mint(OFFICE, [role], subject=f"chaos-{role}")
            for role in ("clerk", "leader", "meetings", "supervisor", "viewer")
        }
        self.tokens["department"] = mint(
            OFFICE, ["department"], subject="chaos-department", department=DEPARTMENT
        )
        self.writes = 0
        self.retries = 0
        self.acknowledged_at: list[float] = []
        self.refused: list[str] = []

    async def close(self) -> None:
        await self.http.aclose()

    def url(self, service: str) -> str:
        return str(getattr(self.stack, service))

    async def attempt(
        self, service: str, path: str, role: str, key: str, body: dict[str, Any]
    ) -> httpx.Response:
        """One POST with the write's Idempotency-Key."""
        headers = {
            "Authorization": f"Bearer {self.tokens[role]}",
            "Idempotency-Key": f"chaos-{self.run}-{key}",
        }
        return await self.http.post(self.url(service) + path, json=body, headers=headers)

    async def write(
        self, service: str, path: str, role: str, key: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """POST until a 2xx (None if refused for good); a 409 is retried too while another
        service has not yet heard of the event this write depends on."""
        deadline = time.monotonic() + WRITE_GIVE_UP_SECONDS
        last = ""
        while time.monotonic() < deadline:
            try:
                response = await self.attempt(service, path, role, key, body)
            except httpx.HTTPError as error:
                last = repr(error)
            else:
                if response.is_success:
                    self.writes += 1
                    self.acknowledged_at.append(time.monotonic())
                    return dict(response.json())
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in (409, 502, 503, 504) and response.status_code < 500:
                    break
            self.retries += 1
            await asyncio.sleep(0.2)
        self.refused.append(f"{service} {path} [{key}]: {last}")
        return None

    async def case_of(self, issue_id: str) -> str | None:
        """The referral case supervision opened for an issue, once it has heard of it."""
        headers = {"Authorization": f"Bearer {self.tokens['supervisor']}"}
        deadline = time.monotonic() + WRITE_GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                response = await self.http.get(
                    self.url("supervision") + "/cases",
                    params={"issue_id": issue_id},
                    headers=headers,
                )
                if response.is_success and response.json()["total"]:
                    return str(response.json()["items"][0]["id"])
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        self.refused.append(f"supervision opened no case for issue {issue_id}")
        return None

    async def unit(self, key: str, kind: str) -> tuple[list[Acknowledged], Tally]:
        """One issue's life: answered on the spot, referred and supervised to verification,
        or put on a written consultation as a topic."""
        acks: list[Acknowledged] = []
        tally = Tally()
        issue = await self.write("intake", "/issues", "clerk", f"{key}-issue", issue_body(key))
        if issue is None:
            return acks, tally
        issue_id = str(issue["id"])
        acks.append(Acknowledged("intake", issue_id, ":Issue.Submitted", ".IssueSubmitted.v1"))
        tally.issues_collected += 1
        screening: dict[str, Any] = {
            "decision": kind,
            "screened_at": f"{YEAR}-03-05T09:00:00+08:00",
        }
        if kind == "answered":
            screening["answer"] = "已当场答复居民"
        elif kind == "refer":
            screening |= {"department": DEPARTMENT, "deadline": f"{YEAR}-12-31"}
        screened = await self.write(
            "intake", f"/issues/{issue_id}/screening", "leader", f"{key}-screening", screening
        )
        if screened is None:
            return acks, tally
        acks.append(Acknowledged("intake", issue_id, ":Issue.Screened", ".IssueScreened.v1"))
        if kind == "answered":
            tally.issues_resolved += 1
        elif kind == "topic":
            await self.consult(key, issue_id, acks)
        else:
            await self.supervise(key, issue_id, acks, tally)
        return acks, tally

    async def consult(self, key: str, issue_id: str, acks: list[Acknowledged]) -> None:
        meeting = await self.write(
            "meetings",
            "/meetings",
            "meetings",
            f"{key}-meeting",
            {
                "office": OFFICE,
                "kind": "written",
                "title": "加装电梯书面协商",
                "theme": "老旧小区加装电梯",
                "starts_at": f"{YEAR}-05-01T09:00:00+08:00",
                "ends_at": f"{YEAR}-05-10T17:00:00+08:00",
                "submission_deadline": f"{YEAR}-05-10T17:00:00+08:00",
                "planned_at": f"{YEAR}-04-20T09:00:00+08:00",
            },
        )
        if meeting is None:
            return
        meeting_id = str(meeting["id"])
        acks.append(Acknowledged("meetings", meeting_id, ":Meeting.Planned", ".MeetingPlanned.v1"))
        added = await self.write(
            "meetings",
            f"/meetings/{meeting_id}/topics",
            "meetings",
            f"{key}-topic",
            {"issue_id": issue_id, "added_at": f"{YEAR}-04-21T09:00:00+08:00"},
        )
        if added is not None:
            acks.append(
                Acknowledged("meetings", meeting_id, ":Meeting.TopicAdded", ".TopicAdded.v1")
            )

    async def supervise(
        self, key: str, issue_id: str, acks: list[Acknowledged], tally: Tally
    ) -> None:
        case_id = await self.case_of(issue_id)
        if case_id is None:
            return
        acks.append(
            Acknowledged("supervision", case_id, ":SupervisionCase.Opened", ".CaseOpened.v1")
        )
        at = f"{YEAR}-03-10T09:00:00+08:00"
        steps = [
            ("letters", "supervisor",
             {"requirements": "按期整改", "deadline": f"{YEAR}-12-31", "issued_at": at},
             ":SupervisionCase.LetterIssued", ".LetterIssued.v1"),
            ("acknowledgement", "department", {"acknowledged_at": f"{YEAR}-03-12T09:00+08:00"},
             ":SupervisionCase.Acknowledged", ".CaseAcknowledged.v1"),
            ("completion", "department", {"note": "已完成", "reported_at": f"{YEAR}-04-01"},
             ":SupervisionCase.CompletionReported", ".CompletionReported.v1"),
            ("verification", "supervisor", {"verified_at": f"{YEAR}-04-05T09:00+08:00"},
             ":SupervisionCase.Verified", ".CaseVerified.v1"),
        ]  # fmt: skip
        for step, role, body, topic, kind in steps:
            done = await self.write(
                "supervision", f"/cases/{case_id}/{step}", role, f"{key}-{step}", body
            )
            if done is None:
                return
            acks.append(Acknowledged("supervision", case_id, topic, kind))
            if step == "letters":
                tally.letters_issued += 1
        # Intake resolves the issue from the verified case, by itself.
        acks.append(Acknowledged("intake", issue_id, ":Issue.Resolved", ".IssueResolved.v1"))
        tally.issues_resolved += 1


class Killer:
    """SIGKILLs the stack's processes by the pids its launcher publishes, and times how long
    the launcher takes to have each running (ready) again."""

    def __init__(self, stack: RunningStack, timeout: float = RECOVER_TIMEOUT_SECONDS) -> None:
        self.stack = stack
        self.data_dir = stack.data_dir
        self.timeout = timeout

    def child(self, name: str) -> dict[str, Any]:
        state = read_state(self.data_dir)
        assert state is not None, "the launcher publishes its state"
        return next(c for c in state["children"] if c["name"] == name)  # type: ignore[union-attr]

    def kill(self, name: str) -> float:
        """Kill `name`'s current process (waiting until it has one); when it was killed."""
        deadline = time.monotonic() + self.timeout
        while (pid := self.child(name)["pid"]) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} was not restarted within {self.timeout}s")
            time.sleep(0.05)
        os.kill(int(pid), signal.SIGKILL)
        return time.monotonic()

    def recovered(self, name: str, restarts: int, since: float) -> float:
        """Seconds from `since` until `name` is running after its `restarts`-th restart."""
        deadline = since + self.timeout
        while time.monotonic() < deadline:
            child = self.child(name)
            if child["state"] == "running" and child["restarts"] >= restarts:
                return time.monotonic() - since
            time.sleep(0.05)
        raise TimeoutError(f"{name} not running again within {self.timeout}s")


STREAM_TARGETS = ("delete INTAKE", "purge MEETINGS", "delete SUPERVISION", "purge INTAKE")
"""What a stream trial does to a stream mid-load (as NATS's admin)."""
STREAM_HEAL_SECONDS = 60.0


async def break_stream(stack: RunningStack, what: str) -> float:
    """Delete or purge a stream; seconds until it again starts with the first stored event
    it held before (its relay republished from the store) and holds at least as many."""
    action, stream = what.split()
    passwords = json.loads((stack.data_dir / PASSWORDS_FILE).read_text())
    nc = await connect(stack.nats_url, "chaos-streams", "admin", passwords["admin"])
    try:
        js = nc.jetstream()
        before, first = await first_position(js, stream)
        if action == "delete":
            await js.delete_stream(stream)
        else:
            await js.purge_stream(stream)
        since = time.monotonic()
        while time.monotonic() - since < STREAM_HEAL_SECONDS:
            with contextlib.suppress(NotFoundError):
                messages, now_first = await first_position(js, stream)
                # Whole again: it starts no later than before (at once if it was empty).
                starts = first is None or (now_first is not None and now_first <= first)
                if messages >= before and starts:
                    return time.monotonic() - since
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{what}: not refilled from the store within {STREAM_HEAL_SECONDS}s")
    finally:
        await nc.close()


async def first_position(js: JetStreamContext, stream: str) -> tuple[int, int | None]:
    """How many messages a stream holds, and the store position of its first one."""
    state = (await js.stream_info(stream)).state
    if not state.messages:
        return 0, None
    first = await js.get_msg(stream, seq=state.first_seq)
    return state.messages, int((first.headers or {})[POSITION_HEADER])


async def chaos(killer: Killer, rng: random.Random, result: TrialResult, window: float) -> None:
    """Kill a random target at a random moment within `window`, sometimes twice in a row;
    or delete or purge a stream."""
    for n, name in enumerate(result.killed):
        await asyncio.sleep(rng.uniform(0.1, window) if n == 0 else rng.uniform(0.0, 1.5))
        if name in STREAM_TARGETS:
            try:
                result.recover_seconds.append(await break_stream(killer.stack, name))
            except TimeoutError as error:
                result.lost.append(str(error))
            continue
        restarts = int(killer.child(name)["restarts"]) + 1
        killed_at = await asyncio.to_thread(killer.kill, name)
        seconds = await asyncio.to_thread(killer.recovered, name, restarts, killed_at)
        result.recover_seconds.append(seconds)


@dataclass(frozen=True)
class Pace:
    """How a trial is timed: the first kill at a random moment within `window` seconds of
    its start, the writers going on until the kills are recovered from and for at least
    `least_seconds`."""

    window: float = 2.0
    least_seconds: float = 0.0


async def trial(
    stack: RunningStack,
    client: Client,
    killer: Killer,
    rng: random.Random,
    number: int,
    workers: int,
    tally: Tally,
    kills: list[str] | None = None,
    pace: Pace = Pace(),
) -> TrialResult:
    """One trial: `kills` names what to kill (default: a random target, in some trials
    twice in a row)."""
    if kills is None:
        kills = [rng.choice(TARGETS)] * (2 if rng.random() < 0.3 else 1)
    result = TrialResult(number, kills)
    started = time.monotonic()
    writes, retries, refused = client.writes, client.retries, len(client.refused)
    acknowledged = len(client.acknowledged_at)
    killing = asyncio.create_task(chaos(killer, rng, result, window=pace.window))

    def writing() -> bool:
        return not killing.done() or time.monotonic() - started < pace.least_seconds

    async def worker(w: int) -> list[tuple[list[Acknowledged], Tally]]:
        """Issues' lives one after another until the kills are over and recovered from."""
        done = []
        n = 0
        while n == 0 or writing():
            kind = rng.choice(("answered", "refer", "topic"))
            done.append(await client.unit(f"t{number}-w{w}-u{n}", kind))
            n += 1
        return done

    lives = await asyncio.gather(*(worker(w) for w in range(workers)))
    await killing
    moments = [started, *client.acknowledged_at[acknowledged:], time.monotonic()]
    result.longest_wait = max(b - a for a, b in pairwise(moments))
    done = [life for each in lives for life in each]
    acks = [ack for unit_acks, _ in done for ack in unit_acks]
    for _, unit_tally in done:
        tally.add(unit_tally)
    result.writes = client.writes - writes
    result.retries = client.retries - retries
    result.refused = client.refused[refused:]
    await verify(stack, client, acks, tally, result)
    result.seconds = time.monotonic() - started
    result.load = os.getloadavg()[0]
    return result


# --- the checks, once quiet ----------------------------------------------------------------------


def store_environment(stack: RunningStack) -> dict[str, str]:
    """Where the stack's stores are when they are not files in its data folder: the settings
    an operator gives the CLI as well (none for the embedded default)."""
    return {
        k: v
        for k, v in stack.environment.items()
        if k in ("SHANGLIANG_EVENT_STORE", "SHANGLIANG_PROJECTION_STORE")
        or k.startswith("SHANGLIANG_POSTGRES_")
    }


def store_counts(stack: RunningStack, service: str, ids: set[str]) -> Counter[tuple[str, str]]:
    """(aggregate id, topic) of every stored event of those aggregates, counted."""
    env = stack.environment
    if env.get("SHANGLIANG_EVENT_STORE") == "postgres":
        with psycopg.connect(
            host=env["SHANGLIANG_POSTGRES_HOST"],
            port=env["SHANGLIANG_POSTGRES_PORT"],
            user=env["SHANGLIANG_POSTGRES_USER"],
            password=env.get("SHANGLIANG_POSTGRES_PASSWORD") or None,
            dbname=env["SHANGLIANG_POSTGRES_DBNAME"],
        ) as db:
            # The library's tables are named after the application, in the configured schema.
            table = Identifier(env.get("SHANGLIANG_POSTGRES_SCHEMA", "public"), f"{service}_events")
            found = db.execute(
                SQL("SELECT originator_id, topic FROM {0} WHERE originator_id = ANY(%s)").format(
                    table
                ),
                ([uuid.UUID(i) for i in ids],),
            ).fetchall()
        return Counter((str(o), str(t)) for o, t in found)
    path = stack.data_dir / f"{APPLICATIONS[service]}.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT originator_id, topic FROM stored_events WHERE originator_id IN ({marks})",
            # eventsourcing keeps a UUID as its 32 hex digits.
            [uuid.UUID(i).hex for i in ids],
        ).fetchall()
    db.close()
    return Counter((str(uuid.UUID(str(o))), str(t)) for o, t in rows)


async def stream_envelopes(stack: RunningStack) -> dict[str, list[dict[str, Any]]]:
    """Every envelope each service's stream holds now (as the admin user)."""
    passwords = json.loads((stack.data_dir / PASSWORDS_FILE).read_text())
    nc = await connect(stack.nats_url, "chaos-check", "admin", passwords["admin"])
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        js = nc.jetstream()
        for spec in STREAMS:
            found[spec.service] = [json.loads(m.data) for m in await read_stream(js, spec, 60)]
    finally:
        await nc.close()
    return found


async def figures(client: Client) -> dict[str, Any]:
    response = await client.http.get(
        client.url("projections") + f"/statistics/{YEAR}",
        params={"office": OFFICE},
        headers={"Authorization": f"Bearer {client.tokens['viewer']}"},
    )
    response.raise_for_status()
    return dict(response.json()["total"])


async def verify(
    stack: RunningStack,
    client: Client,
    acks: list[Acknowledged],
    tally: Tally,
    result: TrialResult,
) -> None:
    # Published: once on its stream, and no event (envelope id) twice anywhere. The events
    # that other services cause (a case opened, an issue resolved) may still be on their way.
    deadline = time.monotonic() + QUIET_TIMEOUT_SECONDS
    while True:
        envelopes = await stream_envelopes(stack)
        published = Counter(
            (e["subject"], e["type"]) for found in envelopes.values() for e in found
        )
        missing = []
        for ack in acks:
            n = published[(ack.aggregate_id, f"shangliang.{ack.service}{ack.stream_type}")]
            if n != 1:
                missing.append((ack, n))
        if not any(n == 0 for _, n in missing) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for ack, n in missing:
        (result.lost if n == 0 else result.doubled).append(f"stream {ack} ×{n}")
    for service, found in envelopes.items():
        for envelope_id, n in Counter(e["id"] for e in found).items():
            if n > 1:
                result.doubled.append(f"stream {service} envelope {envelope_id} ×{n}")
    # Stored: each acknowledged write's event exactly once in its service's store (looked
    # at once its stream has it: then the store has it for good).
    for service in APPLICATIONS:
        mine = [a for a in acks if a.service == service]
        if not mine:
            continue
        counted = store_counts(stack, service, {a.aggregate_id for a in mine})
        for ack in mine:
            n = sum(
                c
                for (o, t), c in counted.items()
                if o == ack.aggregate_id and t.endswith(ack.store_topic)
            )
            if n != 1:
                (result.lost if n == 0 else result.doubled).append(f"store {ack} ×{n}")
    # Counted: the year's figures for the office, once projections caught up.
    wanted = {
        "issues_collected": tally.issues_collected,
        "issues_resolved": tally.issues_resolved,
        "letters_issued": tally.letters_issued,
    }
    deadline = time.monotonic() + QUIET_TIMEOUT_SECONDS
    while True:
        try:
            shown = {k: (await figures(client))[k] for k in wanted}
        except httpx.HTTPError:
            shown = {}
        if shown == wanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    for name, count in wanted.items():
        seen = shown.get(name, 0)
        if seen < count:
            result.lost.append(f"projections {name} {seen} < {count}")
        elif seen > count:
            result.doubled.append(f"projections {name} {seen} > {count}")
    result.check_exit = await asyncio.to_thread(projections_check, stack)


def projections_check(stack: RunningStack) -> int:
    """`shangliang projections check` as an operator types it: the data folder named (it finds
    the stack's NATS from there), and the stores when they are not in it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHANGLIANG_")}
    environment["SHANGLIANG_DATA_DIR"] = str(stack.data_dir)
    environment |= store_environment(stack)
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "projections", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr, flush=True)
    return done.returncode


# --- the run -------------------------------------------------------------------------------------


NO_PERIODIC_SCAN = {"SHANGLIANG_SUPERVISION_SCAN_INTERVAL_SECONDS": "86400"}
"""Supervision's periodic deadline scan out of the way: the trials' 2020 deadlines would all
fall due at once."""


def cluster_trial_stack(folder: Path) -> AbstractContextManager[RunningStack]:
    """The 3-node cluster with PostgreSQL (tests/support/cluster.py), without the periodic
    scan."""
    return cluster_stack(folder, NO_PERIODIC_SCAN)


@contextmanager
def embedded_stack(folder: Path) -> Iterator[RunningStack]:
    """`shangliang up`, without the periodic scan."""
    folder.mkdir(parents=True, exist_ok=True)
    stack = launch_stack(folder, NO_PERIODIC_SCAN)
    try:
        wait_ready(stack, timeout=120)
        yield stack
    finally:
        stack.process.send_signal(signal.SIGTERM)
        try:
            stack.process.wait(30)
        except subprocess.TimeoutExpired:
            stack.process.kill()


async def run_trials(
    stack: RunningStack,
    trials: int,
    workers: int,
    seed: int,
    say: Callable[[str], None] = print,
    plan: Sequence[list[str]] = (),
    recover_timeout: float = RECOVER_TIMEOUT_SECONDS,
    pace: Pace = Pace(),
) -> list[TrialResult]:
    """`plan`: what the first trials kill, in order (the rest choose at random)."""
    rng = random.Random(seed)
    client = Client(stack, Authenticator(Settings()), run=f"{seed}-{uuid.uuid4().hex[:6]}")
    killer = Killer(stack, recover_timeout)
    tally = Tally()
    results = []
    try:
        for number in range(1, trials + 1):
            kills = plan[number - 1] if number <= len(plan) else None
            results.append(
                await trial(stack, client, killer, rng, number, workers, tally, kills, pace)
            )
            say(results[-1].line())
            for problem in [*results[-1].lost, *results[-1].doubled, *results[-1].refused]:
                say(f"    {problem}")
    finally:
        await client.close()
    return results


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(results: list[TrialResult]) -> str:
    recovered = [s for r in results for s in r.recover_seconds]
    killed = Counter(name for r in results for name in r.killed)
    return (
        f"{len(results)} trials, {sum(len(r.killed) for r in results)} kills "
        f"({', '.join(f'{k} {v}' for k, v in sorted(killed.items()))}), "
        f"{sum(r.writes for r in results)} acknowledged writes, "
        f"{sum(r.retries for r in results)} retries; lost {sum(len(r.lost) for r in results)}, "
        f"doubled {sum(len(r.doubled) for r in results)}, "
        f"refused {sum(len(r.refused) for r in results)}, "
        f"check failed {sum(r.check_exit != 0 for r in results)}; time to recover "
        f"p50 {percentile(recovered, 50):.1f} s, p99 {percentile(recovered, 99):.1f} s, "
        f"max {max(recovered):.1f} s; no acknowledgement for at most "
        f"{max(r.longest_wait for r in results):.1f} s"
    )


def by_target(results: list[TrialResult]) -> list[str]:
    """A line per process killed: kills, trials that killed it twice, time to recover
    (min–max, p50), the longest wait for an acknowledgement in its trials."""
    lines = []
    for name in sorted({n for r in results for n in r.killed}):
        mine = [r for r in results if name in r.killed]
        recovered = [s for r in mine for s in r.recover_seconds] or [float("nan")]
        lines.append(
            f"{name}: {sum(r.killed.count(name) for r in mine)} kills, "
            f"{sum(len(r.killed) > 1 for r in mine)} twice in a row, recovered in "
            f"{min(recovered):.1f}–{max(recovered):.1f} s (p50 {percentile(recovered, 50):.1f}), "
            f"no acknowledgement for at most {max(r.longest_wait for r in mine):.1f} s"
        )
    return lines
