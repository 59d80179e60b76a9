"""The `shangliang` command (命令行): mint tokens, start the stack, load the demo, import
spreadsheets."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

# Only light imports here: the heavy ones (pydantic, FastAPI, httpx) load inside `main`, where a
# Ctrl-C pressed during start-up is caught instead of ending in a traceback.
if TYPE_CHECKING:
    from nats.aio.client import Client
    from pydantic import ValidationError

    from shared.settings import NatsSettings, Settings
    from tools.launcher import Stack

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130
DEMO_SCAN_VARIABLE = "SHANGLIANG_SUPERVISION_SCAN_INTERVAL_SECONDS"
CONNECT_TIMEOUT_SECONDS = 10.0


def _error(message: str) -> None:
    print(f"错误 / error: {message}", file=sys.stderr)


def _settings_problem(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
        for e in error.errors()
    )
    return f"配置无效 / invalid configuration ({error.title}, SHANGLIANG_* variables): {problems}"


def token(args: argparse.Namespace) -> int:
    """Print a signed bearer token alone on stdout, so `TOKEN=$(shangliang token ...)` works."""
    from pydantic import ValidationError

    from shared.auth import Authenticator, TokenError
    from shared.settings import Settings

    if args.ttl is not None and args.ttl <= 0:
        _error("--ttl 必须大于 0 / --ttl must be a positive number of seconds")
        return BAD_INPUT
    try:
        minted = Authenticator(Settings()).mint(
            args.office,
            args.role,
            subject=args.subject,
            department=args.department,
            ttl_seconds=args.ttl,
        )
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    except TokenError as error:
        _error(str(error))
        return BAD_INPUT
    print(minted)
    return OK


def user(args: argparse.Namespace) -> int:
    """Manage the workbench's staff accounts (工作人员账号) in the configured store."""
    import getpass

    from pydantic import ValidationError

    from services.console.accounts import AccountError
    from services.console.main import accounts_of
    from services.console.settings import ConsoleSettings
    from shared.settings import Settings

    try:
        accounts = accounts_of(Settings(), ConsoleSettings())
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    try:
        if args.action == "list":
            for account in accounts.store.all():
                state = "停用 / disabled" if account.disabled else "启用 / enabled"
                department = f" {account.department}" if account.department else ""
                print(
                    f"{account.name}\t{account.office}\t{','.join(account.roles)}\t{state}"
                    f"{department}"
                )
            return OK
        if args.action == "disable":
            accounts.disable(args.name)
            print(f"已停用 / disabled: {args.name}")
            return OK
        password = args.password or os.environ.get("SHANGLIANG_USER_PASSWORD")
        if password is None:
            password = getpass.getpass("密码 / password: ")
        if args.action == "add":
            accounts.add(args.name, args.office, args.role, password, args.department)
            print(f"已添加 / added: {args.name}")
        else:
            accounts.reset_password(args.name, password)
            print(f"已重设密码 / password reset: {args.name}")
        return OK
    except AccountError as error:
        _error(f"{error.field}: {error}")
        return BAD_INPUT


def up(args: argparse.Namespace) -> int:
    """Start everything; with `demo`, also load the scenario and print the statistics."""
    from pydantic import ValidationError

    from demo.load import DemoError, DemoInterrupted
    from shared.settings import Settings
    from tools.launcher import SERVICES, Interrupted, LaunchError, Stack

    demo = args.command == "demo"
    if demo:
        from demo.content import DemoDataMissing, content

        try:
            content()
        except DemoDataMissing as error:
            # Said before anything starts: an installed wheel carries no demo data.
            _error(str(error))
            return FAILED
        # The scenario's deadlines fell due in 2020. The loader asks supervision to scan once
        # the whole year is in; a periodic scan falling mid-load would find cases overdue that
        # the load is about to complete on time, so the demo's periodic scan is rare.
        os.environ.setdefault(DEMO_SCAN_VARIABLE, "600")
    try:
        settings = Settings()
        # The demo's notices go to a local mail sink: it must never email anyone.
        stack = Stack(settings, SERVICES, mail_sink=demo or args.mail_sink)
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    stack.stop_on_signals()
    try:
        stack.start()
        _print_addresses(stack)
        if demo:
            _run_demo(stack, settings)
            if args.once:
                return OK
        print("按 Ctrl-C 停止 / press Ctrl-C to stop", flush=True)
        stack.watch()
        return OK
    except (Interrupted, DemoInterrupted):
        return OK
    except (LaunchError, DemoError) as error:
        _error(str(error))
        return FAILED
    finally:
        if stack.started:
            print("正在停止 / stopping ...", flush=True)
            stack.stop()
            print("已停止 / stopped", flush=True)


