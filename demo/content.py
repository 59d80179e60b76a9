"""The words of the 2020 scenario (情景素材): places, people, departments, issue templates,
meetings and the report's figures, read from the data files in `demo/data/` (its README says
what each holds).

Street and community names of Yanji follow the city's divisions (进学、北山、新兴 as listed in
public gazetteers; 公园、河南、建工 and the towns plausibly named); the rest is invented.

The data lives beside the code in a checkout of the repository; the wheel carries none, so
an installed package reads nothing here and `content()` says so.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from demo.records import Kind
from shared.clock import CHINA

DATA = Path(__file__).resolve().parent / "data"
FILES = ("report", "places", "people", "departments", "issues", "meetings", "phrases")


class DemoDataMissing(Exception):
    """The demo's data files are not there (an installed wheel carries none) or do not hold
    what the demo needs; the message is meant for the user."""


@dataclass(frozen=True)
class Problem:
    """A kind of issue residents raise: how it is written down and who must act on it."""

    subject: str
    detail: str
    impact: str
    suggestion: str
    department: str
    answer: str
    place: str = "{home}"
    """Where it is: `{home}` and `{street}` follow the community; others name the place."""


@dataclass(frozen=True)
class MeetingPlan:
    key: str
    office: str
    joint_offices: tuple[str, ...]
    kind: Kind
    category: str
    title: str
    theme: str
    planned: date
    starts: datetime
    ends: datetime
    venue: str | None
    outcome_sizes: tuple[int, ...]
    places: tuple[str, ...] = ()
    """Only problems at these places (e.g. 帽儿山) make its topics."""
    open_deadline: date | None = None
    """The last outcome stays unfinished with this deadline (in 2020: overdue)."""
    postponed_from: tuple[datetime, datetime] | None = None
    postponement_reason: str | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None


@dataclass(frozen=True)
class Content:
    """Everything the scenario is made of that is not the generator's own logic."""

    prefecture: str
    city: str
    members: dict[str, int]
    """Members (政协委员) per office."""
    activities: dict[str, int]
    """Outreach activities (委员进基层活动) per office."""
    targets: dict[str, int]
    """The exact numbers behind the report's figures (23 期, 1100 余人次, 300 余个, 120 余件, …)."""
    street_communities: dict[str, tuple[str, ...]]
    """70 communities (社区) of Yanji, by street or town: the streets first."""
    streets: tuple[str, ...]
    towns: tuple[str, ...]
    extra_group_community: str
    """The community that has a second activity group (141 groups for 70 communities)."""
    areas: tuple[str, ...]
    """The 12 places with a liaison station (政协委员联络站): two zones, six streets, four towns."""
    venues: dict[str, str]
    """Venue → address."""
    homes: tuple[str, ...]
    street_places: tuple[str, ...]
    schools: tuple[str, ...]
    surnames: str
    given: str
    resident_titles: tuple[str, ...]
    phone_prefixes: tuple[str, ...]
    departments: tuple[str, ...]
    """Responsible departments (承办单位)."""
    workbench_department: str
    """The department of the demo's department account on the workbench."""
    categories: tuple[str, ...]
    problems: dict[str, tuple[Problem, ...]]
    issue_leads: dict[str, str]
    rejection_reasons: tuple[str, ...]
    follow_up_notes: dict[str, str]
    callback_notes: dict[str | None, str]
    """By satisfaction; None: the resident was not reached."""
    meeting_plans: tuple[MeetingPlan, ...]
    phrases: dict[str, str]

    @property
    def offices(self) -> tuple[str, str]:
        return self.prefecture, self.city

    def station_of(self, area: str) -> str:
        return self.say("liaison_station", area=area)

    def say(self, phrase: str, **values: object) -> str:
        """A phrase of `phrases.json`, its `{names}` filled in."""
        return self.phrases[phrase].format(**values)


