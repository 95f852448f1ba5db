"""One established call as a program sees it: audio in and out, DTMF and state events, the end as an awaitable.

Strategy
--------
A :class:`Call` joins the SIP dialog (``useragent.SipCall``) and the audio stream (``media.MediaSession``) that
``Phone.call`` / ``Phone.answer`` set up, and adds what a voice application needs on top of them:

- ``play()`` queues audio on a :class:`~pyvoip_fast.app.call_audio.PlayQueue` (installed as the call's source on
  first use) and returns an awaitable that says whether it played to the end; ``stop_playback()`` cuts it
  within one frame (barge-in). ``audio_in()`` opens a tap on what the call plays out (after the jitter buffer
  and concealment), at the rate and frame length asked for.
- ``dtmf()`` and ``states()`` are async iterators (``call_events``); RFC 4733 digits and SIP INFO digits arrive
  on the same one.
- Hold, resume, codec change and transfer are in :class:`~pyvoip_fast.app.call_control.CallControl`.

Everything runs on the event loop's thread; nothing here blocks. Several consumers can use one call side by
side in an ``asyncio.TaskGroup``.

Example (an echo with a greeting)::

    async with Phone("127.0.0.1", 5060) as phone:
        call = await phone.answer()
        await call.play("greeting.wav")
        async for frame in call.audio_in(rate=16000):
            call.play(frame, rate=16000)
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CallError
from ..media import MediaSession
from ..media.callstats import CallStatistics
from ..media.lazy_event import LazyEvent
from ..sip.media_address import MediaAddressRefused
from ..sip.sdp import MediaParams, NegotiationError, SessionDescription, make_answer, negotiate
from .call_audio import AudioIn, PlayQueue, TapSink, _check_rate, _Resampler, to_pcm
from .call_control import CallControl, _all_literal, _sample_rate
from .call_events import CallEnd, CallState, EventStream, Fanout
from .useragent import SipCall

logger = logging.getLogger(__name__)

__all__ = ["Call", "CallEnd", "CallState"]


async def _frames_of(source: Any, frame: int) -> AsyncIterator[np.ndarray]:
    """A source object (``read(n)``, ``eof``: a tone, a file source) as an async iterator of frames."""
    try:
        while True:
            pcm = source.read(frame)
            if pcm is None or len(pcm) == 0:
                return
            yield pcm
            if getattr(source, "eof", False):
                return
            await asyncio.sleep(0)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


class Call(CallControl):
    """One established call: SIP dialog plus its audio stream.

    Attributes:
        sip: the SIP side (:class:`~pyvoip_fast.useragent.SipCall`).
        media: the audio stream (:class:`~pyvoip_fast.media.MediaSession`).
        params: the negotiated media parameters (updated by re-INVITEs).
        is_caller: True on the side that sent the INVITE.
        rate: the PCM sample rate of the call (the codec's: 8000 for G.711), fixed for the whole call.
    """

    def __init__(
        self,
        sip: SipCall,
        media: MediaSession,
        params: MediaParams,
        *,
        local_sdp: SessionDescription,
        rtp_host: str,
        codecs: Sequence[Any],
        owned: Sequence[Any] = (),
        hangup_when_done: bool = False,
        srtp: Tuple[str, Optional[bytes]] = ("off", None),
        sink: Any = None,
        dtmf: Optional[Fanout[str]] = None,
        on_dtmf: Optional[Callable[[str], Any]] = None,
        phone: Any = None,
    ) -> None:
        self.sip = sip
        self.media = media
        self.params = params
        self.is_caller = bool(getattr(sip, "is_caller", False))
        self._local_sdp = local_sdp
        self._rtp_host = rtp_host
        self._codecs = tuple(codecs)
        self.rate = self._rate = _sample_rate(params)
        self._owned = list(owned)
        self._hangup_when_done = hangup_when_done
        #: the SRTP policy of the call and our master key (kept for re-INVITE offers and answers)
        self._srtp = srtp
        self._end_reason: Optional[str] = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._on_closed: Optional[Callable[["Call"], None]] = None
        self._phone = phone
        self._sink = sink
        self._tap: Optional[TapSink] = None
        self._player: Optional[PlayQueue] = None
        self._dtmf: Fanout[str] = dtmf if dtmf is not None else Fanout()
        self._on_digit = on_dtmf  # what the media calls for an RFC 4733 digit: INFO digits take the same path
        self._done: asyncio.Event = LazyEvent()
        self._end_callbacks: List[Callable[[], None]] = []  # the waiters of _wait_end, woken by _close
        self._init_control()
        sip.on_reinvite = self._on_reinvite
        sip.on_request = self._on_request
        answered = getattr(sip, "local_sdp", local_sdp)
        offered = getattr(sip, "remote_sdp", None)
        if answered is not local_sdp and offered is not None:
            # a re-INVITE came before the ACK of our 200 OK (the ACK was late or lost) and the user agent answered
            # it before this call existed: apply that exchange to the media now
            try:
                params = negotiate(answered, offered)
                if _sample_rate(params) != self._rate:
                    raise ValueError(f"it changes the call's sample rate from {self._rate} to "
                                     f"{_sample_rate(params)} Hz")
                self.media.update(params)
                self.params = params
                self._local_sdp = answered
                logger.info("[Call] Re-negotiated: direction %s", self.params.direction)
            except (NegotiationError, ValueError, RuntimeError) as exc:
                logger.warning("[Call] Cannot apply the re-INVITE answered before the ACK: %s", exc)
        self._update_state()
        # the watch of the call's end starts when the SIP side ends or the peer is lost, not as a task waiting
        # beside every call while it runs (a task, its coroutines and their waiters: about 2 KB a call)
        self._watcher: "Optional[asyncio.Future[None]]" = None
        sip.add_end_callback(self._start_watch)
        self.media.add_end_callbacks(self._start_watch)
        if sip.ended or self.media.peer_lost.is_set():
            self._start_watch()

    # -- state -------------------------------------------------------------------------------------------------

    @property
    def stats(self) -> CallStatistics:
        """The call's statistics (live while the call runs, final after it ended)."""
        stats = self.media.stats
        if self._tap is not None:
            stats.audio_in_dropped = self._tap.dropped
        return stats

    @property
    def ended(self) -> bool:
        return self._closed

    @property
    def end_reason(self) -> Optional[str]:
        """Why the call ended (a :class:`CallEnd` value), None while it runs."""
        return self._end_reason

    # -- audio in and out --------------------------------------------------------------------------------------

    def audio_in(self, rate: Optional[int] = None, frame_ms: int = 20, *, max_queue: int = 50) -> AudioIn:
        """What the peer says, as an async iterator of int16 numpy frames (``async for frame in call.audio_in()``).

        Frames come after the jitter buffer and packet-loss concealment, resampled to ``rate`` (8000, 16000,
        24000, 32000, 48000 Hz, or 11025, 22050, 44100 Hz: those few ratios import scipy's resampler on first
        use; default the call's), ``frame_ms`` long, in order, one per frame period
        from the peer's first packet on. At most ``max_queue`` frames wait for a slow consumer; beyond that the
        oldest is dropped (``AudioIn.dropped``, ``stats.audio_in_dropped``). The iterator ends with the call or
        ``close()`` (or leaving ``async with``).

        Raises:
            ValueError: an unsupported rate, frame length or queue size. RuntimeError: the call has ended.
        """
        if self._closed:
            raise RuntimeError("the call has ended")
        if self._tap is None:
            self._tap = TapSink(self._sink, self._rate)
            self.media.set_sink(self._tap)
        return self._tap.open(self._rate if rate is None else rate, frame_ms, max_queue)

    def play(self, source: Any, *, rate: Optional[int] = None) -> "asyncio.Future[bool]":
        """Queue audio to send; returns an awaitable: True when it played to the end, False when it was stopped.

        ``source`` is a sound file path (any format libsndfile reads), an int16 or float numpy array or bytes of
        int16 samples at ``rate``, an async iterator of such chunks at ``rate`` (streamed while it is produced:
        speech synthesis), or a source object with ``read(n)`` (``audio.ToneSource``). ``rate`` defaults to the
        call's. Playbacks queue behind each other; ``await call.play(x)`` waits for this one.

        Raises:
            ValueError, TypeError: a rate or sample format that cannot be converted (nothing is queued).
            AudioFileError: a file that cannot be read. RuntimeError: the call has ended.
        """
        player = self._player_ready()
        if isinstance(source, (str, os.PathLike)):
            if rate is not None:
                raise ValueError("a file carries its own sample rate: do not pass rate=")
            return player.add_file(Path(source)).done
        in_rate = self._rate if rate is None else _check_rate(rate)
        if isinstance(source, (np.ndarray, bytes, bytearray, memoryview)):
            pcm = to_pcm(source)
            if in_rate != self._rate:
                rs = _Resampler(in_rate, self._rate)
                pcm = np.concatenate((rs.feed(pcm), rs.finish()))
            return player.add_samples(pcm, "samples").done
        if hasattr(source, "__aiter__"):
            return player.add_stream(source, in_rate).done
        if hasattr(source, "read"):
            src_rate = getattr(source, "rate", None)
            if src_rate is not None:
                in_rate = _check_rate(src_rate)
            return player.add_stream(_frames_of(source, max(1, in_rate // 50)), in_rate).done
        raise TypeError(f"cannot play a {type(source).__name__}: give a file path, a numpy array, bytes, an async "
                        "iterator of frames or an audio source")

    def say_silence(self, seconds: float) -> "asyncio.Future[bool]":
        """Queue ``seconds`` of silence (a pause between prompts); awaitable like :meth:`play`."""
        if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
            raise ValueError(f"seconds must be between 0 and 3600, not {seconds!r}")
        n = int(round(seconds * self._rate))
        return self._player_ready().add_samples(np.zeros(n, dtype=np.int16), "silence").done

    def stop_playback(self) -> int:
        """Barge-in: cut what is playing and drop what is queued (silent from the next frame); returns how many
        playbacks were stopped (their awaitables give False)."""
        return self._player.stop() if self._player is not None else 0

    @property
    def playing(self) -> bool:
        """True while a playback plays or waits."""
        return self._player is not None and self._player.busy

    def _player_ready(self) -> PlayQueue:
        if self._closed:
            raise RuntimeError("the call has ended: nothing more can be played")
        if self._player is None:
            self._player = PlayQueue(self._rate, asyncio.get_running_loop())
            self.media.set_source(self._player)
        return self._player

    # -- events -----------------------------------------------------------------------------------------------

    def dtmf(self) -> EventStream[str]:
        """An async iterator of the digits the peer sends (RFC 4733 events and SIP INFO), in order.

        Digits received before the first iterator opened are delivered to it first (up to 64).
        """
        return self._dtmf.open()

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits as RFC 4733 telephone-events (``"0"-"9"``, ``"*"``, ``"#"``, ``"A"-"D"``)."""
        self.media.send_dtmf(digits)

    # -- the end ----------------------------------------------------------------------------------------------

    async def wait_done(self, timeout: Optional[float] = None) -> str:
        """Wait until the call ends and tear it down; return why it ended (a :class:`CallEnd` value).

        The call ends when the peer hangs up, when the peer vanishes (media gone silent after ICMP errors),
        when ``timeout`` seconds pass (then it is hung up), or — with ``hangup_when_done`` — when the audio
        source is finished (then it is hung up with BYE). Any number of tasks may wait on one call.
        """
        reason = await self._wait_end(timeout, source=self._hangup_when_done and self._player is None)
        await self._watch_ended()
        return reason

    def _start_watch(self) -> None:
        if self._watcher is None and not self._closed:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch_ended(self) -> None:
        # a watch that started with the end finishes within a loop turn or two: leave nothing running behind an
        # ended call (not when the watch itself is the one hanging up)
        watcher = self._watcher
        if watcher is not None and not watcher.done() and watcher is not asyncio.current_task():
            await asyncio.wait({watcher})

    async def _watch(self) -> None:
        """End the call when the SIP side ends (a BYE) or the peer vanishes, even when nobody waits on it: the
        iterators of a program that only reads ``audio_in()`` or ``dtmf()`` finish then."""
        try:
            await self._wait_end(None, source=False)
        except asyncio.CancelledError:
            pass
        except Exception:  # pragma: no cover - a bug here must not go unnoticed, nor kill the loop
            logger.exception("[Call] ending the call failed")

    async def _wait_end(self, timeout: Optional[float], *, source: bool) -> str:
        # one future woken by callbacks, not a task per condition: every call has two waiters (its watch and
        # usually wait_done), and tasks cost memory and loop turns for each of the process's calls
        loop = asyncio.get_running_loop()
        wake: "asyncio.Future[None]" = loop.create_future()

        def fire() -> None:
            if not wake.done():
                wake.set_result(None)

        deadline: List[bool] = []

        def expire() -> None:
            deadline.append(True)
            fire()

        removers = [self.sip.add_end_callback(fire),
                    self.media.add_end_callbacks(fire, fire if source else None)]
        self._end_callbacks.append(fire)
        timer = loop.call_later(timeout, expire) if timeout is not None else None
        try:
            if self._done.is_set() or self.sip.ended or self.media.peer_lost.is_set():
                fire()
            await wake
        finally:
            for remove in removers:
                remove()
            if fire in self._end_callbacks:
                self._end_callbacks.remove(fire)
            if timer is not None:
                timer.cancel()
        if self._done.is_set():
            pass  # ended by someone else (a hang-up, a transfer): nothing more to do
        elif self.sip.ended:
            # the SIP side ended first: a BYE from the peer (the user agent logs it) or a dialog failure
            sip_reason = str(self.sip.end_reason)
            reason = CallEnd.REMOTE_HANGUP if sip_reason == "remote hangup" else sip_reason
            await self._close(reason)
        elif self.media.peer_lost.is_set():
            logger.error("[Call] Network error: the remote party stopped responding (no media, ICMP unreachable)")
            await self._close(CallEnd.PEER_LOST, bye_timeout=2.0)
        elif deadline:
            await self.hangup(CallEnd.DURATION)
        else:
            # the source finished: give the last packets time to play out at the other side, then BYE
            await asyncio.sleep(0.2)
            await self.hangup(CallEnd.SOURCE_DONE)
        await self._done.wait()
        assert self._end_reason is not None
        return self._end_reason

    async def hangup(self, reason: str = CallEnd.LOCAL_HANGUP, *, timeout: Optional[float] = None) -> None:
        """Hang up: stop the media (final RTCP with BYE) and send a SIP BYE. Idempotent.

        Args:
            timeout: wait at most this many seconds for the BYE to be answered (default: the BYE transaction's
                own timeout, 64 x T1); an unanswered BYE is logged and the call ends all the same.
        """
        await self._close(reason, send_bye=True, bye_timeout=timeout)
        await self._watch_ended()

    async def _close(self, reason: str, *, send_bye: bool = True, bye_timeout: Optional[float] = None) -> None:
        async with self._lock:
            if self._closed:
                return
            self._end_reason = reason
            if self._player is not None:
                self._player.close()
            await self.media.stop(reason)
            if send_bye and not self.sip.ended:
                try:
                    if bye_timeout is None:
                        await self.sip.hangup()
                    else:
                        await asyncio.wait_for(self.sip.hangup(), bye_timeout)
                except (asyncio.TimeoutError, CallError) as exc:
                    logger.warning("[SIP] BYE not confirmed: %s", exc or "no response")
            for obj in self._owned:
                try:
                    obj.close()
                except Exception:  # a sink that fails to close must not hide the call's result
                    logger.debug("closing %r failed", obj, exc_info=True)
            if self._tap is not None:
                self.stats.audio_in_dropped = self._tap.dropped
                self._tap.close()
            self._closed = True
            self._set_state(CallState.ENDED)
            self._states.close()
            self._dtmf.close()
            self._end_control()
            self._done.set()
            for callback in list(self._end_callbacks):
                callback()
            if self._on_closed is not None:
                self._on_closed(self)
            self.sip.on_reinvite = self.sip.on_request = None  # (references back to this call: media.session._unlink)

    # -- the peer's re-INVITE ------------------------------------------------------------------------------------

    def _on_reinvite(self, offer: SessionDescription) -> SessionDescription:
        """Answer a re-INVITE (hold / resume): same ports, the direction mirrored (and kept on hold while we
        hold), media updated.

        The codec may change only to one of the same sample rate: the source and sinks stay open at the call's
        rate (no codec in common at that rate is a ``NegotiationError``: the user agent answers 488).
        """
        same_rate = [c for c in self._codecs if c.sample_rate == self._rate]
        policy, key = self._srtp
        answer = make_answer(offer, self._rtp_host, self.media.local_rtp_port, codecs=same_rate, srtp=policy,
                             srtp_key=key, direction="sendonly" if self._held_by_us else None)
        params = negotiate(answer, offer, signalled_from=self.sip.remote_addr[0])
        if not _all_literal(params):  # a re-INVITE is answered at once: no DNS lookup for it
            raise MediaAddressRefused("a host name as media address in a re-INVITE is not resolved: use an address")
        try:
            self.media.update(params)
        except (ValueError, RuntimeError) as exc:  # e.g. an unsupported ptime, or the call is ending
            raise NegotiationError(f"cannot apply the new session description: {exc}") from None
        self.params = params
        logger.info("[Call] Re-negotiated: direction %s", params.direction)
        self._update_state()
        return answer