def _print_addresses(stack: Stack) -> None:
    lines = ["", "已启动 / started:"]
    for service in stack.services:
        lines.append(f"  {service.spec.name} {service.spec.label}")
        if service.spec.name == "console":
            lines.append(f"    页面 / pages  {service.url}/")
            continue
        lines += [f"    API   {service.url}", f"    docs  {service.url}/docs"]
    lines += [
        f"  NATS    {stack.nats.url}",
        f"  数据 / data   {stack.data_dir}",
        f"  日志 / logs   {stack.data_dir / 'logs'}",
        "",
        "获取令牌 / get a token:  shangliang token --office yanji --role clerk",
        "",
    ]
    print("\n".join(lines), flush=True)


def _print_demo_accounts(stack: Stack, settings: Settings) -> None:
    from demo.load import demo_accounts
    from services.console.main import accounts_of
    from services.console.settings import ConsoleSettings

    made = demo_accounts(accounts_of(settings, ConsoleSettings()))
    lines = [
        f"工作台 / workbench: {stack.service('console').url}/  (shangliang up)",
        "演示账号 / demo accounts (用户名 / name · 密码 / password · 角色 / role):",
    ]
    for account, password in made:
        department = f" · {account.department}" if account.department else ""
        lines.append(f"  {account.name:<22} {password}  {','.join(account.roles)}{department}")
    print("\n".join(lines) + "\n", flush=True)


def _run_demo(stack: Stack, settings: Settings) -> None:
    from demo.directory import fill_sample_directory
    from demo.load import DemoError, load_scenario
    from demo.records import YEAR
    from demo.table import format_table
    from shared.auth import Authenticator

    fill_sample_directory(stack.service("notifications").url, Authenticator(settings))
    print(f"正在载入 {YEAR} 年试点情景 / loading the {YEAR} pilot scenario ...", flush=True)
    result = load_scenario(
        Authenticator(settings),
        {service.spec.name: service.url for service in stack.services},
        interrupted=stack.stopping.is_set,
        say=lambda text: print(text, flush=True),
    )
    print(
        f"已写入 {result.writes} 次（新建 {result.created}，已存在 {result.existing}）/ "
        f"{result.writes} writes ({result.created} new, {result.existing} already there)\n",
        flush=True,
    )
    print(format_table(result) + "\n", flush=True)
    if result.notices is not None:
        print(result.notices.line(), flush=True)
    if stack.mail_sink is not None:
        sink = stack.mail_sink
        copies = (
            f"（重复 {sink.duplicates} 份未保存 / {sink.duplicates} second copies not kept）"
            if sink.duplicates
            else ""
        )
        print(
            f"通知邮件 / notices by email: {len(sink.messages())} 封 / .eml files{copies} "
            f"in {sink.folder}\n",
            flush=True,
        )
    _print_demo_accounts(stack, settings)
    if not result.ok:
        wrong = ", ".join(r.row.label for r in result.rows if not r.ok)
        raise DemoError(f"统计与情景不符 / the projections differ from the scenario: {wrong}")


