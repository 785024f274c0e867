"""A small thread-safe LRU map, for views built at a position and answers encoded once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from threading import Lock
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries of at most `budget` weight in all; the least recently used go first.

    An entry weighs 1 unless `put` says otherwise (a view: the events it folds). One that
    alone weighs more than the budget is not kept.
    """

    def __init__(self, size: int, budget: int | None = None) -> None:
        self.size = size
        self.budget = budget
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = Lock()

    def get(self, key: K) -> V | None:
        """The value of `key` (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V, weight: int = 1) -> None:
        """Store `value`, dropping the least recently used entries past the size or budget."""
        if self.budget is not None and weight > self.budget:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._items[key] = (value, weight)
            self._weight += weight
            while len(self._items) > self.size or (
                self.budget is not None and self._weight > self.budget
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._weight -= dropped

    @property
    def weight(self) -> int:
        """The weight of the entries kept."""
        return self._weight

    def __len__(self) -> int:
        return len(self._items)
