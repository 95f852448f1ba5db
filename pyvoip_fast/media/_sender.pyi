"""Type stubs for the compiled pyvoip_fast.media._sender (ext/sender.pyx); the twin pyvoip_fast.media._sender_py
has the same API."""

from pyvoip_fast.media._sender_py import SenderCore as SenderCore

__all__ = ["SenderCore"]