def status(args: argparse.Namespace) -> int:
    """Show what the running `shangliang up` supervises: each part's state, restarts and
    last exit (exit 0 when every part runs, 1 otherwise)."""
    from pydantic import ValidationError

    from shared.settings import Settings
    from tools.launcher import read_state

    try:
        data_dir = Settings().data_dir.resolve()
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    state = read_state(data_dir)
    if state is None:
        _error(
            f"数据目录 {data_dir} 没有 shangliang up 的记录 / no shangliang up has run on data "
            f"folder {data_dir} (SHANGLIANG_DATA_DIR)"
        )
        return FAILED
    children = list(state["children"])  # type: ignore[call-overload]
    if args.json:
        print(json.dumps(state, ensure_ascii=False, indent=1))
    else:
        print(f"shangliang up ({state['state']}, 更新于 / updated {state['updated_at']})")
        header = f"{'名称 / name':14} {'状态 / state':10} {'重启 / restarts':>15}"
        print(f"  {header}  上次退出 / last exit")
        for child in children:
            last = "-"
            if child["last_exit"] is not None:
                last = f"code {child['last_exit']} at {child['last_exit_at']}"
            print(f"  {child['name']:14} {child['state']:10} {child['restarts']:>15}  {last}")
    running = state["state"] == "running" and all(c["state"] == "running" for c in children)
    return OK if running else FAILED


def import_file(args: argparse.Namespace) -> int:
    """Send a spreadsheet to the running intake in chunks of rows, with a progress bar."""
    import csv
    import io
    from datetime import date, datetime
    from pathlib import Path

    import httpx
    from tqdm import tqdm

    from services.intake.imports import ImportRefused, read_table

    path = Path(args.file)
    if not path.is_file():
        _error(f"找不到文件 / no such file: {path}")
        return BAD_INPUT
    if args.chunk < 1:
        _error("--chunk 必须大于 0 / --chunk must be a positive number of rows")
        return BAD_INPUT
    try:
        table = read_table(path.read_bytes(), path.name)
    except (ImportRefused, OSError) as error:
        _error(str(error))
        return BAD_INPUT
    if not table:
        _error(f"文件是空的 / the file is empty: {path}")
        return BAD_INPUT
    target = _intake_target(args, "clerk", f"import-{args.office}")
    if target is None:
        return BAD_INPUT
    url, token = target

    def cell(value: object) -> str:
        if isinstance(value, datetime | date):
            return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return "" if value is None else str(value)

    header, rows = table[0], table[1:]
    stored = unchanged = 0
    errors: list[dict[str, object]] = []
    with (
        httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http,
        tqdm(total=len(rows), unit="行", desc=f"导入 {args.kind}", file=sys.stderr) as bar,
    ):
        # Row by row the server would be slow and the bar coarse: each chunk is one request,
        # numbered from its first row so errors name the rows of the user's file.
        for start in range(0, max(len(rows), 1), args.chunk):
            chunk = rows[start : start + args.chunk]
            text = io.StringIO()
            csv.writer(text).writerows([[cell(v) for v in r] for r in [header, *chunk]])
            try:
                response = http.post(
                    f"{url}/imports/{args.kind}",
                    params={"office": args.office, "first_row": start + 2},
                    files={"file": (f"{path.stem}.csv", text.getvalue().encode(), "text/csv")},
                )
            except httpx.HTTPError as error:
                _error(f"无法访问 intake / intake did not answer at {url}: {error!r}")
                return FAILED
            if response.status_code != 200:
                try:
                    message = response.json().get("message") or response.text
                except ValueError:
                    message = response.text
                _error(f"HTTP {response.status_code}: {message}")
                return BAD_INPUT if response.status_code == 422 else FAILED
            answer = response.json()
            stored += answer["stored"]
            unchanged += answer["unchanged"]
            errors += answer["errors"]
            bar.update(len(chunk))
    print(
        f"新增 {stored} 行，已存在 {unchanged} 行，有误 {len(errors)} 行 / "
        f"stored {stored}, unchanged {unchanged}, rejected {len(errors)}"
    )
    for problem in errors:
        print(
            f"  第 {problem['row']} 行 / row {problem['row']} [{problem['column']}]: "
            f"{problem['reason']}"
        )
    return FAILED if errors else OK


