"""The SDP offer/answer model (RFC 3264) for one audio stream, for every codec of the registry.

Strategy
--------
Codecs come from :mod:`pyvoip_fast.codecs` (name, RTP clock rate, channels, static payload type or none);
nothing here knows a sample rate, a frame size or a particular codec. The RTP clock rate of a format is what
its ``a=rtpmap`` says (8000 for G.722 although its audio runs at 16 kHz, RFC 3551 §4.5.2), and that clock is
the one telephone-event must share.

- ``make_offer`` (RFC 3264 §5): the codecs asked for, in preference order (default ``codecs.DEFAULT_CODECS``:
  PCMU, PCMA), names or ``Codec`` objects. A static codec keeps its RFC 3551 payload type; a dynamic one
  (L16/16000) takes the lowest type of 96-127 (RFC 3551 §6) that nothing else in the offer holds. RFC 4733
  telephone-event (events ``0-15``) is offered once per distinct RTP clock rate among the codecs, because an
  event's timestamps run on the audio clock (RFC 4733 §2.1): the one at the default codecs' rate keeps type
  101, so a G.711 offer is byte for byte what it always was; other rates take free dynamic types. Then
  ``a=ptime`` and a direction.
- ``make_answer`` (RFC 3264 §6): the same number of ``m=`` lines as the offer; the first usable audio stream
  is accepted, every other one rejected with port 0. The codec is the first of the offerer's formats that we
  support; the answer lists it and the other common codecs of the same clock rate, **in the offerer's order
  and with the offerer's payload type numbers**, plus the offered telephone-event of that clock rate and no
  other, so whichever listed codec the offerer sends with, DTMF runs on its clock. Direction is mirrored
  (§6.1). Nothing in common raises ``NegotiationError`` (the UAS answers 488).
- ``negotiate``: a local and a remote description → ``MediaParams``, the same for both roles: the codec is the
  first of the peer's formats that we listed too, with the peer's payload type for it; ptime; the peer's RTP
  and RTCP addresses (RFC 3605 ``a=rtcp`` or port + 1); the telephone-event type whose clock rate is the
  codec's (none otherwise); our direction.

A format names a codec by its ``a=rtpmap`` (encoding, clock rate, channels; RFC 4566 §6), or by its RFC 3551
static type when it has no rtpmap; a format we do not know is skipped.

RFCs: 3264 §5-§6 (offer/answer), 4566 §6 (rtpmap, fmtp, ptime, directions), 3551 §6 (payload types),
3605 (a=rtcp), 4733 §2.1 and §2.4.1 (telephone-event and its clock).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .. import codecs as _codecs
from ..codecs import Codec
from ..errors import NegotiationError
from .abnf import is_digits
from .media_address import vet_media_host
from . import sdes
from .session_description import (
    DIRECTIONS,
    RTP_PROTOS,
    SECURE_PROTOS,
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
    "CodecLike",
    "DTMF_PAYLOAD_TYPE",
    "DTMF_PAYLOAD_TYPE_CLOCK_RATE",
    "SUPPORTED_CODECS",
]

#: payload type of telephone-event at ``DTMF_PAYLOAD_TYPE_CLOCK_RATE`` in our offers (RFC 4733); events at
#: other clock rates take free dynamic types
DTMF_PAYLOAD_TYPE = 101
#: the clock rate of the telephone-event numbered ``DTMF_PAYLOAD_TYPE``: the default codecs' (G.711's), so the
#: default offer keeps the numbers it always had
DTMF_PAYLOAD_TYPE_CLOCK_RATE = _codecs.get(_codecs.DEFAULT_CODECS[0]).clock_rate


def _supported() -> Dict[str, Optional[int]]:
    names: Dict[str, Optional[int]] = {}
    for key in _codecs.available():
        codec = _codecs.get(key)
        names.setdefault(codec.name, codec.payload_type)
    return names


#: the registry's codecs when this module was imported, by name: name -> static payload type (None: dynamic)
SUPPORTED_CODECS: Dict[str, Optional[int]] = _supported()
_TELEPHONE_EVENT = "TELEPHONE-EVENT"

#: a codec as callers name it: ``"PCMU"``, ``"L16/16000"`` or a ``Codec`` object
CodecLike = Union[str, Codec]
#: (payload type, codec) of the formats of a section, and (payload type, clock rate) of its telephone-events
_Formats = Tuple[List[Tuple[int, Codec]], List[Tuple[int, int]]]
#: payload type -> (encoding, clock rate, channels), as ``MediaDescription.rtpmap`` gives it
_RtpMap = Dict[int, Tuple[str, int, int]]


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


def _identify(pt: int, rtpmap: _RtpMap, known: Optional[List[Codec]]) -> Optional[Codec]:
    """The codec that format ``pt`` names, among ``known`` (None: the registry), or None.

    ``rtpmap`` holds the section's explicit ``a=rtpmap`` entries: one names (encoding, clock rate, channels);
    a static type without one is looked up by its RFC 3551 number.
    """
    entry = rtpmap.get(pt)
    if entry is not None:
        if known is None:
            return _codecs.find(*entry)
        return next((c for c in known if c.matches(*entry)), None)
    if pt in _codecs.DYNAMIC_PAYLOAD_TYPES:
        return None
    if known is None:
        return _codecs.by_static_payload_type(pt)
    return next((c for c in known if c.payload_type == pt), None)


def _formats(media: MediaDescription, known: Optional[List[Codec]]) -> _Formats:
    """The formats of ``media`` that name a codec of ``known`` (None: the registry), and its telephone-events.

    Both lists keep the section's order; unknown formats are left out.
    """
    rtpmap = media.rtpmap(static=False)
    found: List[Tuple[int, Codec]] = []
    events: List[Tuple[int, int]] = []
    for fmt in media.formats:
        if not is_digits(fmt):
            continue
        pt = int(fmt)
        entry = rtpmap.get(pt)
        if entry is not None and entry[0].upper() == _TELEPHONE_EVENT:
            events.append((pt, entry[1]))
            continue
        codec = _identify(pt, rtpmap, known)
        if codec is not None and all(pt != seen for seen, _ in found):
            found.append((pt, codec))
    return found, events


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

    Static types first, then ``DTMF_PAYLOAD_TYPE`` for the event at its clock rate, then the lowest free
    dynamic types for dynamic codecs (in preference order) and for the events at other clock rates.

    Returns:
        ``[(pt, codec)]`` in preference order and ``[(pt, clock_rate)]`` for telephone-event.

    Raises:
        ValueError: two codecs claim one static type, or the dynamic range is exhausted.
    """
    statics: Dict[int, Codec] = {}
    for codec in offered:
        if codec.payload_type is not None:
            holder = statics.setdefault(codec.payload_type, codec)
            if holder is not codec:
                raise ValueError(
                    f"codecs {holder.key} and {codec.key} both claim payload type {codec.payload_type}"
                )
    rates = list(dict.fromkeys(c.clock_rate for c in offered)) if dtmf else []
    used = set(statics)
    fixed_event = DTMF_PAYLOAD_TYPE_CLOCK_RATE in rates and DTMF_PAYLOAD_TYPE not in used
    if fixed_event:
        used.add(DTMF_PAYLOAD_TYPE)
    free = (pt for pt in _codecs.DYNAMIC_PAYLOAD_TYPES if pt not in used)

    def take() -> int:
        pt = next(free, None)
        if pt is None:
            raise ValueError("too many dynamic payload types for one offer (96-127)")
        return pt

    numbered = [(c.payload_type if c.payload_type is not None else take(), c) for c in offered]
    events = [
        (DTMF_PAYLOAD_TYPE if fixed_event and rate == DTMF_PAYLOAD_TYPE_CLOCK_RATE else take(), rate)
        for rate in rates
    ]
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
    srtp: str = "off",
    srtp_key: Optional[bytes] = None,
) -> SessionDescription:
    """Build an SDP offer for one audio stream.

    Args:
        address: our RTP address (IPv4 or IPv6 literal) for ``o=`` and ``c=``.
        rtp_port: our RTP port (RTCP is on port + 1).
        codecs: codec names (``"PCMU"``, ``"L16"``, ``"L16/16000"``) or ``Codec`` objects in preference order.
        ptime: packetisation time in ms (10-60, multiple of 10).
        dtmf: also offer RFC 4733 telephone-event (events 0-15), once per codec clock rate
            (``DTMF_PAYLOAD_TYPE`` at ``DTMF_PAYLOAD_TYPE_CLOCK_RATE``).
        direction: ``sendrecv``, ``sendonly``, ``recvonly`` or ``inactive`` (``sendonly`` puts a peer on
            hold).
        session_id: ``o=`` session id (and version); random when None.
        srtp: ``off``; ``optional`` (RTP/AVP with ``a=crypto`` lines: SRTP when the answer takes a key) or
            ``required`` (RTP/SAVP, RFC 4568); ``srtp_key`` is our 30-byte master key and salt.

    Returns:
        the offer.

    Raises:
        ValueError: unknown codec (the message lists the available ones), two codecs on one static payload
            type, bad port, ptime or direction.
    """
    offered = _codecs.resolve(codecs)
    _check_port(rtp_port)
    _check_ptime(ptime)
    _check_direction(direction)
    numbered, events = _payload_types(offered, dtmf)
    _check_srtp(srtp, srtp_key)
    media = MediaDescription(media="audio", port=rtp_port, proto="RTP/SAVP" if srtp == "required" else "RTP/AVP")
    for pt, codec in numbered:
        media.formats.append(str(pt))
        media.attributes.append(("rtpmap", f"{pt} {codec.key}"))
    for pt, rate in events:
        media.formats.append(str(pt))
        media.attributes.append(("rtpmap", f"{pt} telephone-event/{rate}"))
        media.attributes.append(("fmtp", f"{pt} 0-15"))
    media.attributes.append(("ptime", str(ptime)))
    media.attributes.append((direction, None))
    if srtp != "off" and srtp_key is not None:
        media.attributes.extend(("crypto", line) for line in sdes.crypto_lines(srtp_key))
    offer = _new_session(address, session_id)
    offer.media.append(media)
    return offer


