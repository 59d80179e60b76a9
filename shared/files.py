"""Files only their owner reads (私有文件): stores, keys and logs of the embedded default.

The event stores hold every office's data and the logs name users and requests: another
local user of the machine must not read them. Folders are made 0700 and files 0600 when
created, and ones an older version left readable are narrowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database; it gives new ones the database's own mode."""


def private_dir(path: Path) -> Path:
    """The folder, created (with its parents) if missing, then readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """The file, created empty if missing, readable and writable by its owner only."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)
    return path


def private_sqlite(db_name: str) -> str:
    """A SQLite database name, its file (unless the database lives in memory) made first,
    owner-only: SQLite would create it with the usual 0644."""
    if not (db_name.startswith(":memory:") or "mode=memory" in db_name):
        private_file(Path(db_name.removeprefix("file:").split("?")[0]))
    return db_name


def open_private_log(path: Path) -> BinaryIO:
    """A log opened for appending, in a private folder, readable by its owner only."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")