def projections(args: argparse.Namespace) -> int:
    """`rebuild`: replay the streams into a new view and switch to it; `check`: compare."""
    import asyncio
    import tempfile
    from pathlib import Path

    from nats.js.errors import NotFoundError
    from pydantic import ValidationError
    from tqdm import tqdm

    from services.projections import rebuild as rebuilding
    from services.projections.stores import view_store
    from shared.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        settings = _reach_nats(settings, "projections")
    except NatsNotFound as error:
        _error(str(error))
        return BAD_INPUT
    store = view_store(settings.model_copy(update={"data_dir": data_dir}))

    async def run() -> int:
        nc = await _connect_once(settings, "projections-cli")
        if isinstance(nc, int):
            return nc
        js = nc.jetstream()
        try:
            if args.action == "rebuild":
                with tqdm(unit=" events", desc="重建 / rebuild") as bar:

                    def show(done: int, total: int) -> None:
                        bar.total = total
                        bar.update(done - bar.n)

                    target = await store.rebuild(js, show)
                print(f"已切换到 / now serving from {target}", flush=True)
                return OK
            live_path = store.current()
            if not store.exists(live_path):
                _error(f"没有投影文件 / no projection at {live_path}")
                return FAILED
            live = store.open(live_path)
            try:
                with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
                    found = await rebuilding.check(js, live, Path(scratch) / "check.sqlite")
            finally:
                live.datastore.close()
            return _report_differences(found, live_path)
        except NotFoundError as error:
            _error(
                f"NATS {settings.nats_url} 上没有所需的事件流：是否连错了服务器，或尚未运行 "
                f"nats-setup？/ a stream is missing on NATS at {settings.nats_url}: is this "
                f"the right server, and was nats-setup run? ({error.description})"
            )
            return BAD_INPUT
        finally:
            await nc.close()

    return asyncio.run(run())


def nats_setup(args: argparse.Namespace) -> int:
    """As NATS's admin user: create every service's stream and the relays' lease bucket (or
    bring them to the current settings), then exit. Run once before the services start."""
    import asyncio

    from pydantic import ValidationError

    from shared.messaging import NatsConfigurationError, connect_as, set_up
    from shared.settings import NatsSettings, Settings

    try:
        settings = NatsSettings()
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    if "nats_url" not in settings.model_fields_set:
        try:
            settings = _reach_nats(Settings(), "admin")
        except ValidationError:
            pass  # production settings without the services' keys: no data folder to look in
        except NatsNotFound as error:
            _error(str(error))
            return BAD_INPUT

    async def run() -> int:
        try:
            async with asyncio.timeout(args.timeout):
                nc = await connect_as(settings, "nats-setup")
                try:
                    await set_up(settings, nc.jetstream())
                finally:
                    await nc.close()
        except NatsConfigurationError as error:
            _error(str(error))
            return BAD_INPUT
        except TimeoutError:
            _error(
                f"{args.timeout:.0f} 秒内未完成：NATS 是否可达，用户是否为 admin？/ not done "
                f"within {args.timeout:.0f}s: is NATS reachable at {settings.nats_url}, and "
                "SHANGLIANG_NATS_USER the admin user with its password?"
            )
            return FAILED
        print("NATS 已就绪 / streams and lease bucket are set up", flush=True)
        return OK

    return asyncio.run(run())


class NatsNotFound(Exception):
    """No NATS server this command was told about; the message is meant for the user."""


