"""Schemathesis against each service of a running `shangliang up` (tests/support/fuzzing.py):
at least 1,000 generated cases per service, no 5xx, answers as documented, and no refused
request changes what the service stores. bench/fuzz_soak.py runs 10,000 per service."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.fuzzing import (
    SERVICES,
    Report,
    Target,
    fuzz,
    seed_stack,
    store_table,
    targets,
    wait_quiet,
)
from tests.support.stack import RunningStack

CASES = 500
"""Per service: enough for every route's valid and invalid shapes; the depth is the soak's."""
SEED = 2026
"""The suite sends the same cases every run; bench/fuzz_soak.py draws a new seed each time."""


@pytest.fixture(scope="module")
def event_store() -> Iterator[dict[str, str]]:
    """SQLite only (the suite's time budget), and no deadline scan of its own during the run:
    a scheduled scan storing reminders while a refused request is in flight would look like
    that request's doing. `POST /scheduler/scan` is among the fuzzed routes."""
    yield {"SHANGLIANG_SUPERVISION_SCAN_INTERVAL_SECONDS": "86400"}


@pytest.fixture(scope="module")
def fuzz_targets(stack: RunningStack, mint: Callable[..., str]) -> dict[str, Target]:
    return targets(stack, mint, seed_stack(stack, mint))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_get_no_5xx_and_refusals_store_nothing(
    fuzz_targets: dict[str, Target], service: str
) -> None:
    stores = [t.store for t in fuzz_targets.values()]
    wait_quiet(stores, store_table)
    random_seed = int(os.environ.get("SHANGLIANG_FUZZ_SEED", SEED))
    report: Report = fuzz(fuzz_targets[service], CASES, random_seed)
    print(f"{service} (seed {random_seed}): {report.summary()}")
    assert report.cases >= CASES
    assert not report.failures, (
        f"seed {random_seed} (SHANGLIANG_FUZZ_SEED): {report.summary()}\n"
        + "\n".join(report.failures[:20])
    )
