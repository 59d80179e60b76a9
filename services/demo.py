"""The demo scenario (演示): issues of the 2020 Yanji pilot, loaded through the public HTTP API."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.auth import Authenticator

YEAR = 2020

OFFICE_NAMES = {
    "yanbian": "延边州政协",
    "yanji": "延吉市政协",
    "tumen": "图们市政协",
    "dunhua": "敦化市政协",
    "hunchun": "珲春市政协",
    "longjing": "龙井市政协",
    "helong": "和龙市政协",
    "wangqing": "汪清县政协",
    "antu": "安图县政协",
}


@dataclass(frozen=True)
class DemoIssue:
    """One issue of the scenario; its key makes a second run of the demo a retry, not a copy."""

    key: str
    office: str
    title: str
    description: str
    category: str
    submitted_at: str

    def body(self) -> dict[str, str]:
        return {
            "office": self.office,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "submitted_at": self.submitted_at,
        }


SCENARIO: tuple[DemoIssue, ...] = (
    DemoIssue(
        "yanji-01",
        "yanji",
        "元旦夜间小区供暖温度不达标",
        "居民通过热线反映：元旦夜间室内温度不足16度，老人孩子受冻，希望督促供热企业排查管网。",
        "民生保障",
        # Still 2019 in UTC: counts in 2020 only because a year is China Standard Time's.
        "2020-01-01T00:30:00+08:00",
    ),
    DemoIssue(
        "yanji-02",
        "yanji",
        "无物业小区楼道灯损坏、垃圾清运不及时",
        "进学街道一处无物业老旧小区楼道灯长期损坏，生活垃圾堆放多日无人清运，居民出行不便。",
        "物业管理",
        "2020-06-04T15:30:00+08:00",
    ),
    DemoIssue(
        "yanji-03",
        "yanji",
        "帽儿山登山步道沿线垃圾堆放",
        "周末登山人员增多，步道沿线垃圾桶不足，塑料袋、饮料瓶随处可见，影响帽儿山生态环境。",
        "生态环境",
        "2020-06-11T14:30:00+08:00",
    ),
    DemoIssue(
        "yanji-04",
        "yanji",
        "学校周边上下学时段交通拥堵、流动摊贩占道",
        "河南街道一所中学门前上下学时段接送车辆乱停，流动摊贩占用人行道，学生安全存在隐患。",
        "校园周边",
        "2020-06-18T15:00:00+08:00",
    ),
    DemoIssue(
        "yanji-05",
        "yanji",
        "老旧小区停车位不足、消防通道被占",
        "建工街道老旧小区停车位严重不足，车辆占用消防通道，希望规划增设停车泊位。",
        "交通出行",
        "2020-07-02T14:00:00+08:00",
    ),
    DemoIssue(
        "yanji-06",
        "yanji",
        "布尔哈通河沿岸夜间烧烤油烟扰民",
        "沿河露天烧烤摊经营至深夜，油烟和噪声影响周边居民休息，希望加强夜间经营管理。",
        "城市管理",
        "2020-08-13T15:00:00+08:00",
    ),
    DemoIssue(
        "yanji-07",
        "yanji",
        "跨年夜在禁放区域燃放烟花爆竹",
        "居民网上反映：跨年夜有人在市区禁放区域燃放烟花爆竹，存在火灾隐患并影响休息。",
        "城市管理",
        # The last half hour of the year: counts in 2020, not 2021.
        "2020-12-31T23:30:00+08:00",
    ),
    DemoIssue(
        "tumen-01",
        "tumen",
        "图们江沿岸步道夜间照明不足",
        "沿江步道部分路段路灯损坏，夜间散步的居民看不清路面，存在安全隐患。",
        "城市管理",
        "2020-07-09T15:00:00+08:00",
    ),
    DemoIssue(
        "tumen-02",
        "tumen",
        "台风过后老旧小区排水不畅、地下室积水",
        "九月台风过境后，几处老旧小区排水管网堵塞，地下室和储藏间积水多日未排。",
        "民生保障",
        "2020-09-04T10:00:00+08:00",
    ),
    DemoIssue(
        "tumen-03",
        "tumen",
        "小学门前缺少人行横道和交通信号灯",
        "学校门前道路车速快，没有斑马线和信号灯，学生过马路危险，家长希望尽快设置。",
        "校园周边",
        "2020-09-17T15:30:00+08:00",
    ),
    DemoIssue(
        "tumen-04",
        "tumen",
        "农贸市场周边占道经营",
        "早市摊位延伸到机动车道，早高峰车辆通行缓慢，市场关闭后垃圾清扫不及时。",
        "城市管理",
        "2020-10-15T14:30:00+08:00",
    ),
)


class DemoError(RuntimeError):
    """The demo could not be loaded; the message is meant for the user."""


class DemoInterrupted(Exception):
    """A stop was asked for while the demo was loading."""


@dataclass(frozen=True)
class LoadResult:
    new: int
    existing: int
    statistics: dict[str, Any]


def load_scenario(
    authenticator: Authenticator,
    intake_url: str,
    projections_url: str,
    scenario: tuple[DemoIssue, ...] = SCENARIO,
    wait_seconds: float = 5.0,
    interrupted: Callable[[], bool] = lambda: False,
) -> LoadResult:
    """Submit every issue as its office's clerk, wait for the read side, fetch the statistics.

    `interrupted` is asked between requests, so that Ctrl-C does not wait for the whole load.
    """
    prefecture = authenticator.mint("yanbian", ["viewer"], subject="demo-viewer")
    clerks = {
        office: authenticator.mint(office, ["clerk"], subject=f"demo-clerk-{office}")
        for office in sorted({issue.office for issue in scenario})
    }
    new = existing = 0
    ids: list[str] = []
    try:
        with httpx.Client(timeout=wait_seconds + 10) as http:
            for issue in scenario:
                _stop_if(interrupted)
                response = http.post(
                    f"{intake_url}/issues",
                    json=issue.body(),
                    headers={
                        "Authorization": f"Bearer {clerks[issue.office]}",
                        # Versioned so that an edited scenario does not collide with an old run's.
                        "Idempotency-Key": f"demo-{YEAR}-v1-{issue.key}",
                    },
                )
                _expect(response, (200, 201), f"提交问题 / submitting {issue.key}")
                new += response.status_code == 201
                existing += response.status_code == 200
                ids.append(response.json()["id"])
            for issue_id in ids:
                _stop_if(interrupted)
                response = http.get(
                    f"{projections_url}/issues/{issue_id}",
                    params={"wait": wait_seconds},
                    headers={"Authorization": f"Bearer {prefecture}"},
                )
                _expect(response, (200,), f"查询问题状态 / reading the status of {issue_id}")
            response = http.get(
                f"{projections_url}/statistics/{YEAR}",
                headers={"Authorization": f"Bearer {prefecture}"},
            )
            _expect(response, (200,), f"查询 {YEAR} 年统计 / reading the {YEAR} statistics")
            statistics = response.json()
    except httpx.HTTPError as error:
        raise DemoError(f"无法访问服务 / a service did not answer: {error!r}") from error
    return LoadResult(new=new, existing=existing, statistics=statistics)


def _stop_if(interrupted: Callable[[], bool]) -> None:
    if interrupted():
        raise DemoInterrupted


def _expect(response: httpx.Response, codes: tuple[int, ...], doing: str) -> None:
    if response.status_code not in codes:
        raise DemoError(f"{doing}: HTTP {response.status_code} {response.text}")


def _width(text: str) -> int:
    """Columns a terminal uses: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def format_statistics(statistics: dict[str, Any]) -> str:
    """The yearly statistics as a table for the terminal."""
    rows = [
        (f"{OFFICE_NAMES.get(o['office'], o['office'])} {o['office']}", str(o["issues_collected"]))
        for o in statistics["offices"]
    ]
    total = ("合计 total", str(statistics["total"]["issues_collected"]))
    header = ("政协 office", "收集问题 issues collected")
    left = max(_width(r[0]) for r in [header, *rows, total])
    right = max(_width(r[1]) for r in [header, *rows, total])
    rule = "-" * (left + 2 + right)
    lines = [
        f"{statistics['year']} 年度统计 / statistics for {statistics['year']}",
        rule,
        f"{_pad(header[0], left)}  {_pad(header[1], right, right=True)}",
        rule,
        *(f"{_pad(name, left)}  {_pad(count, right, right=True)}" for name, count in rows),
        rule,
        f"{_pad(total[0], left)}  {_pad(total[1], right, right=True)}",
    ]
    return "\n".join(lines)