def _reach_nats(settings: Settings, user: str) -> Settings:
    """Where a command run by hand finds NATS, and as whom: the configured
    `SHANGLIANG_NATS_URL`, else the embedded server of the data folder (from the running
    launcher's state file, or `SHANGLIANG_EMBEDDED_NATS_PORT`). The data folder's password
    for `user` goes only to a server the command was told of, never to the default port."""

    from pydantic import SecretStr

    from tools.launcher import PASSWORDS_FILE, read_state

    data_dir = settings.data_dir.resolve()
    state = read_state(data_dir)
    embedded_url = None
    if state is not None and state["state"] != "stopped":
        embedded_url = str(state["nats_url"])
    elif settings.embedded_nats_port:
        embedded_url = f"nats://127.0.0.1:{settings.embedded_nats_port}"
    passwords = data_dir / PASSWORDS_FILE
    if "nats_url" not in settings.model_fields_set:
        if embedded_url is None:
            if passwords.exists():
                raise NatsNotFound(
                    f"数据目录 {data_dir} 的 shangliang up 没有在运行；请先启动它，或设置 "
                    f"SHANGLIANG_NATS_URL / the shangliang up of data folder {data_dir} is not "
                    "running: start it, or set SHANGLIANG_NATS_URL"
                )
            return settings
        settings = settings.model_copy(update={"nats_url": embedded_url})
    # The folder's password goes to its own server, or to the one the user named when the
    # folder says of none; never to another server than the folder's.
    if settings.nats_user is not None or embedded_url not in (None, settings.nats_url):
        return settings
    try:
        password = json.loads(passwords.read_text())[user]
    except (OSError, ValueError, KeyError):
        return settings
    return settings.model_copy(update={"nats_user": user, "nats_password": SecretStr(password)})


async def _connect_once(settings: NatsSettings, name: str) -> Client | int:
    """Connect for a command, or say why not and return its exit code: a command gives up
    where a service would keep retrying (refused credentials would retry forever)."""
    import asyncio

    import nats.errors

    from shared.messaging import NatsConfigurationError, connect_as

    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            return await connect_as(settings, name, reconnect=False)
    except NatsConfigurationError as error:
        _error(str(error))
        return BAD_INPUT
    except (OSError, TimeoutError, nats.errors.Error) as error:
        # At the first connect nats-py reports a refused login as a plain protocol error.
        refused = isinstance(error, nats.errors.AuthorizationError) or (
            "authorization violation" in str(error).lower()
        )
        if refused:
            who = settings.nats_user or "(anonymous)"
            _error(
                f"NATS {settings.nats_url} 拒绝了用户 {who} 的登录 / NATS at "
                f"{settings.nats_url} refused the login of user {who}: check "
                "SHANGLIANG_NATS_USER and SHANGLIANG_NATS_PASSWORD"
            )
            return BAD_INPUT
        _error(f"无法连接 NATS / cannot reach NATS at {settings.nats_url}: {error!r}")
        return FAILED


def _report_differences(found: list[tuple[str, list[object], list[object]]], live: object) -> int:
    if not found:
        print(f"一致 / equal: {live} matches a rebuild from the streams")
        return OK
    for table, only_live, only_rebuilt in found:
        print(f"不一致 / differs: {table}")
        for row in only_live:
            print(f"  - live    {row}")
        for row in only_rebuilt:
            print(f"  + rebuilt {row}")
    return FAILED


def _intake_target(args: argparse.Namespace, role: str, subject: str) -> tuple[str, str] | None:
    """Intake's URL and a token for it: `--url` and `--token`, or the local intake and a token
    minted with the local settings; None once the reason is said."""
    from pydantic import ValidationError

    from services.intake.settings import IntakeSettings
    from shared.auth import Authenticator, TokenError
    from shared.settings import Settings

    try:
        url = args.url or f"http://127.0.0.1:{IntakeSettings().port}"
        token = args.token or Authenticator(Settings()).mint(args.office, [role], subject=subject)
    except ValidationError as error:
        _error(_settings_problem(error))
        return None
    except TokenError as error:
        _error(str(error))
        return None
    return url, token


