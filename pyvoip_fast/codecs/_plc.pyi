"""Stub for the compiled concealer loop ``pyvoip_fast.codecs._plc``; the contract is in ``codecs.plc``."""

from typing import Any

def push(hist: Any, samples: Any, out: Any, delay: int) -> float: ...
def push_float(hist: Any, samples: Any, out: Any, delay: int) -> None: ...

class Timeline:
    hist: Any
    frame_buffer: Any
    delay: int
    frame_samples: int
    min_samples: int
    rise: float
    margin: float
    floor: float
    energy: float
    seen: int
    def __init__(self, hist: Any, frame_buffer: Any, delay: int, frame_samples: int, min_samples: int, rise: float,
                 margin: float) -> None: ...
    @property
    def background_frame(self) -> Any: ...
    def push(self, samples: Any, out: Any) -> bool: ...
    def track(self, n: int) -> bool: ...
