"""At most one render per CPU on a node, across every process of it.

A per-process semaphore would allow workers × CPUs renders at once, so each
slot is an exclusive `flock` on a file in the run directory: the kernel frees
it when its holder exits, even killed mid-render, and nothing has to be
cleaned up.
"""

import fcntl
import os
import time
from contextlib import contextmanager

from goodeye.errors import ServiceUnavailable

POLL_SECONDS = 0.05
RETRY_AFTER = {"Retry-After": "2"}


def usable_cpus():
    """The CPUs this process may run on: its affinity mask (taskset, a cpuset cgroup), else the machine's count."""
    # os.cpu_count() counts the machine's CPUs, however few of them a container or taskset leaves us.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class RenderSlots:
    """`count` render slots shared by every process that uses the same directory."""

    def __init__(self, directory, count=None, wait_seconds=10.0):
        self.directory = directory
        self.count = count or usable_cpus()
        self.wait_seconds = wait_seconds

    def path(self, index):
        """The lock file of slot `index`."""
        return os.path.join(self.directory, f"render-slot-{index}.lock")

    @contextmanager
    def hold(self):
        """Hold a free slot for the block; wait briefly for one, then 503 with Retry-After."""
        os.makedirs(self.directory, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            fd = self._take_free_slot()
            if fd is not None:
                break
            if time.monotonic() > deadline:
                raise ServiceUnavailable("Every render slot of this server is busy; retry shortly.", headers=RETRY_AFTER)
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases its lock

    def _take_free_slot(self):
        for index in range(self.count):
            fd = os.open(self.path(index), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None
