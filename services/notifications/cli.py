"""`shangliang notifications …`: the recipients directory, the dead letters and their re-send,
through the running service's API (a token minted with the local keys by default)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from typing import Any

OK, FAILED, BAD_INPUT = 0, 1, 2
ROBOT_KINDS = ("wecom", "dingtalk", "feishu")


def _error(message: str) -> None:
    print(f"错误 / error: {message}", file=sys.stderr)


def robot(text: str) -> dict[str, Any]:
    """`KIND=URL` or `KIND=URL#SECRET` (钉钉 / 飞书 加签)."""
    kind, _, rest = text.partition("=")
    url, _, secret = rest.partition("#")
    if kind not in ROBOT_KINDS or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"机器人应写作 KIND=URL[#SECRET]，KIND 为 {'/'.join(ROBOT_KINDS)} / a robot is "
            f"KIND=URL[#SECRET] with KIND one of {', '.join(ROBOT_KINDS)}: {text!r}"
        )
    return {"kind": kind, "url": url, "secret": secret or None}


def run(args: argparse.Namespace) -> int:
    import httpx
    from pydantic import ValidationError

    from services.notifications.settings import NotificationsSettings
    from shared.auth import Authenticator, TokenError
    from shared.settings import Settings

    try:
        settings = Settings()
        url = args.url or f"http://127.0.0.1:{NotificationsSettings().port}"
        token = args.token or Authenticator(settings).mint(
            settings.prefecture_office, ["admin"], subject="notifications-cli"
        )
    except (ValidationError, TokenError) as error:
        _error(str(error))
        return BAD_INPUT
    request = _request(args)
    if request is None:
        return BAD_INPUT
    method, path, body = request
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            response = client.request(method, path, json=body, timeout=30)
    except httpx.HTTPError as error:
        _error(f"无法连接通知服务 / cannot reach notifications at {url}: {error}")
        return FAILED
    if response.status_code >= 400:
        _error(f"HTTP {response.status_code}: {response.text}")
        return BAD_INPUT if response.status_code < 500 else FAILED
    if response.content:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    return OK


def _request(args: argparse.Namespace) -> tuple[str, str, Any] | None:
    action = args.notifications_action
    if action == "resend":
        if not args.all and not args.ids:
            _error("请给出送达记录 id，或 --all / name the deliveries, or --all")
            return None
        return "POST", "/dead-letters/resend", {"ids": args.ids, "all": args.all}
    if action == "dead-letters":
        return "GET", "/dead-letters", None
    if action == "recipients":
        return "GET", "/recipients", None
    key = urllib.parse.quote(args.key, safe="")
    if action == "recipient-delete":
        return "DELETE", f"/recipients/{key}", None
    body = {"name": args.name, "emails": args.email, "robots": args.robot, "users": args.user}
    return "PUT", f"/recipients/{key}", body


def add_commands(commands: Any) -> None:
    """The `notifications` command and its actions, on the main parser's subcommands."""
    notifications = commands.add_parser(
        "notifications",
        help="通知：通讯录、死信重发 / notifications: directory, dead letters, re-send",
        description=__doc__,
    )
    notifications.add_argument("--url", help="通知服务地址 / the service's URL")
    notifications.add_argument("--token", help="访问令牌 / bearer token (default: local admin)")
    actions = notifications.add_subparsers(
        dest="notifications_action", required=True, metavar="ACTION"
    )
    actions.add_parser("recipients", help="列出通讯录 / list the directory")
    put = actions.add_parser(
        "recipient-set",
        help="设置收件人 / set a directory entry",
        description="KEY: department:<政协>:<单位> | office:<政协> | leaders:<政协> | "
        "person:<用户>",
    )
    put.add_argument("key")
    put.add_argument("--name", required=True, help="名称 / name")
    put.add_argument("--email", action="append", default=[], help="邮箱，可重复 / repeatable")
    put.add_argument(
        "--robot", action="append", default=[], type=robot, help="KIND=URL[#SECRET], repeatable"
    )
    put.add_argument("--user", action="append", default=[], help="站内用户 / inbox user")
    delete = actions.add_parser("recipient-delete", help="删除收件人 / remove an entry")
    delete.add_argument("key")
    actions.add_parser("dead-letters", help="列出死信 / list the dead letters")
    again = actions.add_parser("resend", help="重发死信 / send dead letters again")
    again.add_argument("ids", nargs="*", help="送达记录 id / delivery ids")
    again.add_argument("--all", action="store_true", help="全部死信 / every dead letter")
    notifications.set_defaults(run=run)
