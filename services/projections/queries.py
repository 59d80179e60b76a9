"""Questions the dashboards ask of the view (查询): issue lists, yearly figures, drill-downs."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.projections.derive import (
    CALLBACK_FIGURES,
    DERIVE,
    STATUS_LABELS,
    Derived,
    days_between,
    derive_issue,
)
from services.projections.facts import ACTIVITY, CASE, ISSUE, MEETING, TOTAL, Fact
from services.projections.views import (
    FACT_COLUMNS,
    ProjectionView,
    by_office,
    difference,
    fact_of,
)
from shared.views import sends_sql

FIGURES = (
    "outreach_activities",
    "member_participations",
    "issues_collected",
    "issues_resolved",
    "meetings_held",
    "key_problems_resolved",
    "reports_forwarded",
    "letters_issued",
    "cases_overdue",
    "cases_reopened_by_callback",
    "median_days_to_resolution",
    *CALLBACK_FIGURES,
)
MEETING_KINDS = ("thematic", "onsite", "written")


def fact_day_end(day: date) -> str:
    """The last moment of a day in China Standard Time, in the facts' fixed-width form
    (`facts.fact_time`): what an as-of date counts up to, that day included."""
    return f"{day.isoformat()}T23:59:59.999999+08:00"


@dataclass(frozen=True)
class IssueFilter:
    """What `GET /issues` narrows by; `offices` is what the caller may read (None: all)."""

    offices: Sequence[str] | None = None
    status: str | None = None
    category: str | None = None
    community: str | None = None
    year: int | None = None
    key_problem: bool | None = None
    department: str | None = None
    month: int | None = None
    """The month of the year the issue was submitted in, in China."""


def _in(column: str, values: Sequence[str] | None, params: dict[str, Any], name: str) -> str:
    if values is None:
        return ""
    params[name] = json.dumps(list(values))
    return f" AND {column} IN (SELECT value FROM json_each(:{name}))"


MONTH = "CAST(substr(i.submitted_at, 6, 2) AS INTEGER)"
"""An issue's month in China: its fixed-width China time reads `YYYY-MM-...`."""


