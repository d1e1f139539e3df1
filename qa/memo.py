"""A bounded, thread-safe memo that forgets the least recently used entry first.

The re-ranker and the answer models keep facts about the chunks they have analysed: the same
chunks come back for many questions, while a large corpus must not grow the memo without end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

__all__ = ["LruMemo"]


class LruMemo(Generic[V]):
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a memo needs room for at least one entry (got {size})")
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
