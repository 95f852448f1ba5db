"""The SDP offer/answer model (RFC 3264) for one audio stream, for every codec of the registry.

Strategy
--------
Codecs come from :mod:`pyvoip_fast.codecs` (name, RTP clock rate, channels, static payload type or none);
nothing here knows a sample rate or a frame size.

- ``make_offer``: the codecs asked for, in preference order (default ``codecs.DEFAULT_CODECS``: PCMU, PCMA).
  A static codec keeps its RFC 3551 payload type; a dynamic one (L16/16000) takes the lowest free type of
  96-127. RFC 4733 telephone-event is offered once per distinct RTP clock rate among the codecs, because an
  event's timestamps run on the audio clock (RFC 4733 §2.1): ``telephone-event/8000`` keeps type 101, so a
  G.711 offer is what it always was; other rates take free dynamic types. ``a=ptime`` and a direction follow.
- ``make_answer``: the same number of ``m=`` lines as the offer (§6); the first usable audio stream is
  accepted with every codec common to both sides **in the offerer's order** and with the offerer's payload
  type numbers, plus the offered telephone-event of each accepted clock rate; other streams are rejected with
  port 0. Direction is mirrored (§6.1). Nothing in common raises ``NegotiationError`` (the UAS answers 488).
- ``negotiate``: a local and a remote description → ``MediaParams``, everything the media layer needs: the
  codec (the first of the peer's formats that we listed too) with the peer's payload type for it, ptime, the
  peer's RTP and RTCP addresses (RFC 3605 ``a=rtcp`` or port + 1), the telephone-event type whose clock rate
  is the codec's, and our direction.

A format is matched to a codec by ``a=rtpmap`` (encoding name, clock rate, channels), or by its RFC 3551
static type when the offer gives no rtpmap for it.

RFCs: 3264 (offer/answer), 3551 §6 (payload types), 3605 (a=rtcp), 4733 (telephone-event).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .. import codecs as _codecs
from ..codecs import Codec
from ..errors import PyVoipError
from .session_description import (
    DIRECTIONS,
    RTP_PROTOS,
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
)

__all__ = [
    "MediaParams",
    "NegotiationError",
    "make_offer",
    "make_answer",
    "negotiate",
    "DTMF_PAYLOAD_TYPE",
    "SUPPORTED_CODECS",
]

#: payload type of ``telephone-event/8000`` in our offers (RFC 4733); other clock rates take free dynamic types
DTMF_PAYLOAD_TYPE = 101
#: the codecs this package carries, by name (from the codec registry)
SUPPORTED_CODECS: Tuple[str, ...] = tuple(_codecs.get(key).name for key in _codecs.available())
_TELEPHONE_EVENT = "TELEPHONE-EVENT"

CodecLike = Union[str, Codec]


class NegotiationError(PyVoipError):
    """Offer and answer have nothing in common (no codec, no usable audio stream).

    A UAS answers the INVITE with ``status_code`` (488 Not Acceptable Here).
    """

    status_code = 488
    reason = "Not Acceptable Here"


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _new_session_id() -> int:
    return secrets.randbelow(2**62) + 1


def _check_ptime(ptime: int) -> int:
    if not isinstance(ptime, int) or not 10 <= ptime <= 60 or ptime % 10:
        raise ValueError(f"ptime must be 10, 20, 30, 40, 50 or 60 ms, not {ptime!r}")
    return ptime


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"RTP port must be 0-65535, not {port!r}")
    return port


def _check_direction(direction: Optional[str]) -> None:
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")


def _codec_of(entry: Tuple[str, int, int]) -> Optional[Codec]:
    encoding, clock, channels = entry
    return _codecs.find(encoding, clock, channels)


def _new_session(address: str, session_id: Optional[int]) -> SessionDescription:
    sid = _new_session_id() if session_id is None else int(session_id)
    addrtype = _addrtype(address)
    return SessionDescription(
        origin=Origin("pyvoip_fast", sid, sid, "IN", addrtype, address),
        session_name="pyvoip_fast",
        connection=Connection("IN", addrtype, address),
    )


def _payload_types(offered: List[Codec], dtmf: bool) -> Tuple[List[Tuple[int, Codec]], List[Tuple[int, int]]]:
    """Payload types for ``offered`` codecs and, when ``dtmf``, a telephone-event per clock rate.

    Returns:
        ``[(pt, codec)]`` in preference order and ``[(pt, clock_rate)]`` for telephone-event.
    """
    rates: List[int] = []
    for codec in offered:
        if codec.clock_rate not in rates:
            rates.append(codec.clock_rate)
    used = {c.payload_type for c in offered if c.payload_type is not None}
    if dtmf and 8000 in rates:
        used.add(DTMF_PAYLOAD_TYPE)
    free = (pt for pt in _codecs.DYNAMIC_PAYLOAD_TYPES if pt not in used)

    def take() -> int:
        pt = next(free, None)
        if pt is None:
            raise ValueError("too many dynamic payload types for one offer (96-127)")
        return pt

    numbered = [(c.payload_type if c.payload_type is not None else take(), c) for c in offered]
    events: List[Tuple[int, int]] = []
    if dtmf:
        events = [(DTMF_PAYLOAD_TYPE if rate == 8000 else take(), rate) for rate in rates]
    return numbered, events


def make_offer(
    address: str,
    rtp_port: int,
    *,
    codecs: Sequence[CodecLike] = _codecs.DEFAULT_CODECS,
    ptime: int = 20,
    dtmf: bool = True,
    direction: str = "sendrecv",
    session_id: Optional[int] = None,
) -> SessionDescription:
    """Build an SDP offer for one audio stream.

    Args:
        address: our RTP address (IPv4 or IPv6 literal) for ``o=`` and ``c=``.
        rtp_port: our RTP port (RTCP is on port + 1).
        codecs: codec names (``"PCMU"``, ``"L16"``, ``"L16/16000"``) or ``Codec`` objects in preference order.
        ptime: packetisation time in ms (10-60, multiple of 10).
        dtmf: also offer RFC 4733 telephone-event (events 0-15), once per codec clock rate (101 at 8000 Hz).
        direction: ``sendrecv``, ``sendonly``, ``recvonly`` or ``inactive`` (``sendonly`` puts a peer on hold).
        session_id: ``o=`` session id (and version); random when None.

    Returns:
        the offer.

    Raises:
        ValueError: unknown codec, bad port, ptime or direction.
    """
    offered = _codecs.resolve(codecs)
    _check_port(rtp_port)
    _check_ptime(ptime)
    _check_direction(direction)
    numbered, events = _payload_types(offered, dtmf)
    media = MediaDescription(media="audio", port=rtp_port, proto="RTP/AVP")
    for pt, codec in numbered:
        media.formats.append(str(pt))
        media.attributes.append(("rtpmap", f"{pt} {codec.key}"))
    for pt, rate in events:
        media.formats.append(str(pt))
        media.attributes.append(("rtpmap", f"{pt} telephone-event/{rate}"))
        media.attributes.append(("fmtp", f"{pt} 0-15"))
    media.attributes.append(("ptime", str(ptime)))
    media.attributes.append((direction, None))
    offer = _new_session(address, session_id)
    offer.media.append(media)
    return offer


def _split_direction(direction: str) -> Tuple[bool, bool]:
    return direction in ("sendrecv", "sendonly"), direction in ("sendrecv", "recvonly")


def _join_direction(send: bool, recv: bool) -> str:
    if send and recv:
        return "sendrecv"
    if send:
        return "sendonly"
    if recv:
        return "recvonly"
    return "inactive"


def _answer_formats(offered: MediaDescription, ours: List[Codec], dtmf: bool) -> Tuple[List[str], List[Attribute]]:
    """The formats and rtpmap/fmtp attributes we accept from one offered stream (empty: no codec in common)."""
    rtpmap = offered.rtpmap()
    fmtp = offered.fmtp()
    accepted: Dict[int, Codec] = {}
    for fmt in offered.formats:
        pt = int(fmt)
        codec = _codec_of(rtpmap[pt]) if pt in rtpmap else None
        if codec is not None and codec in ours and pt not in accepted:
            accepted[pt] = codec
    if not accepted:
        return [], []
    rates = {c.clock_rate for c in accepted.values()}
    chosen: List[str] = []
    attrs: List[Attribute] = []
    event_rates: List[int] = []
    for fmt in offered.formats:
        pt = int(fmt)
        if pt in accepted:
            chosen.append(fmt)
            attrs.append(("rtpmap", f"{pt} {accepted[pt].key}"))
        elif dtmf and pt in rtpmap and rtpmap[pt][0].upper() == _TELEPHONE_EVENT:
            rate = rtpmap[pt][1]
            if rate in rates and rate not in event_rates:
                event_rates.append(rate)
                chosen.append(fmt)
                attrs.append(("rtpmap", f"{pt} telephone-event/{rate}"))
                attrs.append(("fmtp", f"{pt} {fmtp.get(pt, '0-15')}"))
    return chosen, attrs


def make_answer(
    offer: SessionDescription,
    address: str,
    rtp_port: int,
    *,
    codecs: Sequence[CodecLike] = _codecs.DEFAULT_CODECS,
    ptime: Optional[int] = None,
    direction: Optional[str] = None,
    dtmf: bool = True,
    session_id: Optional[int] = None,
) -> SessionDescription:
    """Answer an offer (RFC 3264 §6).

    The first active RTP audio stream of the offer is accepted with every codec both sides support, in the
    offerer's order and with the offerer's payload type numbers (plus the offered telephone-event of each
    accepted clock rate, if ``dtmf``); every other stream is rejected with port 0. The direction is the offer's
    mirrored (``sendonly`` -> ``recvonly``), further limited by ``direction`` when given.

    Args:
        offer: the remote offer.
        address: our RTP address; rtp_port: our RTP port.
        codecs: codecs we accept (names or ``Codec`` objects); our order does not matter.
        ptime: our ``a=ptime``; default: the offer's, else 20.
        direction: what we want (default ``sendrecv``); combined with the mirror of the offer's.
        dtmf: accept telephone-event when offered.
        session_id: ``o=`` id; random when None.

    Returns:
        the answer.

    Raises:
        NegotiationError: no active audio stream, or no codec in common (answer 488).
        ValueError: bad local parameters.
    """
    ours = _codecs.resolve(codecs)
    _check_port(rtp_port)
    _check_direction(direction)
    answer = _new_session(address, session_id)
    accepted = False
    for offered in offer.media:
        chosen: List[str] = []
        attrs: List[Attribute] = []
        if not accepted and offered.media == "audio" and offered.port != 0 and offered.proto in RTP_PROTOS:
            chosen, attrs = _answer_formats(offered, ours, dtmf)
            accepted = bool(chosen)
        if chosen:
            answer_ptime = _check_ptime(ptime) if ptime is not None else (offered.ptime or 20)
            attrs.append(("ptime", str(answer_ptime)))
            want_send, want_recv = _split_direction(direction or "sendrecv")
            offer_send, offer_recv = _split_direction(offer.media_direction(offered))
            attrs.append((_join_direction(want_send and offer_recv, want_recv and offer_send), None))
            answer.media.append(
                MediaDescription(
                    media=offered.media, port=rtp_port, proto=offered.proto, formats=chosen, attributes=attrs
                )
            )
        else:
            answer.media.append(
                MediaDescription(
                    media=offered.media, port=0, proto=offered.proto, formats=list(offered.formats[:1]) or ["0"]
                )
            )
    if not accepted:
        if offer.first_audio() is None:
            raise NegotiationError("the offer has no active RTP audio stream")
        raise NegotiationError(
            f"no codec in common: offered {_describe_formats(offer.first_audio())}, we support "
            f"{', '.join(sorted(c.name for c in ours))}"
        )
    return answer


def _describe_formats(media: Optional[MediaDescription]) -> str:
    if media is None:
        return "nothing"
    rtpmap = media.rtpmap()
    return ", ".join(f"{rtpmap[int(f)][0]}/{int(f)}" if f.isdigit() and int(f) in rtpmap else f for f in media.formats)


@dataclass
class MediaParams:
    """What the media layer needs to run one negotiated audio stream.

    Attributes:
        payload_type: RTP payload type of the audio codec (as the peer numbers it).
        encoding: the codec's encoding name (``PCMU``, ``PCMA``, ``L16``).
        clock_rate: the codec's RTP clock rate (8000 for G.711, 16000 for L16/16000).
        ptime: packetisation time to send with, in ms (the peer's ``a=ptime``, else ours, else 20).
        dtmf_payload_type: telephone-event payload type when both sides support it at the codec's clock rate.
        remote_rtp: where to send RTP (address, port).
        remote_rtcp: where to send RTCP (``a=rtcp`` or RTP port + 1).
        direction: our direction (``sendrecv``, ``sendonly``, ``recvonly``, ``inactive``).
        codec: the registry's ``Codec`` (None only when built by hand; the media layer then looks it up by
            encoding and clock rate).
    """

    payload_type: int
    encoding: str
    clock_rate: int
    ptime: int
    dtmf_payload_type: Optional[int]
    remote_rtp: Tuple[str, int]
    remote_rtcp: Tuple[str, int]
    direction: str
    codec: Optional[Codec] = None


def _listed(media: MediaDescription) -> Tuple[List[Codec], List[int]]:
    """The codecs and the telephone-event clock rates a media section lists."""
    found: List[Codec] = []
    events: List[int] = []
    for encoding, clock, channels in media.rtpmap().values():
        if encoding.upper() == _TELEPHONE_EVENT:
            events.append(clock)
            continue
        codec = _codecs.find(encoding, clock, channels)
        if codec is not None:
            found.append(codec)
    return found, events


def negotiate(local: SessionDescription, remote: SessionDescription) -> MediaParams:
    """Combine our description and the peer's into the parameters of the audio stream.

    Works for both roles: (our offer, their answer) on the caller and (our answer, their offer) on the callee.
    The codec is the first of the peer's formats that we also listed.

    Args:
        local: the description we sent.
        remote: the description we received.

    Returns:
        the stream parameters.

    Raises:
        NegotiationError: no active audio stream on either side, or no codec in common.
    """
    remote_media = remote.first_audio()
    local_media = local.first_audio()
    if remote_media is None:
        raise NegotiationError("the remote description has no active RTP audio stream")
    if local_media is None:
        raise NegotiationError("the local description has no active RTP audio stream")
    local_codecs, local_events = _listed(local_media)
    remote_map = remote_media.rtpmap()
    chosen: Optional[Tuple[int, Codec]] = None
    for fmt in remote_media.formats:
        pt = int(fmt)
        codec = _codec_of(remote_map[pt]) if pt in remote_map else None
        if codec is not None and codec in local_codecs:
            chosen = (pt, codec)
            break
    if chosen is None:
        raise NegotiationError(
            f"no codec in common: remote offers {_describe_formats(remote_media)}, local {_describe_formats(local_media)}"
        )
    pt, codec = chosen
    dtmf_pt: Optional[int] = None
    if codec.clock_rate in local_events:
        for fmt in remote_media.formats:
            entry = remote_map.get(int(fmt))
            if entry is not None and entry[0].upper() == _TELEPHONE_EVENT and entry[1] == codec.clock_rate:
                dtmf_pt = int(fmt)
                break
    conn = remote.media_connection(remote_media)
    if conn is None:
        raise NegotiationError("the remote audio stream has no connection address")
    host = conn.host
    rtcp = remote_media.rtcp_address()
    if rtcp is not None:
        remote_rtcp = (rtcp[0] or host, rtcp[1])
    else:
        remote_rtcp = (host, remote_media.port + 1)
    return MediaParams(
        payload_type=pt,
        encoding=codec.name,
        clock_rate=codec.clock_rate,
        ptime=remote_media.ptime or local_media.ptime or 20,
        dtmf_payload_type=dtmf_pt,
        remote_rtp=(host, remote_media.port),
        remote_rtcp=remote_rtcp,
        direction=local.media_direction(local_media),
        codec=codec,
    )