def _local(text: str) -> datetime:
    """A time as the data writes it, `YYYY-MM-DD HH:MM` in China Standard Time."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA)


def _read(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise DemoDataMissing(
            f"找不到演示数据 {folder}：演示只能在代码仓库的检出目录中运行，"
            "安装包（wheel）不含演示数据 / "
            f"the demo's data is not here ({folder}): the demo runs from a checkout of the "
            "repository, an installed wheel carries no demo data"
        )
    files = {}
    for name in FILES:
        path = folder / f"{name}.json"
        try:
            files[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DemoDataMissing(
                f"缺少演示数据文件 {path} / a data file of the demo is missing: {path}"
            ) from None
        except (OSError, ValueError) as error:
            raise DemoDataMissing(
                f"无法读取演示数据文件 {path} / cannot read the demo's data file {path}: {error}"
            ) from None
    return files


def _content(files: dict[str, Any]) -> Content:
    report, places, people = files["report"], files["places"], files["people"]
    issues, meetings = files["issues"], files["meetings"]
    offices = report["offices"]
    departments: dict[str, str] = files["departments"]["responsible"]
    venues = {v["name"]: v["address"] for v in places["venues"]}
    problems = {
        category: tuple(
            Problem(**{**p, "department": departments[p["department"]]}) for p in listed
        )
        for category, listed in issues["problems"].items()
    }
    plans = []
    for plan in meetings["plans"]:
        if plan["venue"] is not None and plan["venue"] not in venues:
            raise KeyError(f"venue {plan['venue']} of meeting {plan['key']}")
        postponed = plan.get("postponed_from")
        cancelled = plan.get("cancelled")
        plans.append(
            MeetingPlan(
                key=plan["key"],
                office=plan["office"],
                joint_offices=tuple(plan["joint_offices"]),
                kind=plan["kind"],
                category=plan["category"],
                title=plan["title"],
                theme=plan["theme"],
                planned=date.fromisoformat(plan["planned"]),
                starts=_local(plan["starts"]),
                ends=_local(plan["ends"]),
                venue=plan["venue"],
                outcome_sizes=tuple(plan["outcome_sizes"]),
                places=tuple(plan.get("places", ())),
                open_deadline=date.fromisoformat(plan["open_deadline"])
                if "open_deadline" in plan
                else None,
                postponed_from=(_local(postponed["starts"]), _local(postponed["ends"]))
                if postponed
                else None,
                postponement_reason=postponed["reason"] if postponed else None,
                cancelled_at=_local(cancelled["at"]) if cancelled else None,
                cancellation_reason=cancelled["reason"] if cancelled else None,
            )
        )
    communities = {**places["streets"], **places["towns"]}
    return Content(
        prefecture=offices["prefecture"]["office"],
        city=offices["city"]["office"],
        members={o["office"]: o["members"] for o in offices.values()},
        activities={o["office"]: o["activities"] for o in offices.values()},
        targets=dict(report["targets"]),
        street_communities={area: tuple(names) for area, names in communities.items()},
        streets=tuple(places["streets"]),
        towns=tuple(places["towns"]),
        extra_group_community=places["extra_group_community"],
        areas=tuple(places["liaison_station_areas"]),
        venues=venues,
        homes=tuple(places["homes"]),
        street_places=tuple(places["street_places"]),
        schools=tuple(places["schools"]),
        surnames=people["surnames"],
        given=people["given_name_characters"],
        resident_titles=tuple(people["resident_titles"]),
        phone_prefixes=tuple(people["phone_prefixes"]),
        departments=tuple(departments.values()),
        workbench_department=departments[files["departments"]["workbench_account"]],
        categories=tuple(problems),
        problems=problems,
        issue_leads=dict(issues["leads"]),
        rejection_reasons=tuple(issues["rejection_reasons"]),
        follow_up_notes=dict(files["phrases"]["follow_up_notes"]),
        callback_notes={
            (None if k == "unreached" else k): v for k, v in issues["callback_notes"].items()
        },
        meeting_plans=tuple(plans),
        phrases={k: v for k, v in files["phrases"].items() if isinstance(v, str)},
    )


def content(folder: Path | None = None) -> Content:
    """The scenario's content from the data files in `folder` (by default `demo/data/` beside
    this module); `DemoDataMissing` if they are not there or do not hold what the demo needs."""
    return _content_of(folder or DATA)


@functools.cache
def _content_of(folder: Path) -> Content:
    files = _read(folder)
    try:
        return _content(files)
    except (KeyError, TypeError, ValueError) as error:
        raise DemoDataMissing(
            f"演示数据不完整 {folder} / the demo's data in {folder} is incomplete: {error!r}"
        ) from None
