"""Type stubs for the compiled pyvoip_fast.media._receiver (ext/receiver.pyx); the twin pyvoip_fast.media._receiver_py
has the same API."""

from pyvoip_fast.media._receiver_py import ReceiverCore as ReceiverCore

__all__ = ["ReceiverCore"]
