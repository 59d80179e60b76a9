"""JetStream's durability trade-off (落盘策略): publish speed with the default lazy fsync
(`sync_interval`, every 2 minutes) against `sync_interval: always` (fsync every message).

Each mode gets a nats-server of its own, started from a config file like deploy/'s, and the
same load: N messages of the size of an issue's envelope, pipelined with `publish_async` the
way the relay publishes (with `Nats-Msg-Id`), then every acknowledgement awaited.

    python -m bench.sync_interval_bench --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.processes import stop
from shared.embedded import die_with_parent, free_port, nats_server_binary
from shared.messaging import connect, ensure_stream_with_retry
from shared.streams import INTAKE_STREAM

PAYLOAD = json.dumps(
    {
        "specversion": "1.0",
        "type": "shangliang.intake.IssueSubmitted.v1",
        "data": {"title": "小区路灯损坏", "description": "进学街道某小区路灯夜间不亮" * 4},
    },
    ensure_ascii=False,
).encode()


def start_server(folder: Path, sync: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    sync_line = f'  sync_interval: "{sync}"\n' if sync else ""
    config = folder / "nats.conf"
    config.write_text(
        f"port: {port}\nhost: 127.0.0.1\n"
        f"jetstream {{\n  store_dir: {folder / 'js'}\n{sync_line}}}\n"
    )
    process = subprocess.Popen(
        [nats_server_binary(), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    return process, port


async def publish(port: int, messages: int) -> float:
    nc = await connect(f"nats://127.0.0.1:{port}", "bench")
    try:
        js = nc.jetstream()
        await ensure_stream_with_retry(js, INTAKE_STREAM)
        started = time.perf_counter()
        for n in range(messages):
            await js.publish_async(
                "intake.yanji.IssueSubmitted.v1", PAYLOAD, headers={"Nats-Msg-Id": f"{n}"}
            )
        await js.publish_async_completed()
        elapsed = time.perf_counter() - started
        stored = (await js.stream_info(INTAKE_STREAM.name)).state.messages
        assert stored == messages, f"{stored} of {messages} stored"
        return messages / elapsed
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"default (2m)": [], "always": []}
    for _ in range(args.runs):
        for mode, sync in (("default (2m)", None), ("always", "always")):
            with tempfile.TemporaryDirectory(prefix=f"sync-{uuid.uuid4().hex[:6]}-") as tmp:
                process, port = start_server(Path(tmp), sync)
                try:
                    results[mode].append(asyncio.run(publish(port, args.messages)))
                finally:
                    stop(process)
    print(json.dumps({"messages": args.messages, "messages_per_second": results}, indent=2))
    for mode, rates in results.items():
        print(f"{mode}: " + ", ".join(f"{r:,.0f} msg/s" for r in rates))


if __name__ == "__main__":
    main()
