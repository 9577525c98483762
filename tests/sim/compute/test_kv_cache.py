from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.sim.compute.kv_cache import BlockManager, KVCacheFullError


def test_allocate_append_free() -> None:
    kv = BlockManager(block_size=16, n_blocks=10)
    assert kv.blocks_for(1) == 1
    assert kv.blocks_for(16) == 1
    assert kv.blocks_for(17) == 2
    kv.append(1, 33)
    assert kv.held(1) == 3
    assert kv.usage == pytest.approx(0.3)
    kv.append(1, 40)  # still 3 blocks
    assert kv.held(1) == 3
    assert kv.extra_blocks(1, 49) == 1
    assert kv.can_allocate(7)
    assert not kv.can_allocate(8)
    assert kv.free(1) == 3
    assert kv.n_used == 0
    assert 1 not in kv


def test_double_free_raises() -> None:
    kv = BlockManager(4, 4)
    kv.allocate(7, 1)
    kv.free(7)
    with pytest.raises(KeyError, match="double free"):
        kv.free(7)


def test_never_exceeds_pool() -> None:
    kv = BlockManager(4, 4)
    kv.allocate(1, 3)
    with pytest.raises(KVCacheFullError):
        kv.allocate(2, 2)
    assert kv.n_used == 3
    assert 2 not in kv


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="block_size"):
        BlockManager(0, 4)
    with pytest.raises(ValueError, match="n_blocks"):
        BlockManager(4, 4).allocate(1, -1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.booleans()), max_size=60))
def test_random_operations_keep_invariants(ops: list[tuple[int, int, bool]]) -> None:
    kv = BlockManager(block_size=4, n_blocks=12)
    for rid, n_tokens, release in ops:
        if release:
            if rid in kv:
                kv.free(rid)
            continue
        need = kv.extra_blocks(rid, n_tokens)
        if kv.can_allocate(need):
            kv.append(rid, n_tokens)
        else:
            with pytest.raises(KVCacheFullError):
                kv.append(rid, n_tokens)
        assert 0 <= kv.n_used <= kv.n_blocks
        assert kv.n_used == sum(kv.held(i) for i in range(6))
