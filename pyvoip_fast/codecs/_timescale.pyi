"""Stub for the compiled lag search ``pyvoip_fast.codecs._timescale``; the contract is in ``codecs.timescale``."""

from typing import Any, Tuple

LAG_TOLERANCE: float

def best_lag(x: Any, centre: int, half: int, lo: int, hi: int, sign: int) -> Tuple[int, float]: ...
