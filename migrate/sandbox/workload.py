"""An application-like write load on the sandbox's shop: threads placing orders through the application
endpoint at a steady total rate, reconnecting when a write fails, remembering every acknowledged order.

Used by the tests and by bench/cutover.py as "the application" during a cutover (separate from the probe).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from migrate.adapters.db import Endpoint, Session, connect


@dataclass
class WorkloadResult:
    attempts: int = 0
    failures: int = 0
    acked_order_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0
    ack_times: list[float] = field(default_factory=list, repr=False)  # monotonic

    @property
    def longest_gap_s(self) -> float:
        """The longest interval between two acknowledged orders (0 with fewer than two)."""
        times = sorted(self.ack_times)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)

    @property
    def achieved_tps(self) -> float:
        return len(self.acked_order_ids) / self.seconds if self.seconds else 0.0


class AppWorkload:
    def __init__(self, endpoint: Callable[[], Endpoint], *, rate: float, threads: int = 4, customers: int = 10):
        self.endpoint = endpoint
        self.per_thread = rate / threads
        self.threads = threads
        self.customers = customers
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._result = WorkloadResult()
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def start(self) -> AppWorkload:
        self._started = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(i,), name=f"workload-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def snapshot(self) -> tuple[list[int], list[float]]:
        """The acknowledged order ids and acknowledgement times (monotonic) so far, while it runs."""
        with self._lock:
            return list(self._result.acked_order_ids), list(self._result.ack_times)

    def stop(self) -> WorkloadResult:
        self._stop.set()
        for worker in self._workers:
            worker.join(10)
        self._result.seconds = time.monotonic() - self._started
        return self._result

    def _loop(self, index: int) -> None:
        rnd = random.Random(index)
        session: Session | None = None
        interval = 1.0 / self.per_thread
        tick = time.monotonic()
        while not self._stop.is_set():
            tick += interval
            try:
                if session is None:
                    session = connect(self.endpoint(), connect_timeout=1, read_timeout=2, attempts=1,
                                      bound_handshake=True)
                with self._lock:
                    self._result.attempts += 1
                session.run("CALL shop.place_order(%s, %s, %s, %s, @o)",
                            (rnd.randint(1, self.customers), f"SKU-{rnd.randint(1, 200):04d}", rnd.randint(1, 5),
                             rnd.randint(99, 99999)))
                order_id = session.value("SELECT @o")
                with self._lock:
                    self._result.acked_order_ids.append(int(order_id))
                    self._result.ack_times.append(time.monotonic())
            except Exception:  # noqa: BLE001 - an application retries; the failure is counted
                with self._lock:
                    self._result.failures += 1
                if session is not None:
                    session.close()
                session = None
            delay = tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                tick = time.monotonic()  # fell behind: skip the missed ticks rather than burst
        if session is not None:
            session.close()
