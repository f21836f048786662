"""Seekable randomness: every random number is a pure function of the seed and its keys, so
a value at any instant is the same whether it is generated live, in a backfill, in a test
or on another machine (no state, no ``random`` module, no Python ``hash``)."""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

_MASK = 0xFFFFFFFFFFFFFFFF
_SQRT3 = math.sqrt(3.0)


def _mix(value: int) -> int:
    """SplitMix64 finaliser: a 64-bit integer that looks random for any input."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def hash64(*keys: int) -> int:
    """A 64-bit hash of integer keys."""
    state = 0
    for key in keys:
        state = _mix(state ^ (key & _MASK))
    return state


@lru_cache(maxsize=65536)
def key_of(text: str) -> int:
    """A stable integer key for a name (station id, region, parameter)."""
    return zlib.crc32(text.encode("utf-8"))


def uniform(*keys: int) -> float:
    """Uniform in [0, 1)."""
    return (hash64(*keys) >> 11) * 2.0**-53


def normal(*keys: int) -> float:
    """Approximately standard normal (sum of four uniforms, mean 0, variance 1, |z| < 3.5)."""
    bits = hash64(*keys)
    total = (bits & 0xFFFF) + (bits >> 16 & 0xFFFF) + (bits >> 32 & 0xFFFF) + (bits >> 48)
    return (total / 65536.0 - 2.0) * _SQRT3


@lru_cache(maxsize=262144)
def _knot(seed: int, key: int, period_h: float, index: int) -> float:
    return normal(seed, key, int(period_h * 1000), index)


# Mean of (1 - w)^2 + w^2 for the cosine weight w over a period: the variance of smooth().
SMOOTH_VARIANCE = 0.75


def smooth(seed: int, key: int, hours: float, period_h: float) -> float:
    """A smooth random signal (mean 0, variance 0.75 on average) that changes on the scale of
    ``period_h`` hours: cosine interpolation between normal values at the knots."""
    position = hours / period_h
    index = math.floor(position)
    fraction = position - index
    weight = (1.0 - math.cos(math.pi * fraction)) * 0.5
    before = _knot(seed, key, period_h, index)
    after = _knot(seed, key, period_h, index + 1)
    return before + (after - before) * weight
