"""Who may do what on NATS (消息权限): the one description of every NATS user.

`deploy/nats/users.conf` (and its copy in the Kubernetes ConfigMap) is rendered from here
(`python -m shared.nats_access > deploy/nats/users.conf`; a test compares), and the embedded
server of `shangliang up` loads the very same text. Least privilege:

- the admin user creates the streams and the lease bucket at start-up (`shangliang
  nats-setup`, or the launcher) and is for operators;
- a service publishes only its own subjects, reads its own stream's state and last message
  (the relay resumes from it), may create its own stream again if it was deleted and purge
  what is left of it when it lost messages (the store heals the stream, refilling it from
  the start), but never update or delete a stream; it writes only its own lease key
  (reading the bucket shows other holders' names, nothing more);
- it reads only its upstream streams, through consumers it creates on them;
- it receives only on inboxes of its own prefix, so no user can listen in on the replies and
  deliveries of another (with the usual shared `_INBOX.>` any user could).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.lease import BUCKET, relay_lease
from shared.messaging import inbox_prefix
from shared.settings import HUB_DOMAIN
from shared.streams import (
    INTAKE_STREAM,
    MEETINGS_STREAM,
    SUPERVISION_STREAM,
    CountiesStream,
    StreamSpec,
)

ADMIN = "admin"
API = "$JS.API"
LEASE_STREAM = f"KV_{BUCKET}"
NOTIFICATIONS_LEASE = "notifications-sender"
"""Of several notifications replicas, the one holding it sends and schedules reminders."""


@dataclass(frozen=True)
class ServiceAccess:
    """A service's NATS user: the stream it fills (if any) and the streams it consumes."""

    user: str
    publishes: StreamSpec | None
    consumes: tuple[StreamSpec, ...]
    leases: tuple[str, ...] = ()
    """Leases it holds besides its relay's (the notifications' sender)."""

    def publish_allowed(self) -> list[str]:
        allowed: list[str] = []
        if (own := self.publishes) is not None:
            allowed += [
                *own.subjects,
                f"{API}.STREAM.INFO.{own.name}",
                f"{API}.STREAM.CREATE.{own.name}",
                f"{API}.STREAM.PURGE.{own.name}",
                f"{API}.STREAM.MSG.GET.{own.name}",
            ]
        leases = ((relay_lease(self.user),) if own is not None else ()) + self.leases
        if leases:
            allowed += [
                f"{API}.STREAM.INFO.{LEASE_STREAM}",
                *(f"$KV.{BUCKET}.{lease}" for lease in leases),
                f"{API}.STREAM.MSG.GET.{LEASE_STREAM}",
            ]
        for upstream in self.consumes:
            allowed += [
                f"{API}.STREAM.INFO.{upstream.name}",
                # single messages: a consumer finds where its tracked store position is
                f"{API}.STREAM.MSG.GET.{upstream.name}",
                f"{API}.CONSUMER.CREATE.{upstream.name}",
                f"{API}.CONSUMER.CREATE.{upstream.name}.>",
                f"{API}.CONSUMER.DELETE.{upstream.name}.>",
                # its consumers are pull consumers (shared/consumer.py), a batch at a time
                f"{API}.CONSUMER.MSG.NEXT.{upstream.name}.>",
            ]
        return allowed

    def subscribe_allowed(self) -> list[str]:
        return [f"{inbox_prefix(self.user)}.>"]


# Intake's readers also read the county offices' intake, gathered on the prefecture's side.
INTAKES = (INTAKE_STREAM, CountiesStream())
SERVICES: tuple[ServiceAccess, ...] = (
    ServiceAccess("intake", INTAKE_STREAM, (SUPERVISION_STREAM, MEETINGS_STREAM)),
    ServiceAccess("meetings", MEETINGS_STREAM, INTAKES),
    ServiceAccess("supervision", SUPERVISION_STREAM, (MEETINGS_STREAM, *INTAKES)),
    ServiceAccess("projections", None, (*INTAKES, MEETINGS_STREAM, SUPERVISION_STREAM)),
    ServiceAccess(
        "notifications",
        None,
        (SUPERVISION_STREAM, MEETINGS_STREAM, *INTAKES),
        leases=(NOTIFICATIONS_LEASE,),
    ),
)
COUNTY = "county"
"""The user of the county offices' leaf nodes (deploy/nats/leaf/county.conf), as the hub sees
them (publish: what a leaf may send in; subscribe: what it may receive). Sourcing only, both
ways: the prefecture's sourcing of county streams (API requests to county JetStream domains
in, stream messages and API replies out) and a county's sourcing of the prefecture's
SUPERVISION and MEETINGS (API requests to the hub's domain and flow control replies out,
stream messages and API replies in: `$JS.hub.API.>` covers any stream of the hub's, so a
further sourced stream needs no new permission). No service subject crosses, so neither
side's streams take the other's events directly."""
COUNTY_PUBLISH = ["$JS.S.>", "$JSC.R.>", f"$JS.{HUB_DOMAIN}.API.>", "$JS.FC.>"]
COUNTY_SUBSCRIBE = ["$JS.*.API.>", "$JS.FC.>", "$JS.S.>", "$JSC.R.>"]
USERS: tuple[str, ...] = (ADMIN, *(service.user for service in SERVICES), COUNTY)


def password_variable(user: str) -> str:
    """The nats-server's environment variable that holds a user's password."""
    return f"NATS_{user.upper()}_PASSWORD"


def users_conf() -> str:
    """The `authorization` block every nats-server of ours includes."""

    def strings(subjects: list[str], indent: str) -> str:
        return "\n".join(f"{indent}{json.dumps(s)}" for s in subjects)

    lines = [
        "# Users of the shared system, included by every node's config and by the embedded",
        "# server. Generated from shared/nats_access.py, which says why each permission is",
        "# there: python -m shared.nats_access > deploy/nats/users.conf (a test compares).",
        "# Passwords come from the environment of the nats-server process (a Kubernetes",
        "# Secret, compose's .env, or the launcher's generated ones).",
        "authorization {",
        "  users: [",
        f"    {{ user: {ADMIN}, password: ${password_variable(ADMIN)} }}",
    ]
    for service in SERVICES:
        fills = f"fills {service.publishes.name}, " if service.publishes else ""
        consumes = ", ".join(upstream.name for upstream in service.consumes)
        lines += [
            f"    # {service.user}: {fills}consumes {consumes}",
            "    {",
            f"      user: {service.user}",
            f"      password: ${password_variable(service.user)}",
            "      permissions: {",
            "        publish: { allow: [",
            strings(service.publish_allowed(), "          "),
            "        ] }",
            "        subscribe: { allow: [",
            strings(service.subscribe_allowed(), "          "),
            "        ] }",
            "      }",
            "    }",
        ]
    lines += [
        "    # county: the county offices' leaf nodes answer the prefecture's sourcing only",
        "    {",
        f"      user: {COUNTY}",
        f"      password: ${password_variable(COUNTY)}",
        "      permissions: {",
        "        publish: { allow: [",
        strings(COUNTY_PUBLISH, "          "),
        "        ] }",
        "        subscribe: { allow: [",
        strings(COUNTY_SUBSCRIBE, "          "),
        "        ] }",
        "      }",
        "    }",
        "  ]",
        "}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(users_conf(), end="")
