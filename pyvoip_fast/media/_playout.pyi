"""Type stubs for the compiled pyvoip_fast.media._playout (ext/playout.pyx); the twin pyvoip_fast.media._playout_py
has the same API."""

from pyvoip_fast.media._playout_py import Playout as Playout

__all__ = ["Playout"]
