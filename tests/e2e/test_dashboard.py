"""A prefecture viewer opens the dashboard in Chromium and sees exactly what the API answers.

The services are the real ones (intake and projections, each with its event store, over a
real nats-server), served by uvicorn on free ports; the dashboard router is included in the
projections app as main.py will include it. Data gets in as a clerk puts it in: POST /issues.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from services.intake import main as intake_main
from services.projections import dashboard
from services.projections import main as projections_main
from shared.auth import Authenticator
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from tests.support.http import bearer
from tests.support.servers import ServerThread
from tests.support.stack import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# From TECH-NOTES: without the networking flags Chromium tries the internet at every start.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = ROOT / "test-output"
READY = 'body[data-state="ready"]'

# Months and categories differ so that every chart has more than one bar.
ISSUES_2020 = [
    ("yanji", "2020-03-12T09:30:00+08:00", "城市管理", "背街小巷路灯不亮"),
    ("yanji", "2020-06-04T15:30:00+08:00", "物业管理", "无物业小区垃圾清运不及时"),
    ("yanji", "2020-06-18T15:00:00+08:00", "物业管理", "老旧小区楼道堆放杂物"),
    ("yanji", "2020-07-02T14:30:00+08:00", "生态环境", "帽儿山步道垃圾无人清理"),
    ("yanji", "2020-09-10T16:00:00+08:00", "校园周边", "学校门口上下学时段拥堵"),
    ("yanji", "2020-11-05T10:00:00+08:00", "交通出行", "公交站台缺少遮雨棚"),
    # New Year's Eve in UTC is already 2021 in China: it counts in 2021.
    ("yanji", "2020-12-31T17:00:00+00:00", "民生保障", "社区养老服务站人手不足"),
    ("tumen", "2020-06-11T15:00:00+08:00", "城市管理", "人行道破损"),
    ("tumen", "2020-08-20T15:00:00+08:00", "民生保障", "菜市场周边占道经营"),
    ("tumen", "2020-12-31T23:30:00+08:00", "其他", "社区活动室开放时间短"),
]
ISSUES_2021 = [("yanji", "2021-04-08T15:00:00+08:00", "城市管理", "积雪清理不及时")]
# A title that would run script if the page put it into HTML unescaped; a year of its own.
MARKUP_TITLE = '<img src="x" onerror="window.injected = 1">路灯'
ISSUES_2019 = [("yanji", "2019-10-10T10:00:00+08:00", "其他", MARKUP_TITLE)]


@dataclass
class Services:
    intake: str
    projections: str
    viewer: str
    """A read-only token of the prefecture office, as `shangliang token --role viewer` mints."""
    mint: Callable[..., str]
    issue_ids: dict[str, str] = field(default_factory=dict)
    """Issue id by title."""

    def get(self, path: str, **params: Any) -> httpx.Response:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return httpx.get(
            f"{self.projections}{path}", params=clean, headers=bearer(self.viewer), timeout=10
        )

    def statistics(self, year: int, as_of: str = "") -> dict[str, Any]:
        response = self.get(f"/statistics/{year}", as_of=as_of)
        assert response.status_code == 200, response.text
        return response.json()


def submit_issues(services: Services, issues: list[tuple[str, str, str, str]]) -> None:
    for office, at, category, title in issues:
        response = httpx.post(
            f"{services.intake}/issues",
            json={
                "office": office,
                "title": title,
                "description": f"{title}（{uuid.uuid4().hex[:6]}）",
                "category": category,
                "submitted_at": at,
            },
            headers=bearer(services.mint(office, "clerk")),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        services.issue_ids[title] = response.json()["id"]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("dashboard")
    nats = EmbeddedNats(folder / "nats").start()
    settings = Settings(data_dir=folder / "data", nats_url=nats.url)
    # In a thread of its own: Playwright's sync API may already run an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(nats.set_up_blocking, settings).result()
    projections_app = projections_main.create_app(settings)
    projections_app.include_router(dashboard.router)
    started: list[ServerThread] = []
    try:
        intake = ServerThread(intake_main.create_app(settings)).start()
        started.append(intake)
        projections = ServerThread(projections_app).start()
        started.append(projections)
        authenticator = Authenticator(settings)

        def mint(office: str, *roles: str) -> str:
            return authenticator.mint(office, list(roles), subject=f"dashboard-{office}")

        running = Services(intake.url, projections.url, mint("yanbian", "viewer"), mint)
        submit_issues(running, ISSUES_2019 + ISSUES_2020 + ISSUES_2021)
        wait_until(
            lambda: (
                running.statistics(2020)["total"]["issues_collected"] == 9
                and running.statistics(2021)["total"]["issues_collected"] == 2
            ),
            "the projection has every submitted issue",
        )
        yield running
    finally:
        for server in reversed(started):
            server.stop()
        nats.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "找不到 /usr/bin/chromium，仪表盘测试需要它：请运行 make browser / "
            "Chromium is missing and the dashboard test needs it: run `make browser` "
            "(apt-get install chromium fonts-wqy-microhei)"
        )
    playwright: Playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@dataclass
class Visit:
    page: Page
    requests: list[str]
    errors: list[str]


@pytest.fixture
def visit(browser: Browser, services: Services) -> Iterator[Callable[[str], Visit]]:
    """Opens the dashboard in a fresh browser context; records every request and script error."""
    contexts = []

    def open_page(query: str) -> Visit:
        context = browser.new_context(
            viewport={"width": 1440, "height": 900}, locale="zh-CN", accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        opened = Visit(page, [], [])
        page.on("request", lambda request: opened.requests.append(request.url))
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        page.goto(f"{services.projections}/dashboard{query}")
        return opened

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def open_ready(visit: Callable[[str], Visit], services: Services, query: str) -> Visit:
    opened = visit(f"?token={services.viewer}&{query}")
    opened.page.wait_for_selector(READY, timeout=20000)
    return opened


# --- comparing the page with the API ------------------------------------------------------------


def shown_text(value: Any) -> str:
    """How the page shows a figure: exact with thousands separators; absent as a dash."""
    if value is None or isinstance(value, dict | list | bool):
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}"


def figure_value(figures: dict[str, Any], path: str) -> Any:
    value: Any = figures
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def assert_figures_are_the_apis(page: Page, stats: dict[str, Any]) -> set[tuple[str, str]]:
    """Every element with `data-figure` shows the API's value for its office (or the total);
    returns the (office, figure) pairs that the API has and the page showed."""
    by_office = {o["office"]: o for o in stats["offices"]} | {"total": stats["total"]}
    shown = page.eval_on_selector_all(
        "[data-figure]",
        "els => els.map(e => [e.dataset.figure, e.dataset.office, e.textContent.trim()])",
    )
    assert shown, "the page shows no figure"
    compared = set()
    for figure, office, text in shown:
        value = figure_value(by_office[office], figure)
        assert text == shown_text(value), f"{office} {figure}: page {text!r}, API {value!r}"
        if value is not None:
            compared.add((office, figure))
    return compared


# --- the tests ----------------------------------------------------------------------------------


def test_the_figures_on_the_page_are_the_apis_answers(visit, services):
    opened = open_ready(visit, services, "year=2020")
    page = opened.page
    stats = services.statistics(2020)
    assert stats["total"]["issues_collected"] == 9
    compared = assert_figures_are_the_apis(page, stats)
    assert ("total", "issues_collected") in compared
    assert ("yanji", "issues_collected") in compared  # the table by office
    assert "收集问题和建议 9 条" in page.inner_text("#summary-sentence")
    assert page.inner_text("h1") == "有事来商量 · 工作统计看板"

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
    assert opened.errors == []
    origin = services.projections
    assert [u for u in opened.requests if not u.startswith((origin, "data:"))] == []


def test_the_token_leaves_the_address_bar_for_the_session(visit, services):
    page = open_ready(visit, services, "year=2020").page
    assert "token" not in page.url
    assert "year=2020" in page.url
    assert page.evaluate("sessionStorage.getItem('shangliang.token')") == services.viewer
    page.reload()
    page.wait_for_selector(READY)
    assert page.inner_text('[data-figure="issues_collected"][data-office="total"]') == "9"


def test_year_office_and_as_of_change_the_figures_as_the_api_does(visit, services):
    page = open_ready(visit, services, "year=2020").page

    page.select_option("#year", "2021")
    page.wait_for_selector(READY)
    stats = services.statistics(2021)
    assert ("total", "issues_collected") in assert_figures_are_the_apis(page, stats)
    assert page.inner_text('[data-figure="issues_collected"][data-office="total"]') == "2"

    page.select_option("#office", "tumen")
    page.wait_for_selector(READY)
    assert "office=tumen" in page.url
    cards = page.eval_on_selector_all(
        "#cards [data-figure]", "els => els.map(e => e.dataset.office)"
    )
    assert set(cards) == {"tumen"}
    assert ("tumen", "issues_collected") in assert_figures_are_the_apis(page, stats)
    assert "图们市政协" in page.inner_text("#summary-sentence")

    page.fill("#as-of", "2021-06-30")
    page.wait_for_selector(READY)
    assert "as_of=2021-06-30" in page.url
    assert_figures_are_the_apis(page, services.statistics(2021, as_of="2021-06-30"))


def test_english_is_one_click_away(visit, services):
    page = open_ready(visit, services, "year=2020").page
    page.click("#lang")
    page.wait_for_selector(READY)
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Shangliang · Work statistics"
    sentence = page.inner_text("#summary-sentence")
    assert sentence.startswith("In 2020, all offices")
    assert "collected 9 issues and suggestions" in sentence
    assert_figures_are_the_apis(page, services.statistics(2020))
    page.screenshot(path=str(OUTPUT / "dashboard-en.png"), full_page=False)

    page.click("#lang")
    page.wait_for_selector(READY)
    assert page.inner_text("h1") == "有事来商量 · 工作统计看板"


def test_a_county_office_sees_its_own_figures_only(visit, services):
    yanji = services.mint("yanji", "viewer")
    page = visit(f"?token={yanji}&year=2020").page
    page.wait_for_selector(READY)
    response = httpx.get(
        f"{services.projections}/statistics/2020", headers=bearer(yanji), timeout=10
    )
    stats = response.json()
    assert [o["office"] for o in stats["offices"]] == ["yanji"]
    assert ("total", "issues_collected") in assert_figures_are_the_apis(page, stats)
    assert page.inner_text('[data-figure="issues_collected"][data-office="total"]') == "6"
    assert page.is_disabled("#office")
    assert page.is_hidden("#offices")
    sentence = page.inner_text("#summary-sentence")
    assert sentence.startswith("2020年，延吉市政协共开展委员进基层活动 0 期")
    assert "收集问题和建议 6 条" in sentence


def test_without_a_token_the_page_says_how_to_get_one(visit, services):
    page = visit("?year=2020").page
    page.wait_for_selector('body[data-state="no-token"]')
    prompt = page.inner_text("#token-prompt")
    assert "需要访问令牌" in prompt and "A token is needed" in prompt
    assert "shangliang token --office yanbian --role viewer" in prompt
    assert page.is_hidden("#content")

    page.fill("#token-input", services.viewer)
    page.click("#token-form button")
    page.wait_for_selector(READY)
    assert page.inner_text('[data-figure="issues_collected"][data-office="total"]') == "9"


def test_a_bad_token_is_refused_with_the_same_help(visit, services):
    page = visit("?token=not-a-token&year=2020").page
    page.wait_for_selector('body[data-state="no-token"]')
    assert "令牌无效或已过期" in page.inner_text("#token-prompt")
    assert page.evaluate("sessionStorage.getItem('shangliang.token')") is None


def test_a_figure_drills_down_to_its_items_and_each_item_to_its_timeline(visit, services):
    page = open_ready(visit, services, "year=2020").page
    page.click('button[data-drill="issues_collected"]')
    page.wait_for_selector('#drawer[data-state="ready"]')
    drill = services.get("/statistics/2020/issues_collected", page_size=50)
    listed = services.get("/issues", year=2020, page_size=50)
    if drill.status_code == 200 or listed.status_code == 200:
        expected = (drill if drill.status_code == 200 else listed).json()["total"]
        assert page.get_attribute("#drawer", "data-total") == str(expected)
        links = page.eval_on_selector_all("#drawer-body a.timeline-link", "a => a.length")
        assert links == min(expected, 50)
        page.click("#drawer-body a.timeline-link >> nth=0")
    else:
        # Today's API has neither: the page says so instead of showing an empty list.
        assert page.get_attribute("#drawer", "data-available") == "false"
        assert "接口暂未提供此数据" in page.inner_text("#drawer-body")
        issue_id = services.issue_ids["帽儿山步道垃圾无人清理"]
        page.evaluate(f"location.hash = '#/issue/{issue_id}'")
    page.wait_for_selector("#drawer [data-issue-title]")
    page.wait_for_selector('#drawer[data-state="ready"]')
    title = page.inner_text("#drawer [data-issue-title]")
    issue = services.get(f"/issues/{services.issue_ids[title]}").json()
    steps = page.eval_on_selector_all("#drawer .timeline .step", "els => els.length")
    assert steps == len(issue["timeline"]) >= 1
    assert "已收集" in page.inner_text("#drawer .timeline")
    assert "问题收集" in page.inner_text("#drawer .timeline")  # the stream, named for people

    page.keyboard.press("Escape")
    assert page.is_hidden("#drawer")
    assert "#" not in page.url


def test_an_issue_link_opens_its_timeline_directly(visit, services):
    issue_id = services.issue_ids["学校门口上下学时段拥堵"]
    page = open_ready(visit, services, f"year=2020#/issue/{issue_id}").page
    page.wait_for_selector("#drawer [data-issue-title]")
    assert page.inner_text("#drawer [data-issue-title]") == "学校门口上下学时段拥堵"
    assert "延吉市政协" in page.inner_text("#drawer-body")


def test_text_from_the_data_is_shown_as_text_never_run(visit, services):
    issue_id = services.issue_ids[MARKUP_TITLE]
    opened = open_ready(visit, services, f"year=2019#/issue/{issue_id}")
    page = opened.page
    page.wait_for_selector("#drawer [data-issue-title]")
    assert page.inner_text("#drawer [data-issue-title]") == MARKUP_TITLE
    assert page.eval_on_selector_all("#drawer img", "imgs => imgs.length") == 0
    assert page.evaluate("window.injected") is None
    assert opened.errors == []


def test_the_charts_draw_the_apis_breakdown_and_link_to_its_lists(visit, services):
    page = open_ready(visit, services, "year=2020").page
    answer = services.get("/statistics/2020/breakdown")
    assert answer.status_code == 200, answer.text
    expected = answer.json()
    for chart, name in (
        ("chart-month", "by_month"),
        ("chart-category", "by_category"),
        ("chart-community", "by_community"),
        ("chart-overdue", "overdue_by_department"),
    ):
        bars = page.eval_on_selector_all(
            f"#{chart} .bar",
            "els => els.map(e => [e.dataset.key, Number(e.dataset.value), e.dataset.href])",
        )
        assert {k: v for k, v, _ in bars if v} == {k: v for k, v in expected[name].items() if v}
        assert all(href == expected["links"][name][k] for k, _, href in bars if k), chart
    now = page.eval_on_selector_all(
        "#chart-status .bar", "els => els.map(e => [e.dataset.key, Number(e.dataset.now)])"
    )
    assert now, "the funnel draws no stage"
    for status, count in now:
        assert count == expected["by_status"].get(status, 0), status
    category, n = next((k, v) for k, v in expected["by_category"].items() if v)
    page.click(f'#chart-category .bar[data-key="{category}"]')
    page.wait_for_selector('#drawer[data-state="ready"]')
    assert page.get_attribute("#drawer", "data-total") == str(n)


def test_the_charts_are_drawn_to_scale(visit, services):
    """The drawing itself, on the page's own functions: bars proportional, the long tail summed."""
    page = open_ready(visit, services, "year=2020").page
    result = page.evaluate(
        """() => {
        const { charts } = window.ShangliangDashboard;
        const box = document.createElement('div');
        document.body.append(box);
        const attr = (name) => [...box.querySelectorAll('.bar rect')]
            .map(r => Number(r.getAttribute(name)));
        const bars = () => [...box.querySelectorAll('.bar')]
            .map(g => [g.dataset.key, Number(g.dataset.value)]);
        const months = Array.from({length: 12}, (_, i) => i + 1);
        box.innerHTML = charts.columnChart(
            months.map(m => ({key: String(m), label: m + '月', value: m % 4})));
        const columns = attr('height');
        box.innerHTML = charts.barChart(
            Array.from({length: 12}, (_, i) => ({key: 'c' + i, label: '类别' + i, value: 12 - i})));
        const tail = bars();
        box.innerHTML = charts.funnelChart({submitted: 5, topic: 3, resolved: 2, rejected: 1});
        const funnel = bars();
        const funnelWidths = attr('width');
        const note = box.textContent;
        box.innerHTML = charts.barChart([]);
        const empty = box.textContent;
        box.remove();
        return { columns, bars: tail, funnel, funnelWidths, note, empty };
    }"""
    )
    columns = result["columns"]
    assert len(columns) == 12
    assert columns[3] == columns[7] == columns[11] == 0
    assert columns[0] > 0
    assert columns[2] == pytest.approx(3 * columns[0])
    assert result["bars"][:3] == [["c0", 12], ["c1", 11], ["c2", 10]]
    assert len(result["bars"]) == 10
    assert result["bars"][-1] == ["", sum(range(1, 4))]  # the three smallest, as "其他"
    # Nested stages: collected ⊇ screened ⊇ taken up ⊇ resolved ⊇ closed; a rejected issue
    # is screened but not taken up, and is named beside the funnel.
    assert result["funnel"] == [
        ["submitted", 11],
        ["screened", 6],
        ["taken_up", 5],
        ["resolved", 2],
        ["closed", 0],
    ]
    widths = result["funnelWidths"]
    assert widths[0] > widths[1] > widths[2] > widths[3] > widths[4]
    assert widths[1] == pytest.approx(6 / 11 * widths[0])
    assert "不予采纳 1" in result["note"]
    assert result["empty"] == "暂无数据"


