"""Services and replicas that start together on one PostgreSQL schema all start."""

from __future__ import annotations

import threading

from shared.eventstore import ServiceApplication
from tests.conftest import postgres_settings


def test_eight_applications_starting_at_once_create_their_tables_without_colliding(
    postgres_schema: str,
) -> None:
    settings = postgres_settings(postgres_schema, event_store="postgres")
    failures: list[str] = []
    go = threading.Barrier(8)

    def start(name: str) -> None:
        application_class = type(f"Service{name}", (ServiceApplication,), {"name": name})
        go.wait()
        try:
            application_class(env=settings.event_store_env(name)).close()
        except Exception as error:
            failures.append(f"{name}: {error!r}")

    threads = [threading.Thread(target=start, args=(f"service{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
