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

class LookaheadCore:
    frame_samples: int
    lookahead_frames: int
    latency_samples: int
    _keep: int
    _cap: int
    _base: int
    _index: int
    _planned_until: int
    _started: bool
    _pending_head: Any
    _c: Any
    _z: Any
    def conceal(self, frame: Any, ahead: Any = ()) -> Any: ...
    def _ensure_room(self, i: int) -> None: ...
    def _conceal_rest(self, frame: Any, ahead: Any) -> Any: ...
