"""How many CPU threads a loop of equal steps should use, chosen by timing the steps.

Why: torch's CPU kernels run in OpenMP parallel regions that end at a barrier,
so a region lasts as long as its slowest thread. When another process keeps a
core busy, the thread that shares that core arrives late (by a scheduler time
slice, milliseconds), and GNU OpenMP's spin-waiting threads burn the CPU they
wait for. A GCN training step is about forty short regions, so one busy core of
two made a selection 10–20× slower (measured on a shared 2-core machine beside
a busy loop: 30 steps at N = 5,500 took 13.2 s with 2 threads and 1.5 s with 1;
without the busy loop both took about 1 s). The wait policy can only be set by environment variables read when
torch loads, so the fix is here: time the steps, use the thread count that is
fastest now.

`StepThreads.run(step)` runs the steps: the first with one thread (a warm-up that
is never slow), then one step with each candidate count (all threads, one fewer,
one), then the fastest, re-timing the candidates after 50, 100, 200, ... steps,
or at once when the chosen count's step time moves by more than 2× (and 2 ms)
for 3 steps in a row (the load changed). On a GPU, or with one thread, it only runs the steps.
The thread count is restored on exit.
"""

from __future__ import annotations

import time

import torch

_FIRST_INTERVAL = 50  # steps between the first two timing rounds; doubles after each round
_DRIFT = 2.0  # a step this much slower or faster than when chosen counts as a load change
_DRIFT_STEPS = 3  # ... when it happens this many steps in a row
_DRIFT_MIN_SECONDS = 2e-3  # ... and differs by more than this (steps of microseconds jitter by far more than 2×)


class StepThreads:
    """Context manager choosing torch's intra-op thread count for a loop of equal-work steps.

        with StepThreads(device) as threads:
            for _ in range(epochs):
                loss = threads.run(lambda: one_step())

    `chosen` lists the thread count of each step (for tests and benchmarks).
    """

    def __init__(self, device: torch.device | str = "cpu", *, clock=time.perf_counter):
        self.clock = clock  # seconds; tests pass a simulated one
        self.initial = torch.get_num_threads()
        on_cpu = torch.device(device).type == "cpu"
        self.options = sorted({self.initial, max(1, self.initial - 1), 1}, reverse=True) if on_cpu else [self.initial]
        self.chosen: list[int] = []
        self._pending: list[int] = []  # counts still to time in this round
        self._times: dict[int, float] = {}
        self._current = self.initial
        self._reference = 0.0  # step time of the current count when it was chosen
        self._next_round = 0
        self._interval = _FIRST_INTERVAL
        self._drifted = 0

    def __enter__(self) -> "StepThreads":
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.initial)

    def run(self, step):
        """Run `step()` once under the thread count chosen for it; return its result."""
        if len(self.options) == 1:
            self.chosen.append(self.initial)
            return step()
        i = len(self.chosen)
        if i == 0:
            return self._timed(1, step)[0]  # warm-up: first-call costs would spoil the timing
        if i == 1 or (not self._pending and i >= self._next_round):
            self._pending, self._times = list(self.options), {}
        if self._pending:
            threads = self._pending.pop(0)
            result, seconds = self._timed(threads, step)
            self._times[threads] = seconds
            if not self._pending:  # round complete: the fastest wins
                self._current = min(self._times, key=self._times.get)
                self._reference = self._times[self._current]
                self._next_round = i + 1 + self._interval
                self._interval *= 2
                self._drifted = 0
            return result
        result, seconds = self._timed(self._current, step)
        ratio = seconds / max(self._reference, 1e-9)
        moved = (ratio > _DRIFT or ratio < 1.0 / _DRIFT) and abs(seconds - self._reference) > _DRIFT_MIN_SECONDS
        self._drifted = self._drifted + 1 if moved else 0
        if self._drifted >= _DRIFT_STEPS:  # the load changed: time the candidates again now
            self._next_round, self._interval = i + 1, _FIRST_INTERVAL
        return result

    def _timed(self, threads: int, step):
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.chosen.append(threads)
        start = self.clock()
        result = step()
        return result, self.clock() - start
