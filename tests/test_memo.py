"""The bounded memo the re-ranker and the answer models keep chunk facts in."""

from __future__ import annotations

import threading

import pytest

from qa.memo import LruMemo


def test_the_least_recently_used_entry_goes_first():
    memo: LruMemo[str] = LruMemo(2)
    memo.put("a", "A")
    memo.put("b", "B")
    assert memo.get("a") == "A"  # a is now the most recent
    memo.put("c", "C")
    assert memo.get("b") is None
    assert (memo.get("a"), memo.get("c"), len(memo)) == ("A", "C", 2)


def test_putting_a_key_again_replaces_it_and_keeps_the_size():
    memo: LruMemo[int] = LruMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 3)
    memo.put("c", 4)  # b, not a, was the least recent
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (3, None, 4)


def test_a_memo_needs_room():
    with pytest.raises(ValueError, match="at least one"):
        LruMemo(0)


def test_concurrent_use_keeps_the_bound():
    memo: LruMemo[int] = LruMemo(50)

    def work(offset: int) -> None:
        for i in range(2000):
            memo.put((offset, i), i)
            memo.get((offset, i - 1))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memo) == 50
