"""A stable name for this Vigil process: `<host>-<slot>`, the same after a restart.

Consumer names used to carry the PID, so a worker restarted after a crash was a new consumer and
its own pending entries waited `STREAM_CLAIM_IDLE_S` for another consumer to reclaim them.
Now each process holds an flock on `instances/<slot>.lock` under `VIGIL_DATA_DIR`, taking the
lowest free slot: a restarted process gets its old slot back (the kernel releases the lock of a
killed process at once) and reads its own pending entries first, while two processes running at
once on one host get two slots. Processes on different machines differ by host name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_SLOTS = 64


class NoFreeSlotError(RuntimeError):
    """More than MAX_SLOTS Vigil processes share one data dir."""


@dataclass(frozen=True, slots=True)
class Instance:
    host: str
    slot: int

    @property
    def name(self) -> str:
        return f"{self.host}-{self.slot}"


@contextlib.contextmanager
def claim_instance(data_dir: Path) -> Iterator[Instance]:
    """Hold the lowest free slot under `data_dir` for the life of the block."""
    folder = data_dir / "instances"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    host = socket.gethostname()
    for slot in range(MAX_SLOTS):
        fd = os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield Instance(host, slot)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise NoFreeSlotError(f"{MAX_SLOTS} Vigil processes already use {folder}")