def test_the_closing_sentence_rounds_as_the_report_does(visit, services):
    page = open_ready(visit, services, "year=2020").page
    written = page.evaluate(
        "[23, 99, 100, 120, 127, 312, 1137, 1100, 12345].map("
        "n => window.ShangliangDashboard.approx(n, 'zh'))"
    )
    assert written == ["23", "99", "100", "120", "120余", "310余", "1,100余", "1,100", "12,000余"]
    assert page.evaluate("window.ShangliangDashboard.approx(1137, 'en')") == "over 1,100"


def test_export_buttons_fetch_the_apis_spreadsheet_with_the_token(visit, services):
    page = open_ready(visit, services, "year=2020").page
    for format in ("xlsx", "csv"):
        href = page.get_attribute(f"#export-{format}", "href")
        assert re.fullmatch(rf"/statistics/2020\?format={format}", href), href
    answer = services.get("/statistics/2020", format="xlsx")
    if answer.status_code == 200 and "spreadsheet" in answer.headers.get("content-type", ""):
        with page.expect_download() as download:
            page.click("#export-xlsx")
        saved = Path(download.value.path())
        assert saved.read_bytes()[:2] == b"PK"
        assert download.value.suggested_filename.endswith(".xlsx")
    else:
        # Today's API answers JSON whatever the format: the page says the export failed.
        page.click("#export-xlsx")
        page.wait_for_selector("#toast:not([hidden])")
        assert "导出失败" in page.inner_text("#toast")


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(services):
    page = httpx.get(f"{services.projections}/dashboard", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    script = httpx.get(f"{services.projections}/dashboard/static/dashboard.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for outside in (
        "../dashboard.py",
        "..%2Fdashboard.py",
        "nothing.js",
        "../../../shared/auth.py",
    ):
        answer = httpx.get(f"{services.projections}/dashboard/static/{outside}", timeout=10)
        assert answer.status_code == 404, outside


def test_without_a_year_the_page_opens_on_the_latest_year_that_has_data(visit, services):
    # The prefecture's data runs to 2021; Tumen's only to 2020 (today is later than both).
    for office, latest in (("yanbian", 2021), ("tumen", 2020)):
        opened = visit(f"?token={services.mint(office, 'viewer')}")
        page = opened.page
        page.wait_for_selector(READY, timeout=20000)
        assert page.input_value("#year") == str(latest), office
        assert f"year={latest}" in page.url
        collected = page.inner_text('[data-figure="issues_collected"][data-office="total"]')
        assert collected != "0", office
        assert opened.errors == []
