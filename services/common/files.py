"""Private data on disk: every folder under the data dir 0700, every file 0600, whoever creates it.

The data dir holds sealed sources, keys, the idempotency table and logs; nobody but the service's own
user has any business listing or reading it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077  # what any library (SQLite, faust, the broker's JVM) creates: 0600 files, 0700 folders
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def private_process() -> None:
    """From now on, files and folders this process and its children create are private to its user."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter: made (with any missing parents) 0700, or tightened."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=_DIR_MODE, exist_ok=True)
        os.chmod(folder, _DIR_MODE)  # mkdir's mode is masked by the umask; chmod is not
    os.chmod(path, _DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner can read, in a private folder: created empty 0600 if missing.

    SQLite gives a database's -wal, -shm and -journal files the database file's own mode, so making
    the file first, 0600, is what keeps those private too.
    """
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, _FILE_MODE))
    os.chmod(path, _FILE_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (whole, replacing it) as a 0600 file in a private folder."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, _FILE_MODE)
