"""How many threads the embedded model decodes with: what this machine can give, measured.

llama.cpp splits every decoding step between its threads and waits for the slowest one.
On a quiet machine more threads finish a step sooner (2 threads on 2 cores: 1.7x one); when
another process holds a core, one of the threads waits for it at every step and the whole
decode falls to a third of one thread's speed. So the count is chosen, not fixed:

1. the cores this process may run on, less what the load average shows busy;
2. if that leaves more than one, a short timed decode at that count and at one thread: the
   larger count is kept only if it decodes at least `GAIN` times faster;
3. a request that later decodes `SLOW` times slower than the probe did (the machine got
   busy) makes the engine choose again, and so does every `RECHECK`th request while it runs
   below the cores it may use (the machine may have got quiet).

The replies do not depend on the count (flash attention is off, `panel.backends._xllamacpp`),
so choosing it at run time keeps a seeded run repeatable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GAIN",
    "RECHECK",
    "SLOW",
    "ThreadChoice",
    "choose_threads",
    "fixed_threads",
    "free_cores",
    "load_average",
    "usable_cores",
]

#: more threads must decode at least this many times faster than one to be used
GAIN = 1.15
#: a request decoding this many times slower per token than the probe makes the engine choose again
SLOW = 2.5
#: while below the usable cores, choose again after this many requests
RECHECK = 64
#: the probes tried at most, one thread included (each loads the model at a count)
MAX_PROBES = 3

#: seconds per decoded token at a thread count
Probe = Callable[[int], float]


@dataclass(frozen=True)
class ThreadChoice:
    n_threads: int
    #: one line on how the count was reached, for the run's reply metadata and the user
    why: str
    #: seconds per decoded token the probe measured at `n_threads` (None: not probed)
    per_token_s: float | None = None
    #: set in panel.toml rather than measured: never chosen again
    fixed: bool = False

    def too_slow(self, per_token_s: float) -> bool:
        """Whether a request's decode says the machine no longer gives these threads."""
        return (
            not self.fixed
            and self.n_threads > 1
            and self.per_token_s is not None
            and per_token_s > SLOW * self.per_token_s
        )


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_average() -> float | None:
    """The last minute's load average: processes running or waiting to run (None: unknown)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def free_cores(cores: int, load: float | None) -> int:
    """The cores that look free: `cores` less the load, rounded, at least one."""
    if load is None:
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def fixed_threads(n_threads: int) -> ThreadChoice:
    return ThreadChoice(n_threads, f"{_threads(n_threads)} (n_threads in panel.toml)", fixed=True)


def choose_threads(cores: int, load: float | None, probe: Probe | None) -> ThreadChoice:
    """The thread count for this machine now: `free_cores`, checked by `probe` against one thread.

    Without a probe the free cores are taken as they are. With one, counts from the free
    cores down (halving) are timed until one beats a single thread by `GAIN`; none does: one.
    """
    free = free_cores(cores, load)
    seen = f"{cores} core{'s' if cores > 1 else ''}" + (f", load {load:.2f}" if load is not None else "")
    if free == 1 or probe is None:
        return ThreadChoice(free, f"{_threads(free)} ({seen})")
    one = probe(1)
    n, probes = free, 1
    while n > 1 and probes < MAX_PROBES:
        many = probe(n)
        probes += 1
        if many * GAIN <= one:
            return ThreadChoice(
                n, f"{n} threads ({seen}; {_ms(many)} a token against {_ms(one)} on 1)", per_token_s=many
            )
        n //= 2
    why = f"1 thread ({seen}; more threads decoded no faster than {_ms(one)} a token)"
    return ThreadChoice(1, why, per_token_s=one)


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
