"""Staff at the workbench (工作台) in Chromium: each role logs in and does its work by clicking,
on the stack `shangliang up` starts; the refusals show a clear page and store nothing.

Accounts are made as an administrator makes them, with `shangliang user add` against the
stack's own store (SQLite in its data folder, or its PostgreSQL schema).
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from services.console.session import COOKIE, Sessions
from shared.settings import Settings
from tests.e2e.test_dashboard import (
    OUTPUT,
    browser,  # noqa: F401 (the module's Chromium)
)
from tests.support.http import bearer, issue_body
from tests.support.stack import ROOT, RunningStack, shangliang

HOUSING = "延吉市住房和城乡建设局"
URBAN = "延吉市城市管理局"
PASSWORD = "console-e2e-password"
ACCOUNTS = {
    "clerk-li": ("yanji", ["clerk"], None),
    "leader-wang": ("yanji", ["leader"], None),
    "supervisor-zhao": ("yanji", ["supervisor"], None),
    "housing-chen": ("yanji", ["department"], HOUSING),
    "viewer-sun": ("yanji", ["viewer"], None),
    "meetings-liu": ("yanji", ["meetings"], None),
    "guess-target": ("yanji", ["clerk"], None),
}
WAIT_MS = 20_000


def run_cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shangliang(*args),
        cwd=ROOT,
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def event_store() -> dict[str, str]:
    """SQLite stores only (the suite's ten minutes): the console only calls the services'
    APIs, and its accounts are tested on both stores in tests/integration."""
    return {}


@pytest.fixture(scope="module")
def staff(stack: RunningStack) -> RunningStack:
    for name, (office, roles, department) in ACCOUNTS.items():
        args = ["user", "add", name, "--office", office, "--password", PASSWORD]
        args += [arg for role in roles for arg in ("--role", role)]
        if department:
            args += ["--department", department]
        done = run_cli(stack, *args)
        assert done.returncode == 0, done.stderr
    listed = run_cli(stack, "user", "list")
    assert all(name in listed.stdout for name in ACCOUNTS), listed.stdout
    assert PASSWORD not in listed.stdout
    return stack


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:  # noqa: F811
    opened: list[BrowserContext] = []

    def new(width: int = 1280) -> BrowserContext:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", accept_downloads=True
        )
        opened.append(context)
        return context

    try:
        yield new
    finally:
        for context in opened:
            context.close()


def log_in(
    context: BrowserContext, stack: RunningStack, name: str, password: str = PASSWORD
) -> Page:
    page = context.new_page()
    page.goto(f"{stack.console}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    return page


def as_clerk(stack: RunningStack, mint: Callable[..., str]) -> dict[str, str]:
    return bearer(mint("yanji", "clerk"))


def screened_issue(
    stack: RunningStack, mint: Callable[..., str], screening: dict[str, str], **fields: str
) -> str:
    """An issue submitted by the clerk and screened by the leader over the APIs; its id."""
    issue = httpx.post(
        f"{stack.intake}/issues",
        json=issue_body(**fields),
        headers=as_clerk(stack, mint),
        timeout=10,
    )
    assert issue.status_code == 201, issue.text
    issue_id = str(issue.json()["id"])
    screened = httpx.post(
        f"{stack.intake}/issues/{issue_id}/screening",
        json=screening,
        headers=bearer(mint("yanji", "leader")),
        timeout=10,
    )
    assert screened.status_code == 200, screened.text
    return issue_id


def issue_count(stack: RunningStack, mint: Callable[..., str], office: str = "yanji") -> int:
    found = httpx.get(
        f"{stack.intake}/issues",
        params={"office": office},
        headers=bearer(mint(office, "viewer")),
        timeout=10,
    )
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def snapshot(page: Page, name: str) -> None:
    """A picture of the page for people to look at (test-output/, the source of docs/)."""
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"console-{name}.png"), full_page=True)


def reload_until(page: Page, selector: str, what: str, timeout: float = 20.0) -> None:
    """Reload until `selector` is on the page: another service is still catching up."""
    deadline = time.monotonic() + timeout
    while page.locator(selector).count() == 0:
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}\n{page.inner_text('main')}")
        page.wait_for_timeout(300)
        page.reload()


# --- one resident's problem, all the way, by clicking -------------------------------------------


def test_a_problem_goes_from_the_clerks_form_to_resolved_on_the_dashboard(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    stack = staff
    title = f"小区路灯不亮 {uuid.uuid4().hex[:6]}"

    clerk = log_in(contexts(), stack, "clerk-li")
    clerk.get_by_role("link", name="登记问题").first.click()
    clerk.get_by_label("标题").fill(title)
    clerk.get_by_label("问题描述").fill("进学街道某小区路灯夜间不亮")
    clerk.get_by_label("社区", exact=True).fill("进学社区")
    clerk.get_by_label("姓名").fill("居民张")
    snapshot(clerk, "issue-form")
    clerk.get_by_role("button", name="提交").click()
    expect(clerk.get_by_role("heading", name=title)).to_be_visible(timeout=WAIT_MS)
    issue_id = clerk.url.split("/issues/")[1].split("?")[0]
    assert "居民张" in clerk.inner_text("main"), "a clerk of the office sees the reporter"

    leader = log_in(contexts(), stack, "leader-wang")
    leader.get_by_role("link", name="待筛选").first.click()
    expect(leader.get_by_role("heading", name=re.compile("待筛选问题"))).to_be_visible()
    snapshot(leader, "screening-queue")
    leader.get_by_role("link", name=title).click()
    # The leading group flags the key problem (重点难点问题) at screening.
    leader.get_by_label("列为重点难点问题").check()
    leader.get_by_label("转承办单位").check()
    leader.get_by_label("承办单位（转办）").fill(HOUSING)
    leader.get_by_label("办理期限（转办）").fill((date.today() + timedelta(days=30)).isoformat())
    leader.get_by_role("button", name="确定").click()
    expect(leader.locator(".notice")).to_contain_text("已保存", timeout=WAIT_MS)
    expect(leader.locator('[data-key-problem="true"]')).to_be_visible()

    supervisor = log_in(contexts(), stack, "supervisor-zhao")
    supervisor.goto(f"{stack.console}/cases?department={HOUSING}")
    reload_until(supervisor, f"tbody a:text('{HOUSING}')", "supervision opened the case")
    supervisor.get_by_role("link", name=HOUSING).first.click()
    expect(supervisor).to_have_url(re.compile(r"/cases/[0-9a-f-]{36}$"), timeout=WAIT_MS)
    case_url = supervisor.url
    supervisor.get_by_label("办理要求").fill("请于期限内修复路灯并报告")
    supervisor.get_by_label("或：工作日数").fill("10")
    snapshot(supervisor, "case-letter")
    supervisor.get_by_role("button", name="发函").click()
    expect(supervisor.locator('[data-status="letter_issued"]')).to_be_visible(timeout=WAIT_MS)
    with supervisor.expect_download() as download:
        supervisor.get_by_role("link", name="下载 DOCX").click()
    assert download.value.suggested_filename.endswith(".docx")

    department = log_in(contexts(), stack, "housing-chen")
    department.get_by_role("link", name="待办督办件").first.click()
    expect(department.get_by_role("heading", name=re.compile("本单位督办件"))).to_be_visible()
    snapshot(department, "department-inbox")
    department.get_by_role("link", name=HOUSING).first.click()
    department.get_by_role("button", name="签收").click()
    expect(department.locator('[data-status="acknowledged"]')).to_be_visible(timeout=WAIT_MS)
    department.get_by_label("进展情况").fill("已安排维修")
    department.get_by_role("button", name="报告进展").click()
    expect(department.locator('[data-status="in_progress"]')).to_be_visible(timeout=WAIT_MS)
    department.get_by_label("办结情况").fill("路灯已修复")
    department.get_by_role("button", name="报告办结").click()
    expect(department.locator('[data-status="completed"]')).to_be_visible(timeout=WAIT_MS)

    supervisor.goto(case_url)
    supervisor.get_by_role("button", name="确认办结").click()
    expect(supervisor.locator('[data-status="verified"]')).to_be_visible(timeout=WAIT_MS)

    clerk.goto(f"{stack.console}/issues/{issue_id}")
    reload_until(clerk, '[data-status="resolved"]', "the issue is resolved in the projections")
    snapshot(clerk, "issue-timeline")
    steps = clerk.locator(".timeline li").evaluate_all("els => els.map(e => e.dataset.step)")
    assert steps[0] == "submitted" and "case_verified" in steps and "resolved" in steps, steps
    clerk.get_by_role("link", name="在统计看板中查看它计入的数字").click()
    # The link opens the drill-down of the figure the issue counts in, with the issue in it.
    drawer = clerk.locator("#drawer")
    expect(drawer).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    expect(clerk.locator("#drawer-title")).to_contain_text("重点难点问题得到解决")
    expect(drawer).to_contain_text(title)
    expect(clerk.locator("#office")).to_have_value("yanji")
    clerk.keyboard.press("Escape")
    resolved = clerk.locator('#cards [data-figure="issues_resolved"][data-office="yanji"]')
    expect(resolved).to_have_text("1", timeout=WAIT_MS)
    expect(
        clerk.locator('#cards [data-figure="key_problems_resolved"][data-office="yanji"]')
    ).to_have_text("1")


# --- each role's own work ----------------------------------------------------------------------


def test_a_clerk_records_an_activity_picking_members_and_imports_a_spreadsheet(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    stack = staff
    for name in ("金委员", "朴委员", "李委员"):
        person = httpx.post(
            f"{stack.meetings}/people",
            json={"name": name, "kind": "member"},
            headers=bearer(mint("yanji", "meetings")),
            timeout=10,
        )
        assert person.status_code in (200, 201), person.text
    clerk = log_in(contexts(), stack, "clerk-li")
    clerk.get_by_role("link", name="记录活动").first.click()
    clerk.get_by_label("社区", exact=True).fill("进学社区")
    clerk.get_by_label("金委员").check()
    clerk.get_by_label("按姓名搜索").fill("朴")
    expect(clerk.get_by_label("李委员")).to_have_count(0, timeout=WAIT_MS)
    clerk.get_by_label("朴委员").check()
    expect(clerk.get_by_label("金委员")).to_be_checked()
    clerk.get_by_role("button", name="保存").click()
    expect(clerk.locator(".notice")).to_contain_text("参加委员 2 人次", timeout=WAIT_MS)

    sheet = "编号,标题,内容,类别,反映时间\nE2E-1,井盖缺失,路口井盖缺失,城市管理,2020-05-01\n"
    sheet += "E2E-2,,没有标题,城市管理,2020-05-02\n"
    clerk.get_by_role("link", name="表格导入").first.click()
    clerk.get_by_label("文件（.xlsx 或 .csv）").set_input_files(
        {"name": "issues.csv", "mimeType": "text/csv", "buffer": sheet.encode()}
    )
    clerk.get_by_role("button", name="导入").click()
    expect(clerk.locator('[data-count="errors"]')).to_have_text("1", timeout=WAIT_MS)
    expect(clerk.locator('[data-count="stored"]')).to_have_text("1")
    expect(clerk.locator(".result td").first).to_have_text("3")

    clerk.get_by_role("link", name="问题清单").first.click()
    clerk.get_by_label("年度").fill("2020")
    clerk.get_by_label("月份").fill("5")
    clerk.get_by_role("button", name="筛选").click()
    expect(clerk.get_by_role("link", name="井盖缺失")).to_be_visible(timeout=WAIT_MS)


def test_meetings_staff_plan_a_meeting_see_refusals_by_the_field_hold_and_conclude_it(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    stack = staff
    organiser = bearer(mint("yanji", "meetings"))
    tag = uuid.uuid4().hex[:6]
    for path, body in (
        ("/venues", {"name": f"议事厅 {tag}"}),
        ("/venues", {"name": f"社区会议室 {tag}"}),
        ("/departments", {"name": HOUSING}),
        ("/people", {"person_id": f"expert-{tag}", "name": f"专家{tag}", "kind": "expert"}),
    ):
        answer = httpx.post(f"{stack.meetings}{path}", json=body, headers=organiser, timeout=10)
        assert answer.status_code in (200, 201), answer.text
    screened_issue(stack, mint, {"decision": "topic"}, title=f"停车难 {tag}")

    staffer = log_in(contexts(), stack, "meetings-liu")
    start = (date.today() - timedelta(days=1)).isoformat()
    planned = (date.today() - timedelta(days=10)).isoformat()

    def plan(title: str, venue: str) -> None:
        staffer.goto(f"{stack.console}/meetings/new")
        staffer.get_by_label("专题协商会").check()
        staffer.get_by_label("会议名称").fill(title)
        staffer.get_by_label("协商主题").fill("停车难")
        staffer.get_by_label("开始时间").fill(f"{start}T14:00:00")
        staffer.get_by_label("结束时间").fill(f"{start}T16:00:00")
        staffer.get_by_label("地点（书面协商不填）").select_option(venue)
        staffer.get_by_label(re.compile("筹备时间")).fill(f"{planned}T09:00:00")
        staffer.get_by_role("button", name="筹备").click()

    plan(f"停车专题协商会 {tag}", f"议事厅 {tag}")
    expect(staffer.locator('[data-status="planned"]')).to_be_visible(timeout=WAIT_MS)
    first = staffer.url.split("?")[0]
    assert (
        "/calendar/yanji.ics?token=" in staffer.get_by_label(re.compile("日历订阅")).input_value()
    )
    staffer.get_by_label(re.compile("加入议题")).select_option(label=f"停车难 {tag}")
    staffer.get_by_role("button", name="加入议题").click()
    expect(staffer.get_by_role("link", name=f"停车难 {tag}")).to_be_visible(timeout=WAIT_MS)
    staffer.get_by_label(re.compile("邀请委员")).select_option(value=f"expert-{tag}")
    staffer.get_by_role("button", name="邀请").click()
    expect(staffer.locator("main")).to_contain_text(f"专家{tag} · expert", timeout=WAIT_MS)

    plan(f"同一时间同一地点 {tag}", f"议事厅 {tag}")
    expect(staffer.locator("#e-venue")).to_contain_text(f"停车专题协商会 {tag}", timeout=WAIT_MS)
    expect(staffer.get_by_label("会议名称")).to_have_value(f"同一时间同一地点 {tag}")
    plan(f"同一时间另一地点 {tag}", f"社区会议室 {tag}")
    expect(staffer.locator('[data-status="planned"]')).to_be_visible(timeout=WAIT_MS)
    staffer.get_by_label(re.compile("加入议题")).select_option(label=f"停车难 {tag}")
    staffer.get_by_role("button", name="加入议题").click()
    expect(staffer.locator("#e-issue_id")).to_be_visible(timeout=WAIT_MS)
    staffer.get_by_label(re.compile("邀请委员")).select_option(value=f"expert-{tag}")
    staffer.get_by_role("button", name="邀请").click()
    expect(staffer.locator("#e-person_id")).to_contain_text(
        f"停车专题协商会 {tag}", timeout=WAIT_MS
    )
    staffer.locator("summary", has_text="取消会议").click()
    staffer.get_by_label("取消理由").fill("与专题会冲突")
    staffer.get_by_role("button", name="取消会议").click()
    expect(staffer.locator('[data-status="cancelled"]')).to_be_visible(timeout=WAIT_MS)

    staffer.goto(first)
    staffer.get_by_role("button", name="记录召开").click()
    expect(staffer.locator('[data-status="held"]')).to_be_visible(timeout=WAIT_MS)
    staffer.get_by_label(f"停车难 {tag}").first.check()
    staffer.get_by_label("意见建议").first.fill("增设停车位")
    staffer.get_by_label("承办单位").first.select_option(HOUSING)
    staffer.get_by_label("办理期限").first.fill((date.today() + timedelta(days=60)).isoformat())
    staffer.get_by_role("button", name="形成成果").click()
    expect(staffer.locator('[data-status="concluded"]')).to_be_visible(timeout=WAIT_MS)
    expect(staffer.locator("main")).to_contain_text(f"增设停车位 → {HOUSING}")


def test_a_leader_finds_a_duplicates_original_by_title_and_flags_from_the_queue(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    made = {}
    # The queued one is the oldest, so that it is on the queue's first page.
    for name, year in (("original", 2019), ("duplicate", 2020), ("queued", 2001)):
        answer = httpx.post(
            f"{staff.intake}/issues",
            json=issue_body(title=f"井盖缺失 {name} {tag}", year=year),
            headers=as_clerk(staff, mint),
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]

    def read(issue_id: str) -> dict[str, Any]:
        viewer = bearer(mint("yanji", "viewer"))
        return httpx.get(f"{staff.intake}/issues/{issue_id}", headers=viewer, timeout=10).json()

    leader = log_in(contexts(), staff, "leader-wang")
    leader.goto(f"{staff.console}/issues/{made['duplicate']}")
    leader.get_by_label("重复问题").check()
    leader.get_by_label(re.compile("原问题（重复）")).fill(f"original {tag}")
    leader.get_by_label(re.compile(f"井盖缺失 original {tag}")).check(timeout=WAIT_MS)
    expect(leader.get_by_label(re.compile(f"duplicate {tag}"))).to_have_count(0)
    leader.get_by_role("button", name="确定").click()
    expect(leader.locator(".notice")).to_contain_text("已保存", timeout=WAIT_MS)
    assert read(made["duplicate"])["duplicate_of"] == made["original"]

    leader.goto(f"{staff.console}/screening?page=1")
    row = leader.locator("li", has=leader.get_by_role("link", name=f"井盖缺失 queued {tag}"))
    row.get_by_label("重点难点").check()
    row.get_by_role("button", name="列为议题").click()
    expect(leader.locator(".notice")).to_contain_text("已保存", timeout=WAIT_MS)
    issue = read(made["queued"])
    assert (issue["status"], issue["key_problem"]) == ("topic", True)


def test_a_departments_inbox_pages_through_its_cases_nearest_deadline_first(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    # Made farthest deadline first: the inbox must reorder them, across its pages of 20.
    for days in range(60, 39, -1):
        screened_issue(
            staff,
            mint,
            {
                "decision": "refer",
                "department": HOUSING,
                "deadline": (date.today() + timedelta(days=days)).isoformat(),
            },
            title=f"排水不畅 {tag} {days}",
        )
    nearest = (date.today() + timedelta(days=40)).isoformat()
    farthest = (date.today() + timedelta(days=60)).isoformat()

    department = log_in(contexts(), staff, "housing-chen")
    expect(department.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)
    department.goto(f"{staff.console}/cases?page=2")
    reload_until(department, f"tbody td:text-is('{farthest}')", "the last case is on page 2")
    department.get_by_role("link", name="‹").click()
    expect(department.locator(".pager span")).to_have_text(re.compile(r"^1 / "), timeout=WAIT_MS)
    deadlines = department.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert len(deadlines) == 20 and nearest in deadlines and farthest not in deadlines, deadlines
    open_deadlines = [d for d in deadlines if d != "—"]
    assert open_deadlines == sorted(open_deadlines), deadlines


def test_a_clerk_calls_back_the_resident_from_the_due_list_and_a_bad_call_stores_nothing(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    made = {}
    # Answered on the spot in 2020: resolved then, so long past the working days of the setting.
    for name in ("satisfied", "refused", "unsatisfied"):
        made[name] = screened_issue(
            staff,
            mint,
            {
                "decision": "answered",
                "answer": "社区当场联系物业维修",
                "screened_at": "2020-06-05T10:00:00",
            },
            title=f"楼道灯不亮 {name} {tag}",
        )

    def read(issue_id: str) -> dict[str, Any]:
        viewer = bearer(mint("yanji", "viewer"))
        return httpx.get(f"{staff.intake}/issues/{issue_id}", headers=viewer, timeout=10).json()

    clerk = log_in(contexts(), staff, "clerk-li")
    clerk.get_by_role("link", name="待回访").first.click()
    expect(clerk.get_by_role("heading", name=re.compile("待回访"))).to_be_visible(timeout=WAIT_MS)
    row = clerk.locator(f'tr[data-issue="{made["satisfied"]}"]')
    expect(row).to_contain_text("城市管理")
    expect(row).to_contain_text("2020-06-05 10:00")
    snapshot(clerk, "callbacks-due")

    # Reached but no satisfaction: intake's reason by the field, and nothing stored.
    clerk.get_by_role("link", name=f"楼道灯不亮 refused {tag}").click()
    clerk.get_by_label("联系上", exact=True).check()
    clerk.get_by_label("回访记录").fill("居民说还行")
    clerk.get_by_role("button", name="记录回访").click()
    expect(clerk.locator("#e-satisfaction")).to_contain_text("满意度", timeout=WAIT_MS)
    expect(clerk.get_by_label("回访记录")).to_have_value("居民说还行")
    assert read(made["refused"])["callbacks"] == []

    # By the keyboard alone: reached, satisfied, a note, sent with Enter on the button.
    clerk.goto(f"{staff.console}/callbacks")
    clerk.get_by_role("link", name=f"楼道灯不亮 satisfied {tag}").click()
    clerk.get_by_label("联系上", exact=True).focus()
    clerk.keyboard.press("Space")
    clerk.keyboard.press("Tab")  # to the satisfaction group, at its first choice
    clerk.keyboard.press("Space")
    expect(clerk.get_by_label("满意", exact=True)).to_be_checked()
    clerk.keyboard.press("Tab")
    clerk.keyboard.type("居民表示灯已修好")
    clerk.keyboard.press("Tab")
    clerk.keyboard.press("Enter")
    expect(clerk.locator(".notice")).to_contain_text("已记录回访", timeout=WAIT_MS)
    expect(clerk.locator(".callbacks")).to_contain_text("居民表示灯已修好")
    (call,) = read(made["satisfied"])["callbacks"]
    assert (call["reached"], call["satisfaction"]) == (True, "satisfied")

    clerk.get_by_role("link", name="返回待回访清单").click()
    expect(clerk.locator(f'tr[data-issue="{made["refused"]}"]')).to_be_visible(timeout=WAIT_MS)
    expect(clerk.locator(f'tr[data-issue="{made["satisfied"]}"]')).to_have_count(0)

    clerk.get_by_role("link", name=f"楼道灯不亮 unsatisfied {tag}").click()
    clerk.get_by_label("联系上", exact=True).check()
    clerk.get_by_label("不满意").check()
    clerk.get_by_role("button", name="记录回访").click()
    expect(clerk.locator("[data-reopened]")).to_contain_text("重新打开", timeout=WAIT_MS)
    assert read(made["unsatisfied"])["status"] == "submitted"


def test_a_refused_write_shows_the_apis_reason_by_the_field_and_keeps_what_was_typed(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    clerk = log_in(contexts(), staff, "clerk-li")
    clerk.get_by_role("link", name="登记问题").first.click()
    clerk.get_by_label("标题").fill("公交站台缺少遮雨棚")
    clerk.get_by_label("问题描述").fill("站台没有遮雨棚")
    clerk.get_by_label("收集时间").fill("2099-12-31T10:00")
    clerk.get_by_role("button", name="提交").click()
    expect(clerk.locator("#e-submitted_at")).to_be_visible(timeout=WAIT_MS)
    expect(clerk.get_by_label("标题")).to_have_value("公交站台缺少遮雨棚")
    expect(clerk.get_by_label("问题描述")).to_have_value("站台没有遮雨棚")


def test_the_pages_work_on_a_phone_with_the_keyboard_alone_and_in_english(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    page = contexts(width=375).new_page()
    page.goto(f"{staff.console}/issues/new")
    page.keyboard.type("clerk-li")  # the name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="登记问题")).to_be_visible(timeout=WAIT_MS)
    for path in ("/issues/new", "/issues", "/activities/new", "/"):
        page.goto(f"{staff.console}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide on a 375 px phone"
    snapshot(page, "phone-home")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Workbench")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)


# --- refusals: a clear page, nothing stored ----------------------------------------------------


def test_a_wrong_password_is_refused_and_repeated_ones_lock_the_account(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    context = contexts()
    page = log_in(context, staff, "clerk-li", "not-the-password")
    expect(page.locator("#e-password")).to_contain_text("用户名或密码不正确")
    assert COOKIE not in {c["name"] for c in context.cookies()}
    for _ in range(5):
        page = log_in(context, staff, "guess-target", "still-not-it")
    page = log_in(context, staff, "guess-target")
    expect(page.locator("#e-password")).to_contain_text("账号已锁定")
    done = run_cli(staff, "user", "reset-password", "guess-target", "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    page = log_in(context, staff, "guess-target")
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)


def test_an_expired_session_goes_back_to_the_login_page(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    sessions = Sessions(Settings(), ttl_seconds=60)
    _, expired = sessions.start("clerk-li", now=time.time() - 3600)
    context = contexts()
    context.add_cookies([{"name": COOKIE, "value": expired, "url": staff.console}])
    page = context.new_page()
    page.goto(f"{staff.console}/issues/new")
    expect(page).to_have_url(re.compile(r"/login\?next=/issues/new&expired=1"))
    expect(page.locator(".notice")).to_contain_text("登录已过期")


def test_after_logging_out_the_old_cookie_opens_nothing(
    staff: RunningStack, contexts: Callable[..., BrowserContext]
) -> None:
    context = contexts()
    page = log_in(context, staff, "viewer-sun")
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)
    (cookie,) = [c for c in context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/login"), timeout=WAIT_MS)
    copied = contexts()
    copied.add_cookies([{"name": COOKIE, "value": cookie["value"], "url": staff.console}])
    elsewhere = copied.new_page()
    elsewhere.goto(f"{staff.console}/issues")
    expect(elsewhere).to_have_url(re.compile(r"/login\?next=/issues"))


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    page = log_in(contexts(), staff, "clerk-li")
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)
    before = issue_count(staff, mint)
    fields: dict[str, Any] = {
        "title": "跨站伪造",
        "description": "没有安全令牌的表单",
        "category": "城市管理",
        "submitted_at": "2020-06-01T10:00",
    }
    answer = page.request.post(f"{staff.console}/issues/new", form=fields)
    assert answer.status == 403
    assert "安全令牌" in answer.text()
    forged = page.request.post(f"{staff.console}/issues/new", form={**fields, "csrf": "forged"})
    assert forged.status == 403
    assert issue_count(staff, mint) == before


def test_a_department_user_cannot_open_another_departments_case(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    issue_id = screened_issue(
        staff,
        mint,
        {
            "decision": "refer",
            "department": URBAN,
            "screened_at": "2020-06-05T10:00:00",
            "deadline": "2020-07-31",
        },
    )
    case_id = wait_for_case(staff, mint, issue_id)
    page = log_in(contexts(), staff, "housing-chen")
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)
    answer = page.goto(f"{staff.console}/cases/{case_id}")
    assert answer is not None and answer.status == 404
    expect(page.locator(".refusal")).to_contain_text("无权查看")
    assert URBAN not in page.inner_text("main")
    refused = page.request.post(
        f"{staff.console}/cases/{case_id}/acknowledgement",
        form={"csrf": csrf_of(page, staff)},
    )
    assert refused.status == 404
    case = httpx.get(
        f"{staff.supervision}/cases/{case_id}", headers=bearer(mint("yanji", "viewer")), timeout=10
    )
    assert case.json()["status"] == "opened", "nothing was stored"


def test_a_county_user_cannot_open_another_countys_issue(
    staff: RunningStack, contexts: Callable[..., BrowserContext], mint: Callable[..., str]
) -> None:
    issue = httpx.post(
        f"{staff.intake}/issues",
        json=issue_body("tumen"),
        headers=bearer(mint("tumen", "clerk")),
        timeout=10,
    )
    assert issue.status_code == 201, issue.text
    page = log_in(contexts(), staff, "leader-wang")
    expect(page.get_by_role("heading", name="工作台")).to_be_visible(timeout=WAIT_MS)
    answer = page.goto(f"{staff.console}/issues/{issue.json()['id']}")
    assert answer is not None and answer.status == 404
    expect(page.locator(".refusal")).to_contain_text("找不到这条记录")
    refused = page.request.post(
        f"{staff.console}/issues/{issue.json()['id']}/screening",
        form={"csrf": csrf_of(page, staff), "decision": "rejected", "reason": "试探"},
    )
    assert refused.status == 404
    after = httpx.get(
        f"{staff.intake}/issues/{issue.json()['id']}",
        headers=bearer(mint("tumen", "viewer")),
        timeout=10,
    )
    assert after.json()["status"] == "submitted", "nothing was stored"


def csrf_of(page: Page, stack: RunningStack) -> str:
    page.goto(f"{stack.console}/")
    return str(page.locator('input[name="csrf"]').first.get_attribute("value"))


def wait_for_case(stack: RunningStack, mint: Callable[..., str], issue_id: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{stack.supervision}/cases",
            params={"issue_id": issue_id},
            headers=bearer(mint("yanji", "viewer")),
            timeout=10,
        ).json()
        if found["items"]:
            return str(found["items"][0]["id"])
        time.sleep(0.1)
    pytest.fail("supervision opened no case for the referral")
