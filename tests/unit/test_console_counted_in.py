"""The dashboard figure an issue page links to (统计口径): the one the issue counts in, in the
year it counts in, as the projections count it (the year in China)."""

from __future__ import annotations

import pytest

from services.console.issues import counted_in


@pytest.mark.parametrize(
    ("issue", "expected"),
    [
        (
            {"submitted_at": "2020-12-31T17:30:00+00:00", "resolved_at": None},
            (2021, "issues_collected"),
        ),
        (
            {
                "submitted_at": "2020-06-04T09:00:00+08:00",
                "resolved_at": "2021-01-02T10:00:00+08:00",
                "key_problem": False,
            },
            (2021, "issues_resolved"),
        ),
        (
            {
                "submitted_at": "2020-06-04T09:00:00+08:00",
                "resolved_at": "2020-12-31T16:30:00+00:00",
                "key_problem": True,
            },
            (2021, "key_problems_resolved"),
        ),
    ],
)
def test_an_issue_links_to_the_figure_and_year_it_counts_in(
    issue: dict[str, object], expected: tuple[int, str]
) -> None:
    assert counted_in(issue) == expected
