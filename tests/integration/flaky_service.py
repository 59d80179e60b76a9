"""A service for the launcher's tests: ready at its first start; every later start fails at
once, as a service whose data went bad would."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

SERVICE = os.environ.get("FLAKY_ANSWERS_AS", "flaky")


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"status": "ready", "service": SERVICE}).encode())


def main() -> None:
    started = Path(os.environ["SHANGLIANG_DATA_DIR"]) / "flaky-started"
    if started.exists():
        print("flaky: refusing to start again", flush=True)
        sys.exit(3)
    started.touch()
    port = int(os.environ["SHANGLIANG_FLAKY_PORT"])
    HTTPServer(("127.0.0.1", port), Ready).serve_forever()


if __name__ == "__main__":
    main()