def list_issues(
    view: ProjectionView, where: IssueFilter, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Issue status rows (问题状态列表), newest first, and how many match in all."""
    count, page, params = issue_list_sql(where)
    params.update(limit=limit, offset=offset)
    with view.read() as c:
        c.execute(count, params)
        total = c.fetchone()[0]
        c.execute(page, params)
        rows = [issue_item(dict(row)) for row in c.fetchall()]
    return total, rows


def issue_list_sql(where: IssueFilter) -> tuple[str, str, dict[str, Any]]:
    """`list_issues`' count and page (`:limit`, `:offset`) for a filter, and its parameters."""
    params: dict[str, Any] = {}
    sql = " FROM issue_status i WHERE 1 = 1" + _in("i.office", where.offices, params, "offices")
    for column in ("status", "category", "community", "year"):
        value = getattr(where, column)
        if value is not None:
            sql += f" AND i.{column} = :{column}"
            params[column] = value
    if where.key_problem is not None:
        sql += " AND i.key_problem = :key_problem"
        params["key_problem"] = int(where.key_problem)
    if where.month is not None:
        sql += f" AND {MONTH} = :month"
        params["month"] = where.month
    if where.department is not None:
        sql += (
            " AND i.issue_id IN (SELECT issue_id FROM issue_departments"
            " WHERE department = :department)"
        )
        params["department"] = where.department
    page = (
        "SELECT *" + sql + " ORDER BY i.submitted_at DESC, i.issue_id LIMIT :limit OFFSET :offset"
    )
    return "SELECT COUNT(*)" + sql, page, params


def issue_item(row: dict[str, Any]) -> dict[str, Any]:
    row["key_problem"] = bool(row["key_problem"])
    row["status_label"] = STATUS_LABELS[row["status"]]
    row["departments"] = [d for d in (row.get("departments") or "").split(",") if d]
    row.pop("key_problem_since", None)
    return row


# --- yearly figures ------------------------------------------------------------------------


def median(histogram: dict[int, int]) -> float | None:
    """The median of values given as value → how many; None when there are none."""
    count = sum(histogram.values())
    if not count:
        return None
    middle = ((count - 1) // 2, count // 2)
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(found) < 2 and seen > middle[len(found)]:
            found.append(value)
    return (found[0] + found[1]) / 2


def figures(
    office: str, counts: dict[tuple[str, str], int], days: dict[str, dict[int, int]]
) -> dict[str, Any]:
    """One office's (or the total's) `Figures`, from the counters of its year."""

    def n(figure: str) -> int:
        return counts.get((office, figure), 0)

    return {
        "office": "total" if office == TOTAL else office,
        "outreach_activities": n("outreach_activities"),
        "member_participations": n("member_participations"),
        "issues_collected": n("issues_collected"),
        "issues_resolved": n("issues_resolved"),
        "meetings_held": {kind: n(f"meetings_{kind}") for kind in MEETING_KINDS},
        "key_problems_resolved": n("key_problems_resolved"),
        "reports_forwarded": n("reports_forwarded"),
        "letters_issued": n("letters_issued"),
        "cases_overdue": n("cases_overdue"),
        "cases_reopened_by_callback": n("cases_reopened_by_callback"),
        "median_days_to_resolution": median(days.get(office, {})),
        **{figure: n(figure) for figure in CALLBACK_FIGURES},
        "satisfaction_rate": _share(n("callbacks_satisfied"), n("callbacks_reached")),
        "callback_coverage": _share(n("issues_called_back"), n("issues_resolved")),
    }


def _share(part: int, whole: int) -> float | None:
    """A rate to four places (0.9375 = 93.75 %); None when there is nothing to divide."""
    return None if not whole else round(part / whole, 4)


def recount(
    view: ProjectionView, year: int, until: str | None = None
) -> tuple[dict[tuple[str, str], int], dict[str, dict[int, int]]]:
    """The counters of a year derived afresh, entity by entity, from the facts that happened
    by `until`, with the live path's own derive functions.

    The reference the precomputed counters and `counted_as_of` are both held to (tests).
    """
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    days: dict[tuple[str, int, int], int] = defaultdict(int)
    with view.read() as c:
        for entity in RECOUNTED:
            c.execute(
                recount_sql(entity, until is not None),
                {"entity": entity, "year": year, "until": until},
            )
            group: list[Fact] = []
            for row in [*c.fetchall(), None]:
                fact = None if row is None else fact_of(row)
                if group and (fact is None or fact.entity_id != group[0].entity_id):
                    difference(Derived(None), DERIVE[entity](group), counts, days)
                    group = []
                if fact is not None:
                    group.append(fact)
    return (
        {(o, f): n for (o, y, f), n in counts.items() if y == year and n},
        by_office({(o, d): n for (o, y, d), n in days.items() if y == year and n}),
    )


RECOUNTED = {
    ISSUE: "step IN ('submitted', 'resolved', 'screened')",
    ACTIVITY: "step = 'activity_recorded'",
    MEETING: "step = 'meeting_held'",
    CASE: "step IN ('letter_issued', 'case_overdue', 'case_reopened')",
}
"""The entities `recount` derives: those with a fact of these steps in the year."""
RECOUNT_NEEDS = {
    ISSUE: "step IN ('submitted', 'resolved', 'screened', 'callback')",
    ACTIVITY: "1 = 1",
    MEETING: "step IN ('meeting_held', 'meeting_planned')",
    CASE: (
        "step IN ('letter_issued', 'case_overdue', 'case_opened', 'case_steps_retracted',"
        " 'case_reopened')"
    ),
}
"""Only the facts the counters depend on: the others cannot change a count."""


def recount_sql(entity: str, until: bool) -> str:
    """The facts `recount` derives an entity kind from (by `:until`, if `until`)."""
    cut = " AND at <= :until" if until else ""
    return (
        f"SELECT {FACT_COLUMNS} FROM facts WHERE entity = :entity"
        f" AND {RECOUNT_NEEDS[entity]}{cut} AND entity_id IN (SELECT entity_id FROM facts"
        f" WHERE entity = :entity AND year = :year AND {RECOUNTED[entity]}{cut})"
        " ORDER BY entity_id"
    )


def _standing_overdue(x: str) -> str:
    """Overdue fact `x` was not withdrawn: a retraction names it `overdue@<at>`, and is never
    dated after it, so a retracted step by any `until` has its retraction by then too.

    A `+` before a column keeps SQLite from looking it up by the step index, which would scan
    every fact of the step for each entity: an entity's facts are a range of the primary key.
    """
    return (
        f" AND NOT EXISTS (SELECT 1 FROM facts r WHERE r.entity = {x}.entity"
        f" AND r.entity_id = {x}.entity_id AND +r.step = 'case_steps_retracted'"
        f" AND r.data LIKE '%\"overdue@' || {x}.at || '\"%')"
    )


_FIRST_OVERDUE = (  # `f` is the case's first standing overdue fact by `until` (as in_order)
    "f.event_id = (SELECT x.event_id FROM facts x WHERE x.entity = f.entity"
    " AND x.entity_id = f.entity_id AND +x.step = 'case_overdue' AND x.at <= :until"
    + _standing_overdue("x")
    + " ORDER BY x.at, x.event_id LIMIT 1)"
)


_BY_RESIDENT = (  # a case sent back after 回访不满意
    "entity = 'case' AND step = 'case_reopened' AND json_extract(data, '$.cause') = 'callback'"
)


_SUBMITTED = (  # CROSS JOIN: SQLite then looks the issue up for each `f`, never the reverse
    "CROSS JOIN issue_status i ON i.issue_id = f.entity_id AND i.submitted_at <= :until"
)
AS_OF_SQL = {
    # (office, figure, n). The rows of issues and meetings answer as of any moment for what
    # they hold of an entity's earliest facts: its submission (office, time), the moment it
    # first became a key problem, the first time a meeting was held (kind, offices).
    "figures": (
        "SELECT office, 'issues_collected', COUNT(*) FROM issue_status"
        " WHERE year = :year AND submitted_at <= :until GROUP BY office"
        " UNION ALL SELECT i.office, 'reports_forwarded', COUNT(DISTINCT f.entity_id)"
        f" FROM facts f {_SUBMITTED} WHERE f.entity = 'issue' AND f.step = 'screened'"
        " AND f.detail = 'report' AND f.year = :year AND f.at <= :until GROUP BY i.office"
        " UNION ALL SELECT f.office, 'outreach_activities', COUNT(*) FROM facts f"
        " WHERE f.entity = 'activity' AND f.step = 'activity_recorded' AND f.year = :year"
        " AND f.at <= :until GROUP BY f.office"
        # The members as the latest correction by `until` gave them (else as recorded).
        " UNION ALL SELECT f.office, 'member_participations', SUM((SELECT"
        " CAST(json_extract(m.data, '$.members') AS INTEGER) FROM facts m"
        " WHERE m.entity = 'activity' AND m.entity_id = f.entity_id AND m.at <= :until"
        " ORDER BY m.step = 'activity_corrected' DESC, m.at DESC, m.event_id DESC LIMIT 1))"
        " FROM facts f WHERE f.entity = 'activity' AND f.step = 'activity_recorded'"
        " AND f.year = :year AND f.at <= :until GROUP BY f.office"
        " UNION ALL SELECT office, 'letters_issued', COUNT(*) FROM facts"
        " WHERE entity = 'case' AND step = 'letter_issued' AND year = :year AND at <= :until"
        " GROUP BY office"
        " UNION ALL SELECT f.office, 'cases_overdue', COUNT(*) FROM facts f"
        " WHERE f.entity = 'case' AND f.step = 'case_overdue' AND f.year = :year"
        f" AND f.at <= :until AND {_FIRST_OVERDUE} GROUP BY f.office"
        " UNION ALL SELECT office, 'cases_reopened_by_callback', COUNT(DISTINCT entity_id)"
        f" FROM facts WHERE {_BY_RESIDENT} AND year = :year AND at <= :until GROUP BY office"
    ),
    # (office, days, resolved, of them key problems): an issue resolved in the year, once,
    # its days counted to its first resolution of the year.
    "resolved": (
        "SELECT i.office, MAX(0, CAST(julianday(substr(f.first_at, 1, 10))"
        " - julianday(substr(i.submitted_at, 1, 10)) AS INTEGER)) AS days, COUNT(*),"
        " SUM(CASE WHEN i.key_problem_since <= :until THEN 1 ELSE 0 END)"
        " FROM (SELECT entity_id, MIN(at) AS first_at FROM facts WHERE entity = 'issue'"
        " AND step = 'resolved' AND year = :year AND at <= :until GROUP BY entity_id) f"
        f" {_SUBMITTED} GROUP BY i.office, days"
    ),
    # (office, called back, reached, satisfied): each issue first resolved in the year by
    # `until`, and its first follow-up call at or after that resolution by `until`.
    "callbacks": (
        "SELECT i.office, COUNT(f.called),"
        " SUM(CASE WHEN f.called <> 'unreached' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN f.called IN ('satisfied', 'basically_satisfied') THEN 1 ELSE 0 END)"
        " FROM (SELECT r.entity_id, (SELECT c.detail FROM facts c WHERE c.entity = 'issue'"
        " AND c.entity_id = r.entity_id AND c.step = 'callback' AND c.at >= r.first_at"
        " AND c.at <= :until ORDER BY c.at, c.event_id LIMIT 1) AS called"
        " FROM (SELECT entity_id, MIN(at) AS first_at FROM facts WHERE entity = 'issue'"
        " AND step = 'resolved' AND year = :year AND at <= :until GROUP BY entity_id) r) f"
        f" {_SUBMITTED} WHERE f.called IS NOT NULL GROUP BY i.office"
    ),
    # (kind, offices): each meeting first held in the year by `until`.
    "meetings": (
        "SELECT kind, offices FROM meetings WHERE held_year = :year AND held_at <= :until"
    ),
}


def counted_as_of(
    view: ProjectionView, year: int, until: str
) -> tuple[dict[tuple[str, str], int], dict[str, dict[int, int]]]:
    """`recount`'s answer, counted by SQL over the facts' indexes (entity, step, year, at)
    instead of deriving every entity in Python: the statistics as of a past moment."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    days: dict[str, dict[int, int]] = defaultdict(dict)
    params = {"year": year, "until": until}
    with view.read() as c:
        c.execute(AS_OF_SQL["figures"], params)
        for office, figure, n in c.fetchall():
            counts[(office, figure)] += n
            counts[(TOTAL, figure)] += n
        c.execute(AS_OF_SQL["resolved"], params)
        for office, n_days, n, key in c.fetchall():
            for key_office in (office, TOTAL):
                counts[(key_office, "issues_resolved")] += n
                counts[(key_office, "key_problems_resolved")] += key or 0
                days[key_office][n_days] = days[key_office].get(n_days, 0) + n
        c.execute(AS_OF_SQL["callbacks"], params)
        for office, called, reached, satisfied in c.fetchall():
            for figure, n in zip(CALLBACK_FIGURES, (called, reached, satisfied), strict=True):
                counts[(office, figure)] += n or 0
                counts[(TOTAL, figure)] += n or 0
        c.execute(AS_OF_SQL["meetings"], params)
        for kind, offices in c.fetchall():
            for office in offices.split(","):
                counts[(office, f"meetings_{kind}")] += 1
            counts[(TOTAL, f"meetings_{kind}")] += 1  # a joint meeting counts once in total
    return {key: n for key, n in counts.items() if n}, dict(days)


def years_with_data(view: ProjectionView, offices: Sequence[str] | None) -> list[int]:
    """The years in which the offices (None: all) have any figure, latest first."""
    sql, params = years_with_data_sql(offices)
    with view.read() as c:
        c.execute(sql, params)
        return [row[0] for row in c.fetchall()]


def years_with_data_sql(offices: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"office": TOTAL}
    where = "office = :office" if offices is None else "1 = 1" + _in("office", offices, params, "o")
    return f"SELECT DISTINCT year FROM figures WHERE {where} ORDER BY year DESC", params


def statistics(
    view: ProjectionView, year: int, offices: Sequence[str], all_offices: bool, as_of: date | None
) -> dict[str, Any]:
    """`{year, as_of, offices: [Figures], total: Figures}`: precomputed now, recounted as of."""
    if as_of is None:
        counts, days = view.counters(year)
    else:
        counts, days = counted_as_of(view, year, fact_day_end(as_of))
    rows = [figures(o, counts, days) for o in offices]
    if all_offices:
        total = figures(TOTAL, counts, days)
    else:
        # One office: its own figures are the total (a joint meeting counts once either way).
        total = {**figures(offices[0], counts, days), "office": "total"}
    return {
        "year": year,
        "as_of": None if as_of is None else as_of.isoformat(),
        "offices": rows,
        "total": total,
    }


# --- drill-down ----------------------------------------------------------------------------

_ISSUE_COLUMNS = (
    "i.issue_id, i.office, i.title, i.category, i.status, i.key_problem, i.submitted_at,"
    " i.departments"
)


def _issue_steps(step: str, extra: str = "") -> str:
    """Issues with a fact of `step` in the year (by `until`), each once, with its event ids."""
    return (
        f"SELECT {_ISSUE_COLUMNS}, MIN(f.at) AS at, group_concat(f.event_id) AS event_ids"
        " FROM facts f JOIN issue_status i ON i.issue_id = f.entity_id"
        f" WHERE f.entity = 'issue' AND f.step = '{step}' AND f.year = :year"
        " AND f.at <= :until AND i.submitted_at <= :until{offices}" + extra + " GROUP BY i.issue_id"
    )


DRILL_SQL = {
    "outreach_activities": (
        "SELECT a.*, a.held_at AS at, (SELECT group_concat(event_id) FROM facts WHERE"
        " entity = 'activity' AND entity_id = a.activity_id AND at <= :until) AS event_ids"
        " FROM activities a WHERE a.year = :year AND a.held_at <= :until{offices}"
    ),
    "issues_collected": (
        f"SELECT {_ISSUE_COLUMNS}, i.submitted_at AS at, (SELECT group_concat(event_id)"
        " FROM facts WHERE entity = 'issue' AND entity_id = i.issue_id AND step = 'submitted')"
        " AS event_ids FROM issue_status i WHERE i.year = :year AND i.submitted_at <= :until"
        "{offices}"
    ),
    "issues_resolved": _issue_steps("resolved"),
    "key_problems_resolved": _issue_steps("resolved", " AND i.key_problem_since <= :until"),
    "reports_forwarded": _issue_steps("screened", " AND f.detail = 'report'"),
    "meetings_held": (
        "SELECT m.meeting_id, m.offices, m.kind, m.title, m.status, m.held_at AS at,"
        " (SELECT group_concat(event_id) FROM facts WHERE entity = 'meeting' AND"
        " entity_id = m.meeting_id AND step = 'meeting_held') AS event_ids FROM meetings m"
        " WHERE m.held_year = :year AND m.held_at <= :until"
        " AND (CAST(:kind AS TEXT) IS NULL OR m.kind = :kind)"
        " AND m.meeting_id IN (SELECT meeting_id FROM meeting_offices WHERE 1 = 1{offices})"
    ),
    "letters_issued": (
        "SELECT f.entity_id AS case_id, f.office, f.detail AS number,"
        " json_extract(f.data, '$.department') AS department, f.at, f.event_id AS event_ids,"
        " c.issue_ids FROM facts f LEFT JOIN cases c ON c.case_id = f.entity_id"
        " WHERE f.entity = 'case' AND f.step = 'letter_issued' AND f.year = :year"
        " AND f.at <= :until{offices}"
    ),
    "cases_overdue": (
        "SELECT f.entity_id AS case_id, MIN(f.office) AS office, MIN(f.detail) AS department,"
        " MIN(f.at) AS at, group_concat(f.event_id) AS event_ids, MIN(c.issue_ids) AS issue_ids"
        " FROM facts f"
        " LEFT JOIN cases c ON c.case_id = f.entity_id"
        " WHERE f.entity = 'case' AND f.step = 'case_overdue' AND f.at <= :until{offices}"
        + _standing_overdue("f")
        + " GROUP BY f.entity_id HAVING MIN(f.year) = :year"
    ),
    "cases_reopened_by_callback": (
        "SELECT f.entity_id AS case_id, MIN(f.office) AS office,"
        " MIN(c.department) AS department, MIN(f.at) AS at,"
        " group_concat(f.event_id) AS event_ids, MIN(c.issue_ids) AS issue_ids"
        " FROM (SELECT * FROM facts WHERE " + _BY_RESIDENT + ") f"
        " LEFT JOIN cases c ON c.case_id = f.entity_id"
        " WHERE f.year = :year AND f.at <= :until{offices} GROUP BY f.entity_id"
    ),
}
for _figure, _which in zip(
    CALLBACK_FIGURES,
    ("", " AND f.called <> 'unreached'", " AND f.called IN ('satisfied', 'basically_satisfied')"),
    strict=True,
):
    # The issues resolved in the year whose first follow-up call after it (by `until`) counts.
    DRILL_SQL[_figure] = (
        f"SELECT {_ISSUE_COLUMNS}, f.first_at AS at, f.called AS satisfaction, f.event_id"
        " AS event_ids FROM (SELECT r.entity_id, r.first_at, c.detail AS called, c.event_id"
        " FROM (SELECT entity_id, MIN(at) AS first_at FROM facts WHERE entity = 'issue'"
        " AND step = 'resolved' AND year = :year AND at <= :until GROUP BY entity_id) r"
        " JOIN facts c ON c.entity = 'issue' AND c.entity_id = r.entity_id"
        " AND c.event_id = (SELECT x.event_id FROM facts x WHERE x.entity = 'issue'"
        " AND x.entity_id = r.entity_id AND x.step = 'callback' AND x.at >= r.first_at"
        " AND x.at <= :until ORDER BY x.at, x.event_id LIMIT 1)) f"
        " JOIN issue_status i ON i.issue_id = f.entity_id WHERE i.submitted_at <= :until"
        "{offices}" + _which
    )
DRILL_SQL["member_participations"] = DRILL_SQL["outreach_activities"]
DRILL_SQL["median_days_to_resolution"] = DRILL_SQL["issues_resolved"]
OFFICE_COLUMN = {
    "outreach_activities": "a.office",
    "member_participations": "a.office",
    "meetings_held": "office",
    "letters_issued": "f.office",
    "cases_overdue": "f.office",
    "cases_reopened_by_callback": "f.office",
}

ALWAYS = "9999-12-31T23:59:59.999999+08:00"


def drill_down(
    view: ProjectionView,
    figure: str,
    year: int,
    offices: Sequence[str] | None,
    as_of: date | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """The items behind one figure (统计明细), each with the ids of the events behind it."""
    until = ALWAYS if as_of is None else fact_day_end(as_of)
    count, page, params = drill_down_sql(figure, offices)
    params.update(year=year, until=until, kind=kind, limit=limit, offset=offset)
    with view.read() as c:
        c.execute(count, params)
        total = c.fetchone()[0]
        c.execute(page, params)
        rows = [dict(row) for row in c.fetchall()]
    items = [_drill_item(figure, row) for row in rows]
    if as_of is not None and figure in ("outreach_activities", "member_participations"):
        for item in items:
            # The members as they stood then: corrections made later do not count yet.
            derived = view.derive("activity", item["activity_id"], until)
            item["members"] = derived.row["members"] if derived.row else 0
    return total, items


def drill_down_sql(figure: str, offices: Sequence[str] | None) -> tuple[str, str, dict[str, Any]]:
    """`drill_down`'s count and page (`:limit`, `:offset`), and the offices' parameter."""
    params: dict[str, Any] = {}
    column = OFFICE_COLUMN.get(figure, "i.office")
    sql = DRILL_SQL[figure].format(offices=_in(column, offices, params, "offices"))
    return (
        f"SELECT COUNT(*) FROM ({sql}) AS q",
        f"{sql} ORDER BY at LIMIT :limit OFFSET :offset",
        params,
    )


def _drill_item(figure: str, row: dict[str, Any]) -> dict[str, Any]:
    row["event_ids"] = sorted((row.get("event_ids") or "").split(","))
    if "issue_id" in row:
        row = issue_item(row)
        row["href"] = f"/issues/{row['issue_id']}"
        if figure in ("issues_resolved", "key_problems_resolved", "median_days_to_resolution"):
            row["resolved_at"] = row["at"]
            row["days_to_resolution"] = days_between(row["submitted_at"], row["at"])
    if "offices" in row and isinstance(row["offices"], str):
        row["offices"] = row["offices"].split(",")
    if "issue_ids" in row:
        row["issue_ids"] = [i for i in (row["issue_ids"] or "").split(",") if i]
        # A letter or an overdue case drills down further, to each issue it covers.
        row["issue_hrefs"] = [f"/issues/{i}" for i in row["issue_ids"]]
    return row


# --- breakdown -----------------------------------------------------------------------------

BREAKDOWNS = ("by_month", "by_category", "by_community", "by_status", "overdue_by_department")
BREAKDOWN_FILTERS = {
    "by_month": {"month": "{}"},
    "by_category": {"category": "{}"},
    "by_community": {"community": "{}"},
    "by_status": {"status": "{}"},
    "overdue_by_department": {"department": "{}", "status": "overdue"},
}
"""The `GET /issues` filters that list the issues behind one bucket of each breakdown."""


def breakdown(
    view: ProjectionView, year: int, offices: Sequence[str] | None, as_of: date | None
) -> dict[str, dict[str, int]]:
    """A year's issues counted by month, category, community, status, and the overdue ones
    by the departments of their cases (分类统计): now, or as they stood at the end of `as_of`.
    """
    where, params = breakdown_where(offices)
    params["year"] = year
    counted: dict[str, dict[str, int]] = {name: {} for name in BREAKDOWNS}
    counted["by_month"] = {str(m): 0 for m in range(1, 13)}

    def add(name: str, key: object, n: int) -> None:
        if key:
            counted[name][str(key)] = counted[name].get(str(key), 0) + n

    def count(rows: Iterable[tuple[int, str, str | None, str, list[str], int]]) -> None:
        for month, category, community, status, departments, n in rows:
            add("by_month", month, n)
            add("by_category", category, n)
            add("by_community", community, n)
            add("by_status", status, n)
            if status == "overdue":
                for department in departments:
                    add("overdue_by_department", department, n)

    if as_of is not None:
        count((*row, 1) for row in _rows_as_of(view, where, params, fact_day_end(as_of)))
        return counted
    # Counted by SQL per combination of the columns, then added up here: the year's rows as
    # one list raised the process's peak memory by 84 MB at 200,000 issues
    # (bench/statistics_bench.py); the combinations are few, whatever the number of issues.
    with view.read() as c:
        c.execute(breakdown_sql(where), params)
        combinations = c.fetchall()
    count((m, cat, com, st, (d or "").split(","), n) for m, cat, com, st, d, n in combinations)
    return counted


def breakdown_where(offices: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """The year's issues (`:year`) of the offices (None: all), and the offices' parameter."""
    params: dict[str, Any] = {}
    return "i.year = :year" + _in("i.office", offices, params, "offices"), params


def breakdown_sql(where: str) -> str:
    return (
        f"SELECT {MONTH}, category, community, status, departments, COUNT(*)"
        f" FROM issue_status i WHERE {where} GROUP BY 1, 2, 3, 4, 5"
    )


def rows_as_of_sql(where: str) -> str:
    return (
        f"SELECT {FACT_COLUMNS} FROM facts WHERE entity = 'issue' AND at <= :until"
        " AND entity_id IN (SELECT issue_id FROM issue_status i"
        f" WHERE {where} AND i.submitted_at <= :until) ORDER BY entity_id"
    )


def _rows_as_of(
    view: ProjectionView, where: str, params: dict[str, Any], until: str
) -> list[tuple[int, str, str | None, str, list[str]]]:
    """The year's issues submitted by `until`, each derived from its facts by then."""
    with view.read() as c:
        c.execute(rows_as_of_sql(where), {**params, "until": until})
        found = c.fetchall()
    rows = []
    for _, group in itertools.groupby(map(fact_of, found), key=lambda f: f.entity_id):
        row = derive_issue(group, until).row
        if row is not None:
            month = int(row["submitted_at"][5:7])
            departments = row["departments"].split(",")
            rows.append((month, row["category"], row["community"], row["status"], departments))
    return rows


@sends_sql
def _statements() -> Iterator[str]:
    """Every statement the questions above ask, each variant their filters make."""
    shapes = [f.name for f in dataclasses.fields(IssueFilter)]
    for n in range(len(shapes) + 1):
        for given in itertools.combinations(shapes, n):
            # The statement depends on which filters are given, not on their values.
            sample = {name: ("x",) if name == "offices" else True for name in given}
            yield from issue_list_sql(IssueFilter(**sample))[:2]  # type: ignore[arg-type]
    for entity, until in itertools.product(RECOUNTED, (False, True)):
        yield recount_sql(entity, until)
    yield from AS_OF_SQL.values()
    for offices in (None, ("x",)):
        yield years_with_data_sql(offices)[0]
        for figure in DRILL_SQL:
            yield from drill_down_sql(figure, offices)[:2]
        where = breakdown_where(offices)[0]
        yield breakdown_sql(where)
        yield rows_as_of_sql(where)
