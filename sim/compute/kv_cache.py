"""Paged KV-cache block manager (vLLM PagedAttention style, counts only).

Reference: Kwon et al., "Efficient Memory Management for LLM Serving with PagedAttention",
SOSP 2023. A sequence of n tokens holds ``ceil(n / block_size)`` blocks of a fixed pool.
Which physical blocks are used does not matter for timing, so only counts are kept: every
operation is O(1).
"""

from __future__ import annotations


class KVCacheFullError(RuntimeError):
    """An allocation that the pool cannot satisfy (callers should check ``can_allocate``)."""


class BlockManager:
    """Pool of ``n_blocks`` KV blocks of ``block_size`` tokens, held per request id.

    Args:
        block_size: Tokens per block, >= 1.
        n_blocks: Blocks in the pool, >= 1.
    """

    __slots__ = ("_held", "block_size", "n_blocks", "n_used")

    def __init__(self, block_size: int, n_blocks: int) -> None:
        if block_size < 1 or n_blocks < 1:
            raise ValueError(f"block_size and n_blocks must be >= 1, got {block_size}, {n_blocks}")
        self.block_size = int(block_size)
        self.n_blocks = int(n_blocks)
        self.n_used = 0
        self._held: dict[int, int] = {}

    @property
    def n_free(self) -> int:
        """Free blocks."""
        return self.n_blocks - self.n_used

    @property
    def usage(self) -> float:
        """Fraction of the pool in use, in [0, 1]."""
        return self.n_used / self.n_blocks

    def blocks_for(self, n_tokens: int) -> int:
        """Blocks that ``n_tokens`` tokens occupy: ceil(n_tokens / block_size)."""
        return -(-n_tokens // self.block_size)

    def held(self, req_id: int) -> int:
        """Blocks held by ``req_id`` (0 if none)."""
        return self._held.get(req_id, 0)

    def extra_blocks(self, req_id: int, n_tokens: int) -> int:
        """More blocks ``req_id`` needs to hold ``n_tokens`` tokens in total (>= 0)."""
        return max(0, self.blocks_for(n_tokens) - self._held.get(req_id, 0))

    def can_allocate(self, n_blocks: int) -> bool:
        """True if ``n_blocks`` more blocks are free."""
        return n_blocks <= self.n_blocks - self.n_used

    def allocate(self, req_id: int, n_blocks: int) -> None:
        """Give ``n_blocks`` more blocks to ``req_id`` (creating its entry).

        Raises:
            KVCacheFullError: If fewer than ``n_blocks`` are free (nothing is allocated).
        """
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if n_blocks > self.n_blocks - self.n_used:
            raise KVCacheFullError(
                f"request {req_id} needs {n_blocks} blocks, {self.n_blocks - self.n_used} free"
            )
        self._held[req_id] = self._held.get(req_id, 0) + n_blocks
        self.n_used += n_blocks

    def append(self, req_id: int, n_tokens: int) -> None:
        """Grow ``req_id``'s blocks to hold ``n_tokens`` tokens in total."""
        self.allocate(req_id, self.extra_blocks(req_id, n_tokens))

    def free(self, req_id: int) -> int:
        """Release every block of ``req_id``; returns how many.

        Raises:
            KeyError: If ``req_id`` holds no allocation (double free or unknown id).
        """
        try:
            n = self._held.pop(req_id)
        except KeyError:
            raise KeyError(f"request {req_id} holds no KV blocks (double free?)") from None
        self.n_used -= n
        return n

    def __contains__(self, req_id: object) -> bool:
        return req_id in self._held

    def __len__(self) -> int:
        return len(self._held)
