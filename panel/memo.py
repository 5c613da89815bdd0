"""Values derived from an object, remembered while the same object comes back.

The engine derives the same things from the same few objects for every request (a persona's
schema fitted to the token budget, its length, a tool's JSON): thousands of times a run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

V = TypeVar("V")


class ByIdentity(Generic[V]):
    """`compute(obj, *args)`, remembered by the object's identity and the extra arguments.

    The object is held beside its value, so an id reused by a new object after the old one
    is gone can never return the old value. For objects nobody mutates (schemas, tools).
    """

    def __init__(self, compute: Callable[..., V], size: int = 64) -> None:
        self.compute = compute
        self.size = size
        self._found: OrderedDict[tuple[Hashable, ...], tuple[object, V]] = OrderedDict()

    def __call__(self, obj: object, *args: Hashable) -> V:
        key = (id(obj), *args)
        hit = self._found.get(key)
        if hit is not None and hit[0] is obj:
            self._found.move_to_end(key)
            return hit[1]
        value = self.compute(obj, *args)
        self._found[key] = (obj, value)
        if len(self._found) > self.size:
            self._found.popitem(last=False)
        return value