def open311_key(args: argparse.Namespace) -> int:
    """Issue or revoke an office's Open311 key (接入密钥) at the running intake; an issued key
    is printed alone on stdout, once: intake keeps only its hash."""
    import httpx

    from services.intake.open311 import key_id_for

    if args.action == "issue" and not (args.label or "").strip():
        _error("--label 不能为空 / --label must not be blank")
        return BAD_INPUT
    target = _intake_target(args, "admin", f"open311-keys-{args.office}")
    if target is None:
        return BAD_INPUT
    url, token = target
    if args.action == "issue":
        path, body = "/open311/keys", {"office": args.office, "label": args.label}
    else:
        # Revoked by the key's id, its hash: the key itself does not travel again.
        path, body = f"/open311/keys/{key_id_for(args.key)}/revocation", {}
    try:
        response = httpx.post(
            f"{url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except httpx.HTTPError as error:
        _error(f"无法访问 intake / intake did not answer at {url}: {error!r}")
        return FAILED
    if response.status_code not in (200, 201):
        try:
            message = response.json().get("message") or response.text
        except ValueError:
            message = response.text
        _error(f"HTTP {response.status_code}: {message}")
        return BAD_INPUT if response.status_code in (403, 404, 422) else FAILED
    answer = response.json()
    if args.action == "issue":
        print(answer["api_key"])
    else:
        print(f"已吊销 / revoked: {answer['label']} ({answer['office']})", file=sys.stderr)
    return OK


def parser() -> argparse.ArgumentParser:
    from demo.records import YEAR
    from shared.auth import ROLES

    root = argparse.ArgumentParser(
        prog="shangliang",
        description="有事来商量 / Shangliang: 问题收集、协商、督办 / "
        "issues, consultation, supervision",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mint = commands.add_parser(
        "token", help="签发访问令牌 / mint a bearer token", description=token.__doc__
    )
    mint.add_argument("--office", required=True, help="政协 / office, e.g. yanji, yanbian")
    mint.add_argument(
        "--role",
        required=True,
        action="append",
        help=f"角色，可重复 / role, repeatable: {', '.join(ROLES)}",
    )
    mint.add_argument("--department", help="承办单位 / department (for role department)")
    mint.add_argument("--subject", help="用户标识 / user id (default: generated)")
    mint.add_argument("--ttl", type=int, help="有效秒数 / lifetime in seconds")
    mint.set_defaults(run=token)

    start = commands.add_parser(
        "up",
        help="启动全部服务 / start nats-server and all services",
        description="启动 nats-server 和各服务，Ctrl-C 停止 / start everything; Ctrl-C stops it",
    )
    start.add_argument(
        "--mail-sink",
        action="store_true",
        help="通知发往本地邮件收件箱 / send notices to a local SMTP sink (data/mail/*.eml)",
    )
    start.set_defaults(run=up)

    demo = commands.add_parser(
        "demo",
        help="启动并载入演示数据 / start and load the demo scenario",
        description=f"启动全部服务，载入 {YEAR} 年试点情景，打印统计并与报告对照 / start "
        f"everything, load the {YEAR} pilot scenario, print its statistics beside the report's",
    )
    demo.add_argument(
        "--once", action="store_true", help="打印后停止 / stop everything after printing"
    )
    demo.set_defaults(run=up)

    load = commands.add_parser(
        "import",
        help="导入活动或问题表格 / import activities or issues from a spreadsheet",
        description="把 .xlsx 或 .csv（UTF-8 / GBK）发送到正在运行的 intake / send an .xlsx or "
        ".csv (UTF-8 / GBK) to the running intake; rows already imported are left alone",
    )
    load.add_argument("file", help="表格文件 / the .xlsx or .csv file")
    load.add_argument(
        "--kind", required=True, choices=["issues", "activities"], help="问题或活动 / what it holds"
    )
    load.add_argument("--office", required=True, help="政协 / office, e.g. yanji")
    load.add_argument(
        "--url", help="intake 地址 / intake's URL (default http://127.0.0.1:SHANGLIANG_INTAKE_PORT)"
    )
    load.add_argument(
        "--token", help="访问令牌 / bearer token (default: a clerk token minted with local keys)"
    )
    load.add_argument(
        "--chunk", type=int, default=500, help="每次发送的行数 / rows per request (500)"
    )
    load.set_defaults(run=import_file)

    views = commands.add_parser(
        "projections",
        help="查询视图：重建、核对 / projections: rebuild, check",
        description=projections.__doc__,
    )
    actions = views.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "rebuild",
        help="从事件流重建并切换 / rebuild from the streams into a new file, then switch to it",
    )
    actions.add_parser(
        "check",
        help="核对重建与在用视图 / compare a rebuild with the live view (exit 1 if they differ)",
    )
    views.set_defaults(run=projections)

    open311 = commands.add_parser(
        "open311", help="Open311 接入密钥 / Open311 keys", description=open311_key.__doc__
    )
    open311_things = open311.add_subparsers(dest="thing", required=True, metavar="THING")
    key = open311_things.add_parser("key", help="接入密钥 / an office's Open311 key")
    key_actions = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, words in (("issue", "发放 / issue a new key"), ("revoke", "吊销 / revoke a key")):
        one = key_actions.add_parser(action, help=words)
        one.add_argument("--office", required=True, help="政协 / office, e.g. yanji")
        if action == "issue":
            one.add_argument("--label", required=True, help="用途 / what the key is for")
        else:
            one.add_argument("--key", required=True, help="要吊销的密钥 / the key to revoke")
        one.add_argument("--url", help="intake 地址 / intake's URL")
        one.add_argument(
            "--token", help="访问令牌 / bearer token (default: an admin token minted locally)"
        )
        one.set_defaults(run=open311_key)

    show = commands.add_parser(
        "status",
        help="各服务的状态、重启次数、上次退出 / each service's state, restarts and last exit",
        description=status.__doc__,
    )
    show.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")
    show.set_defaults(run=status)

    users = commands.add_parser(
        "user", help="工作台账号 / workbench accounts", description=user.__doc__
    )
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = user_actions.add_parser("add", help="添加账号 / add an account")
    add.add_argument("name", help="用户名 / user name")
    add.add_argument("--office", required=True, help="政协 / office, e.g. yanji")
    add.add_argument(
        "--role",
        required=True,
        action="append",
        help=f"角色，可重复 / role, repeatable: {', '.join(ROLES)}",
    )
    add.add_argument("--department", help="承办单位 / department (for role department)")
    user_actions.add_parser("list", help="列出账号 / list the accounts")
    disable = user_actions.add_parser("disable", help="停用账号 / disable an account")
    disable.add_argument("name", help="用户名 / user name")
    reset = user_actions.add_parser("reset-password", help="重设密码 / set a new password")
    reset.add_argument("name", help="用户名 / user name")
    for needs_password in (add, reset):
        needs_password.add_argument(
            "--password",
            help="密码（默认读取 SHANGLIANG_USER_PASSWORD 或提示输入）/ the password (default: "
            "SHANGLIANG_USER_PASSWORD, else asked for)",
        )
    users.set_defaults(run=user)

    setup = commands.add_parser(
        "nats-setup",
        help="以 admin 创建事件流 / create the streams as NATS's admin user",
        description=nats_setup.__doc__,
    )
    setup.add_argument(
        "--timeout", type=float, default=120.0, help="最长等待秒数 / give up after (120 s)"
    )
    setup.set_defaults(run=nats_setup)

    from services.notifications.cli import add_commands as notification_commands

    notification_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(arguments)
        return int(args.run(args))
    except KeyboardInterrupt:
        # Only before `up` has installed its own handlers, i.e. before anything was started.
        return OK if arguments[:1] in (["up"], ["demo"]) else INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
