"""Named random streams derived from one seed (common random numbers across policies).

Each stream is a ``numpy.random.Generator`` built from
``SeedSequence(seed, spawn_key=(crc32(name),))``. The key is a *stable* hash of the name
(Python's ``hash`` is salted per process), so adding a stream never shifts the others, and two
runs with the same seed — whatever their policies — draw identical channels and arrivals.
"""

from __future__ import annotations

import zlib

import numpy as np

#: Largest seed EdgeTwin accepts: 2**32 - 1 is what every consumer of a seed takes (numpy's
#: SeedSequence takes any size, but numpy's legacy RandomState, Stable-Baselines3 and
#: Gymnasium's ``reset(seed=)`` stop at 32 bits, and result tables store seeds as int64).
MAX_SEED = 2**32 - 1


def stream_key(name: str) -> int:
    """Stable 32-bit key of a stream name (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode("utf-8"))


class RandomStreams:
    """A family of independent named generators spawned from one seed.

    Args:
        seed: The run's seed (non-negative integer).
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        """Return the generator named ``name`` (created on first use, then reused)."""
        gen = self._streams.get(name)
        if gen is None:
            seq = np.random.SeedSequence(self.seed, spawn_key=(stream_key(name),))
            gen = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = gen
        return gen

    def fresh(self, name: str) -> np.random.Generator:
        """Return a *new* generator for ``name``, positioned at the start of its stream."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(stream_key(name),))
        return np.random.Generator(np.random.PCG64(seq))

    def names(self) -> list[str]:
        """Names of the streams used so far."""
        return sorted(self._streams)
