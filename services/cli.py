"""The `shangliang` command (命令行): mint tokens, start the stack, load the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

# Only light imports here: the heavy ones (pydantic, FastAPI, httpx) load inside `main`, where a
# Ctrl-C pressed during start-up is caught instead of ending in a traceback.
if TYPE_CHECKING:
    from pydantic import ValidationError

    from services.launcher import Stack
    from shared.settings import Settings

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130


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


def up(args: argparse.Namespace) -> int:
    """Start everything; with `demo`, also load the scenario and print the statistics."""
    from pydantic import ValidationError

    from services.demo import DemoError, DemoInterrupted
    from services.launcher import SERVICES, Interrupted, LaunchError, Stack
    from shared.settings import Settings

    demo = args.command == "demo"
    try:
        settings = Settings()
        stack = Stack(settings, SERVICES)
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
        lines += [
            f"  {service.spec.name} {service.spec.label}",
            f"    API   {service.url}",
            f"    docs  {service.url}/docs",
        ]
    lines += [
        f"  NATS    {stack.nats.url}",
        f"  数据 / data   {stack.data_dir}",
        f"  日志 / logs   {stack.data_dir / 'logs'}",
        "",
        "获取令牌 / get a token:  shangliang token --office yanji --role clerk",
        "",
    ]
    print("\n".join(lines), flush=True)


def _run_demo(stack: Stack, settings: Settings) -> None:
    from services.demo import YEAR, format_statistics, load_scenario
    from shared.auth import Authenticator

    print(f"正在载入演示数据 / loading the {YEAR} demo scenario ...", flush=True)
    result = load_scenario(
        Authenticator(settings),
        stack.service("intake").url,
        stack.service("projections").url,
        interrupted=stack.stopping.is_set,
    )
    print(
        f"已提交 {result.new + result.existing} 个问题（新增 {result.new}，已存在 "
        f"{result.existing}）/ submitted {result.new + result.existing} issues "
        f"({result.new} new, {result.existing} already there)\n",
        flush=True,
    )
    print(format_statistics(result.statistics) + "\n", flush=True)


def projections(args: argparse.Namespace) -> int:
    """`rebuild`: replay the streams into a new view and switch to it; `check`: compare."""
    import asyncio
    import tempfile
    from pathlib import Path

    from pydantic import ValidationError
    from tqdm import tqdm

    from services.projections import rebuild as rebuilding
    from services.projections.views import open_projection_view
    from shared.messaging import connect
    from shared.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        _error(_settings_problem(error))
        return BAD_INPUT
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> int:
        try:
            nc = await connect(settings.nats_url, "projections-cli")
        except Exception as error:
            _error(f"无法连接 NATS / cannot reach NATS at {settings.nats_url}: {error}")
            return FAILED
        js = nc.jetstream()
        try:
            if args.action == "rebuild":
                with tqdm(unit=" events", desc="重建 / rebuild") as bar:

                    def show(done: int, total: int) -> None:
                        bar.total = total
                        bar.update(done - bar.n)

                    target = await rebuilding.rebuild(js, data_dir, show)
                print(f"已切换到 / now serving from {target}", flush=True)
                return OK
            live_path = rebuilding.live_file(data_dir)
            if not live_path.exists():
                _error(f"没有投影文件 / no projection at {live_path}")
                return FAILED
            live = open_projection_view(str(live_path))
            try:
                with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
                    found = await rebuilding.check(js, live, Path(scratch) / "check.sqlite")
            finally:
                live.datastore.close()
            return _report_differences(found, live_path)
        finally:
            await nc.close()

    return asyncio.run(run())


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


def parser() -> argparse.ArgumentParser:
    from services.demo import YEAR
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
    start.set_defaults(run=up)

    demo = commands.add_parser(
        "demo",
        help="启动并载入演示数据 / start and load the demo scenario",
        description=f"启动全部服务，提交演示问题，打印 {YEAR} 年统计 / start everything, submit "
        f"the demo issues, print the {YEAR} statistics",
    )
    demo.add_argument(
        "--once", action="store_true", help="打印后停止 / stop everything after printing"
    )
    demo.set_defaults(run=up)

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
