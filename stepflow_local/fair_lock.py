"""A re-entrant lock that goes to its waiters in the order they came (threading.RLock does not).

Under the GIL an unfair lock starves its waiters: the thread that releases it keeps running (it holds
the GIL), and its next request takes the lock again before a woken waiter has even got the GIL back. In
the local service that made a DynamoDB request wait up to a second behind others arriving after it.
Here release() hands the lock to the longest waiter, so a waiter is served after those already queued.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FairRLock:
    """Re-entrant, first come first served; `with` or acquire()/release() like threading.RLock."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards the fields below, held only for a few operations
        self._owner: int | None = None
        self._count = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._count += 1
                return True
            if self._owner is None and not self._waiters:
                self._owner, self._count = me, 1
                return True
            if not blocking:
                return False
            turn = threading.Lock()
            turn.acquire()
            entry = (me, turn)
            self._waiters.append(entry)
        if turn.acquire(timeout=timeout):
            return True  # release() made this thread the owner before waking it
        with self._mutex:
            if self._owner == me:  # handed over just as the wait timed out: it is ours after all
                return True
            self._waiters.remove(entry)
        return False

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if self._count:
                return
            if self._waiters:
                owner, turn = self._waiters.popleft()
                self._owner, self._count = owner, 1
                turn.release()
            else:
                self._owner = None

    def locked(self) -> bool:
        with self._mutex:
            return self._owner is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
