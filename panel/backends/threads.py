"""How many threads the embedded model decodes with: what this machine can give, measured.

llama.cpp splits every decoding step between its threads and waits for the slowest one.
On a quiet machine more threads finish a step sooner (2 threads on 2 cores: 1.7x one); when
another process holds a core, one of the threads waits for it at every step and the whole
decode falls to a third of one thread's speed. So the count is chosen, not fixed:

1. where to start: the cores this process may run on, less what the load average shows
   busy (the host's load scaled to this process's share of the host's cores, less the
   engine's own threads when it chooses again while running), at least 2;
2. a short timed decode at that count and at one thread: the larger count is kept only if
   it decodes at least `GAIN` times faster (else half of it is tried). The load average
   alone would mislead both ways: it still counts a process that ended a minute ago, and
   not yet one that began seconds ago. An engine that cannot probe takes at most half the
   cores and no more than look free, as a spin-wait collapse costs more than an idle core;
3. a request that later decodes `SLOW` times slower than the probe did (the machine got
   busy) makes the engine choose again, and so does every `RECHECK`th request while it runs
   below the cores it may use (the machine may have got quiet). Only with one slot: a
   sequence decoded among others is slower per token for no fault of the machine.

The replies do not depend on the count (flash attention is off, `panel.backends._xllamacpp`),
so choosing it at run time keeps a seeded run repeatable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GAIN",
    "META_KEY",
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

#: the key of an engine's reply that holds what the engine adds to the reply's metadata
#: (the thread count that decoded it and why, the server's time to the first token)
META_KEY = "panel_meta"

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

    def meta(self) -> dict[str, Any]:
        """What a reply decoded at this count says of it in its metadata."""
        return {"n_threads": self.n_threads, "threads": self.why}

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
    """The last minute's load average (processes running or waiting to run) on this process's
    cores: the host's, scaled by the share of the host's cores this process may use, since a
    container pinned to 2 cores of 64 sees the whole host's load. None: unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None
    if not math.isfinite(load) or load < 0:
        return None
    host = os.cpu_count() or 1
    return load * min(1.0, usable_cores() / host)


def free_cores(cores: int, load: float | None, own: int = 0) -> int:
    """The cores that look free: `cores` less the load (less `own`, the threads the engine
    itself kept busy), rounded, at least one."""
    if load is None or not math.isfinite(load):
        return cores
    return max(1, min(cores, int(cores - max(0.0, load - own) + 0.5)))


def fixed_threads(n_threads: int) -> ThreadChoice:
    return ThreadChoice(n_threads, f"{_threads(n_threads)} (n_threads in panel.toml)", fixed=True)


def choose_threads(cores: int, load: float | None, probe: Probe | None, *, own: int = 0) -> ThreadChoice:
    """The thread count for this machine now: `free_cores`, checked by `probe` against one thread.

    Counts from the free cores (at least 2) down, halving, are timed until one beats a single
    thread by `GAIN`; none does: one. Without a probe, or when it measured nothing, at most
    half the cores, and no more than look free: they cannot be checked.
    """
    free = free_cores(cores, load, own)
    seen = f"{cores} core{'s' if cores > 1 else ''}"
    if load is not None and math.isfinite(load):
        seen += f", load {load:.2f}" + (f" of which {own} this engine's" if own else "")
    half = min(free, max(1, cores // 2))
    unprobed = ThreadChoice(half, f"{_threads(half)} ({seen})")
    if cores == 1 or probe is None:
        return unprobed
    one = probe(1)
    if not _measured(one):
        return unprobed
    # The load average is a minute behind: a process that just ended still counts, one that
    # just began does not. It only picks where to start; the probe decides, from 2 threads.
    n, probes = max(2, free), 1
    while n > 1 and probes < MAX_PROBES:
        many = probe(n)
        probes += 1
        if _measured(many) and many * GAIN <= one:
            return ThreadChoice(
                n, f"{n} threads ({seen}; {_ms(many)} a token against {_ms(one)} on 1)", per_token_s=many
            )
        n //= 2
    why = f"1 thread ({seen}; more threads decoded no faster than {_ms(one)} a token)"
    return ThreadChoice(1, why, per_token_s=one)


def _measured(per_token_s: float) -> bool:
    return math.isfinite(per_token_s) and per_token_s > 0


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
