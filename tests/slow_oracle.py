"""Oracles for the fault and resume tests (importable as ``tests.slow_oracle:make``)."""

import threading
import time

import numpy as np

from oracles.registry import from_spec


class SlowOracle:
    """A small random MOMDP that sleeps before answering and logs each *completed* call."""

    def __init__(self, delay=0.0, log=None, fail_at=None, seed=3):
        self.inner = from_spec("random", n_states=4, n_actions=3, d=3, seed=seed)
        self.d = self.inner.d
        self.delay, self.log, self.fail_at, self.calls = float(delay), log, fail_at, 0
        self._lock = threading.Lock()  # thread pools share the call counter

    def __getstate__(self):  # picklable for process pools: the lock is not
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def fingerprint(self):  # the delay and the log do not change the answers
        return self.inner.fingerprint()

    def reference_front(self):
        return self.inner.reference_front()

    def __call__(self, w):
        with self._lock:
            self.calls += 1
            number = self.calls
        if self.fail_at is not None and number == self.fail_at:
            raise RuntimeError("simulated trainer crash")
        time.sleep(self.delay)
        sol = self.inner(w)
        if self.log:
            with open(self.log, "a") as f:
                f.write(np.asarray(w).tobytes().hex() + "\n")
        return sol


def make(**kwargs):
    return SlowOracle(**kwargs)
