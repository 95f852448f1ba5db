"""Type stubs for the compiled pyvoip_fast._rtp (ext/rtp.pyx); the twin pyvoip_fast._rtp_py has the same API."""

from typing import Any, ClassVar, Iterable, List, Optional, Sequence, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview]

RTCP_SR: int
RTCP_RR: int
RTCP_SDES: int
RTCP_BYE: int
RTCP_APP: int

class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool
    csrc: Tuple[int, ...]
    extension_profile: Optional[int]
    extension_data: bytes
    padding_length: int
    def __init__(
        self,
        *,
        payload_type: int = ...,
        sequence_number: int = ...,
        timestamp: int = ...,
        ssrc: int = ...,
        marker: bool = ...,
        payload: Buffer = ...,
        csrc: Iterable[int] = ...,
        extension_profile: Optional[int] = ...,
        extension_data: Buffer = ...,
        padding_length: int = ...,
    ) -> None: ...
    @classmethod
    def parse(cls, data: Buffer) -> "RtpPacket": ...
    @property
    def version(self) -> int: ...
    @property
    def padding(self) -> bool: ...
    @property
    def extension(self) -> bool: ...
    @property
    def payload(self) -> Buffer: ...
    def serialize(self) -> bytes: ...
    def pack_into(self, buffer: Any, offset: int = ...) -> int: ...
    def header_extensions(self) -> List[Tuple[int, bytes]]: ...
    def __len__(self) -> int: ...

def write_header(
    buffer: Any, offset: int, payload_type: int, sequence_number: int, timestamp: int, ssrc: int, marker: bool = ...
) -> int: ...
def write_packet(
    buffer: Any,
    offset: int,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer,
    marker: bool = ...,
) -> int: ...
def build_packet(
    payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: Buffer, marker: bool = ...
) -> bytes: ...
def encode_header_extensions(elements: Sequence[Tuple[int, bytes]], two_byte: bool = ...) -> Tuple[int, bytes]: ...

class _Record:
    _fields: ClassVar[Tuple[str, ...]]
    def serialize(self) -> bytes: ...

class RtcpPacket(_Record):
    packet_type: ClassVar[int]

class ReportBlock(_Record):
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int
    def __init__(
        self, ssrc: int, fraction_lost: int, cumulative_lost: int, highest_sequence: int, jitter: int, lsr: int, dlsr: int
    ) -> None: ...

class SenderReport(RtcpPacket):
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: List[ReportBlock]
    def __init__(
        self,
        ssrc: int,
        ntp_timestamp: int,
        rtp_timestamp: int,
        packet_count: int,
        octet_count: int,
        reports: Iterable[ReportBlock] = ...,
    ) -> None: ...

class ReceiverReport(RtcpPacket):
    ssrc: int
    reports: List[ReportBlock]
    def __init__(self, ssrc: int, reports: Iterable[ReportBlock] = ...) -> None: ...

class SdesChunk(_Record):
    ssrc: int
    items: List[Tuple[int, bytes]]
    def __init__(self, ssrc: int, items: Iterable[Tuple[int, Union[bytes, str]]] = ...) -> None: ...
    @property
    def cname(self) -> Optional[bytes]: ...

class SourceDescription(RtcpPacket):
    chunks: List[SdesChunk]
    def __init__(self, chunks: Iterable[SdesChunk] = ...) -> None: ...
    @classmethod
    def cname_for(cls, ssrc: int, cname: Union[str, bytes]) -> "SourceDescription": ...

class Bye(RtcpPacket):
    sources: List[int]
    reason: Optional[bytes]
    def __init__(self, sources: Iterable[int] = ..., reason: Union[str, bytes, None] = ...) -> None: ...

class App(RtcpPacket):
    subtype: int
    ssrc: int
    name: bytes
    data: bytes
    def __init__(self, subtype: int, ssrc: int, name: Union[str, bytes], data: bytes = ...) -> None: ...

def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes: ...
def build_report(
    ssrc: int,
    blocks: Iterable[Union[ReportBlock, Tuple[int, int, int, int, int, int, int]]] = ...,
    cname: Union[str, bytes] = ...,
    *,
    ntp_timestamp: Optional[int] = ...,
    rtp_timestamp: int = ...,
    packet_count: int = ...,
    octet_count: int = ...,
    reason: Union[str, bytes, None] = ...,
) -> bytes: ...
def parse_rtcp(data: Buffer, reduced_size: bool = ...) -> List[RtcpPacket]: ...