def _check_srtp(srtp: str, key: Optional[bytes]) -> None:
    if srtp not in sdes.SRTP_POLICIES:
        raise ValueError(f"srtp must be one of {', '.join(sdes.SRTP_POLICIES)}, not {srtp!r}")
    if srtp != "off" and (key is None or len(key) != 30):
        raise ValueError("SRTP needs a 30-byte master key and salt (rtp.srtp.new_key())")


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


def _answer_formats(
    offered: MediaDescription, ours: List[Codec], dtmf: bool
) -> Tuple[List[str], List[Attribute]]:
    """The formats and rtpmap/fmtp attributes we accept from one offered stream (empty: no codec in common).

    The first offered format we support sets the clock rate; the other common codecs of that rate follow in
    the offerer's order, then the offered telephone-event of that rate (when ``dtmf``).
    """
    found, events = _formats(offered, ours)
    if not found:
        return [], []
    rate = found[0][1].clock_rate
    formats: List[str] = []
    attrs: List[Attribute] = []
    for pt, codec in found:
        if codec.clock_rate == rate:
            formats.append(str(pt))
            attrs.append(("rtpmap", f"{pt} {codec.key}"))
    event = next((pt for pt, event_rate in events if event_rate == rate), None) if dtmf else None
    if event is not None:
        formats.append(str(event))
        attrs.append(("rtpmap", f"{event} telephone-event/{rate}"))
        attrs.append(("fmtp", f"{event} {offered.fmtp().get(event, '0-15')}"))
    return formats, attrs


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
    srtp: str = "off",
    srtp_key: Optional[bytes] = None,
) -> SessionDescription:
    """Answer an offer (RFC 3264 §6).

    The first active RTP audio stream of the offer is accepted with the first of its formats that we support
    and the other common codecs of the same RTP clock rate, in the offerer's order and with the offerer's
    payload type numbers, plus the offered telephone-event of that clock rate (if ``dtmf``); every other
    stream is rejected with port 0. A format we do not know is skipped. The direction is the offer's mirrored
    (``sendonly`` -> ``recvonly``), further limited by ``direction`` when given.

    Args:
        offer: the remote offer.
        address: our RTP address; rtp_port: our RTP port.
        codecs: codecs we accept (names or ``Codec`` objects); our order does not matter.
        ptime: our ``a=ptime``; default: the offer's, else 20.
        direction: what we want (default ``sendrecv``); combined with the mirror of the offer's.
        dtmf: accept telephone-event when offered.
        session_id: ``o=`` id; random when None.
        srtp: ``off`` refuses an RTP/SAVP stream; ``optional`` takes the offer's first usable ``a=crypto``
            when there is one; ``required`` refuses a stream without one. ``srtp_key``: our master key.

    Returns:
        the answer.

    Raises:
        NegotiationError: no active audio stream, no codec in common, or no SRTP agreement (answer 488).
        ValueError: bad local parameters.
    """
    ours = _codecs.resolve(codecs)
    _check_port(rtp_port)
    _check_direction(direction)
    _check_srtp(srtp, srtp_key)
    answer = _new_session(address, session_id)
    accepted = False
    srtp_refused = ""
    for offered in offer.media:
        chosen: List[str] = []
        attrs: List[Attribute] = []
        if not accepted and offered.media == "audio" and offered.port != 0 and offered.proto in RTP_PROTOS:
            crypto = (sdes.answer_crypto(offered.get_attributes("crypto"), srtp_key)
                      if srtp != "off" and srtp_key is not None else None)
            if offered.proto in SECURE_PROTOS and crypto is None:
                srtp_refused = ("SRTP offered (RTP/SAVP) and not enabled" if srtp == "off" else
                                "SRTP offered without an a=crypto line we can use")
            elif srtp == "required" and crypto is None:
                srtp_refused = "SRTP required and the offer carries no usable a=crypto line"
            else:
                chosen, attrs = _answer_formats(offered, ours, dtmf)
                accepted = bool(chosen)
                if chosen and crypto is not None:
                    attrs.append(("crypto", crypto))
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
                    media=offered.media,
                    port=0,
                    proto=offered.proto,
                    formats=list(offered.formats[:1]) or ["0"],
                )
            )
    if not accepted:
        if srtp_refused:
            raise NegotiationError(srtp_refused)
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
    return ", ".join(
        f"{rtpmap[int(f)][0]}/{int(f)}" if is_digits(f) and int(f) in rtpmap else f for f in media.formats
    )


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
        codec: the negotiated ``Codec`` (the registry's, or one passed to ``negotiate``); None only when built
            by hand, and the media layer then looks it up by encoding and clock rate.
        srtp: (suite, our master key, the peer's master key) when SRTP was agreed (RFC 4568), else None.
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
    srtp: Optional[Tuple[str, bytes, bytes]] = None


def negotiate(
    local: SessionDescription, remote: SessionDescription, *, codecs: Optional[Sequence[CodecLike]] = None,
    signalled_from: Optional[str] = None,
) -> MediaParams:
    """Combine our description and the peer's into the parameters of the audio stream.

    Works for both roles: (our offer, their answer) on the caller and (our answer, their offer) on the callee.
    The codec is the first of the peer's formats that we also listed; DTMF is the peer's telephone-event at
    the codec's clock rate, when we listed one at that rate too.

    Args:
        local: the description we sent.
        remote: the description we received.
        codecs: the codecs formats may name (names or ``Codec`` objects); default: every registered codec.
        signalled_from: the IP address the peer's description came from, for the scope part of the media
            address rule (``media_address``); None checks the rest of the rule only.

    Returns:
        the stream parameters. A ``0.0.0.0``/``::`` connection address takes sending out of the direction.

    Raises:
        NegotiationError: no active audio stream on either side, or no codec in common.
        MediaAddressRefused: a media address the rule refuses (a ``NegotiationError`` with a ``warning``).
        ValueError: an unknown codec name in ``codecs``.
    """
    known = None if codecs is None else _codecs.resolve(codecs)
    remote_media = remote.first_audio()
    local_media = local.first_audio()
    if remote_media is None:
        raise NegotiationError("the remote description has no active RTP audio stream")
    if local_media is None:
        raise NegotiationError("the local description has no active RTP audio stream")
    local_found, local_events = _formats(local_media, known)
    remote_found, remote_events = _formats(remote_media, known)
    listed = [codec for _, codec in local_found]
    chosen = next(((pt, codec) for pt, codec in remote_found if codec in listed), None)
    if chosen is None:
        raise NegotiationError(
            f"no codec in common: remote offers {_describe_formats(remote_media)}, "
            f"local {_describe_formats(local_media)}"
        )
    pt, codec = chosen
    dtmf_pt: Optional[int] = None
    if any(rate == codec.clock_rate for _, rate in local_events):
        dtmf_pt = next((event for event, rate in remote_events if rate == codec.clock_rate), None)
    srtp = sdes.srtp_of(local_media.get_attributes("crypto"), remote_media.get_attributes("crypto"))
    if srtp is None and (local_media.proto in SECURE_PROTOS or remote_media.proto in SECURE_PROTOS):
        raise NegotiationError("RTP/SAVP without an agreed a=crypto key: no SRTP, so no call")
    conn = remote.media_connection(remote_media)
    if conn is None:
        raise NegotiationError("the remote audio stream has no connection address")
    host = conn.host
    rtcp = remote_media.rtcp_address()
    if rtcp is not None:
        remote_rtcp = (rtcp[0] or host, rtcp[1])
    else:
        remote_rtcp = (host, remote_media.port + 1)
    direction = local.media_direction(local_media)
    if not vet_media_host(host, signalled_from) or not vet_media_host(remote_rtcp[0], signalled_from):
        direction = {"sendrecv": "recvonly", "sendonly": "inactive"}.get(direction, direction)
    return MediaParams(
        payload_type=pt,
        encoding=codec.name,
        clock_rate=codec.clock_rate,
        ptime=remote_media.ptime or local_media.ptime or 20,
        dtmf_payload_type=dtmf_pt,
        remote_rtp=(host, remote_media.port),
        remote_rtcp=remote_rtcp,
        direction=direction,
        codec=codec,
        srtp=srtp,
    )
