"""What happens on a call, as async iterators: DTMF digits, call-state changes.

Strategy
--------
Both are fan-outs: the call publishes from its callbacks (the media tick for RFC 4733 digits, the SIP dispatch
for INFO digits and re-INVITEs), synchronously and without blocking, and every open iterator has its own queue,
so two consumers in one ``asyncio.TaskGroup`` each see everything. Digits that arrive while nobody iterates are
kept (up to :data:`DTMF_BACKLOG`) for the first iterator that opens: an IVR that starts listening a moment
after the caller pressed a key still gets it. Iterators end when the call ends.

``parse_dtmf_info`` reads the SIP INFO bodies phones send instead of RFC 4733 events: ``application/dtmf-relay``
(``Signal=5`` / ``Duration=160`` lines, the Cisco format most PBXes use) and ``application/dtmf`` (the digit
alone).
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Any, Deque, Generic, List, Optional, TypeVar

from ..errors import ParseError

__all__ = ["CallEnd", "CallState", "QueueIterator", "DtmfInfoError", "parse_dtmf_info", "EventStream", "Fanout", "DTMF_BACKLOG"]

#: digits kept for the first ``dtmf()`` iterator when they arrive before any is open
DTMF_BACKLOG = 64

_DIGITS = set("0123456789*#ABCD")
_MAX_INFO_BODY = 1024


class CallState(str, enum.Enum):
    """The states ``Call.states()`` reports (plain strings too: ``state == "held"``)."""

    ACTIVE = "active"
    #: we put the call on hold (our re-INVITE with sendonly or inactive was accepted)
    HELD = "held"
    #: the peer put us on hold (its offer was sendonly or inactive)
    REMOTE_HELD = "remote held"
    #: a transfer we started or accepted is in progress
    TRANSFERRING = "transferring"
    ENDED = "ended"


class CallEnd:
    """Why a call ended: one of these strings is what :meth:`Call.wait_done` returns."""

    REMOTE_HANGUP = "remote hangup"
    LOCAL_HANGUP = "local hangup"
    SOURCE_DONE = "audio finished"
    PEER_LOST = "peer lost"
    DURATION = "duration reached"
    TRANSFERRED = "transferred"


class DtmfInfoError(ParseError):
    """A SIP INFO body that claims to carry a DTMF digit but does not (a ``ParseError``, so a ``ValueError``)."""


def parse_dtmf_info(content_type: Optional[str], body: bytes) -> Optional[str]:
    """The digit in a SIP INFO body, or None when the body is not a DTMF type (another INFO use).

    Raises:
        DtmfInfoError: a DTMF type whose body is too long, not text, or names no single valid digit.
    """
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in ("application/dtmf-relay", "application/dtmf"):
        return None
    if len(body) > _MAX_INFO_BODY:
        raise DtmfInfoError(f"{kind} body of {len(body)} bytes is too long")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise DtmfInfoError(f"{kind} body is not ASCII text") from None
    if kind == "application/dtmf":
        value = text.strip()
    else:
        value = ""
        for line in text.splitlines():
            name, sep, rest = line.partition("=")
            if sep and name.strip().lower() == "signal":
                value = rest.strip()
                break
        if not value:
            raise DtmfInfoError("application/dtmf-relay body has no Signal= line")
    value = value.upper()
    if value == "10":
        value = "*"  # some gateways send the RFC 4733 event number for * and #
    elif value == "11":
        value = "#"
    if len(value) != 1 or value not in _DIGITS:
        raise DtmfInfoError(f"{value[:16]!r} is not a DTMF digit (0-9, *, #, A-D)")
    return value


T = TypeVar("T")
S = TypeVar("S", bound="QueueIterator[Any]")


class QueueIterator(Generic[T]):
    """An async iterator over a deque that a producer on the loop's thread fills without blocking: ``_put``
    appends and wakes the consumer waiting in ``__anext__``. ``close()`` ends it once what is queued was taken;
    ``_detach`` (a subclass's) unhooks it from its producer. Usable in ``async for`` and ``async with``."""

    def __init__(self, items: "Optional[Deque[T]]" = None) -> None:
        self._items: Deque[T] = items if items is not None else deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._closed = False

    def _put(self, item: T) -> None:
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _detach(self) -> None:
        """Unhook from the producer (called once, by ``close``)."""

    def close(self) -> None:
        """Stop iterating (items already queued are still returned first)."""
        if not self._closed:
            self._closed = True
            self._detach()
            self._wake()

    def pending(self) -> int:
        """Items waiting to be taken."""
        return len(self._items)

    def __aiter__(self: S) -> S:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    async def __aenter__(self: S) -> S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventStream(QueueIterator[T]):
    """One consumer's view of a :class:`Fanout`: ``async for item in stream``; ends with the call."""

    def __init__(self, hub: "Fanout[T]", backlog: "Deque[T]") -> None:
        super().__init__(backlog)
        self._hub = hub

    def _detach(self) -> None:
        if self._hub._streams is not None:
            self._hub._streams.discard(self)


class Fanout(Generic[T]):
    """Publish items to every open :class:`EventStream`; keep up to ``backlog`` for the first one to open."""

    def __init__(self, backlog: int = 0, limit: int = 1024) -> None:
        # the open streams, made by the first: most of a call's hubs never get one (an empty set is 0.2 KB)
        self._streams: "Optional[set[EventStream[T]]]" = None
        # the backlog's deque is made by the first item it keeps: a call holds several hubs, most never publish
        # before a stream opens, and an empty deque is 0.6 KB
        self._backlog_size = backlog
        self._backlog: Optional[Deque[T]] = None
        self._limit = limit
        self._closed = False

    def publish(self, item: T) -> None:
        if self._closed:
            return
        if not self._streams and self._backlog_size:
            if self._backlog is None:
                self._backlog = deque(maxlen=self._backlog_size)
            self._backlog.append(item)
        for stream in list(self._streams or ()):
            if len(stream._items) < self._limit:  # a consumer that never reads cannot grow without bound
                stream._put(item)

    def open(self, first: List[T] = []) -> EventStream[T]:  # noqa: B006 - read only
        """A new stream: it starts with ``first``, then the backlog (handed to this stream only)."""
        items: Deque[T] = deque(first)
        if self._backlog is not None:
            items.extend(self._backlog)
            self._backlog.clear()
        stream = EventStream(self, items)
        if self._closed:
            stream._closed = True
        else:
            if self._streams is None:
                self._streams = set()
            self._streams.add(stream)
        return stream

    def close(self) -> None:
        """The call ended: every stream finishes after what it holds."""
        self._closed = True
        for stream in list(self._streams or ()):
            stream.close()
