"""Type stubs for the compiled pyvoip_fast.media._ticks (ext/ticks.pyx); the twin pyvoip_fast.media._ticks_py
has the same API."""

from pyvoip_fast.media._ticks_py import PacerCore as PacerCore, TickGroupCore as TickGroupCore

__all__ = ["PacerCore", "TickGroupCore"]
