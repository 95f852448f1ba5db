"""Type stubs for the compiled pyvoip_fast.media._jitter (ext/jitter.pyx); the twin pyvoip_fast.media._jitter_py has
the same API."""

from pyvoip_fast.media._jitter_py import JitterBuffer as JitterBuffer
from pyvoip_fast.media._jitter_py import TimeStretchJitterBuffer as TimeStretchJitterBuffer
from pyvoip_fast.media.jitter_stats import JitterStats as JitterStats

__all__ = ["JitterBuffer", "TimeStretchJitterBuffer"]
