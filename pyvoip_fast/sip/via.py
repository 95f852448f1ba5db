"""The Via header's value (RFC 3261 §20.42, §18.2.1; ``rport`` and ``received`` from RFC 3581).

``Via.parse`` splits ``SIP/2.0/UDP host[:port];params`` (LWS around the slashes tolerated), checks the protocol, the
sent-by host and port and the parameters, and raises ``SipParseError`` with a specific message for anything
malformed. A message's Via values come back in its responses and retransmissions: texts seen recently are not parsed
again (``uri.REMEMBERED``), though every parse returns a ``Via`` of its own.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from ..errors import SipParseError
from .abnf import TOKEN_RE as _TOKEN_RE
from .uri import Params, Remembered, _param, format_host, format_params, parse_params, split_hostport

__all__ = ["Via"]


class Via:
    """One Via value: ``SIP/2.0/UDP host[:port];branch=...;rport;received=...`` (§20.42, RFC 3581).

    Attributes:
        transport: ``UDP``, ``TCP``...; host (no brackets); port (None when absent); params in order.
    """

    __slots__ = ("transport", "host", "port", "params", "protocol")

    def __init__(
        self, host: str, port: Optional[int] = None, *, transport: str = "UDP", params: Params = (),
        protocol: str = "SIP/2.0",
    ) -> None:
        self.protocol = protocol
        self.transport = transport
        self.host = host
        self.port = port
        self.params = tuple(params)

    @classmethod
    def parse(cls, text: str) -> "Via":
        """Parse one Via value.

        Raises:
            SipParseError: malformed value.
        """
        return cls._parse(text) if cls is not Via else _VIAS(text)

    @classmethod
    def _parse(cls, text: str) -> "Via":
        text = text.strip()
        sent_protocol, _, rest = text.partition(" ")
        proto_parts = [p.strip() for p in sent_protocol.split("/")]
        if len(proto_parts) != 3 or not all(_TOKEN_RE.match(p) for p in proto_parts):
            # sent-protocol may have LWS around the slashes; retry on the whole text
            m = re.match(r"^\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*(\S+)\s+(.*)$", text)
            if not m:
                raise SipParseError(f"bad Via: {text[:60]!r}")
            proto_parts = [m.group(1), m.group(2), m.group(3)]
            rest = m.group(4)
        name, version, transport = proto_parts
        if name.upper() != "SIP":
            raise SipParseError(f"bad Via protocol {name!r}")
        rest = rest.strip()
        if not rest:
            raise SipParseError(f"Via without sent-by: {text[:60]!r}")
        sent_by, _, params_text = rest.partition(";")
        host, port = split_hostport(sent_by, "Via sent-by")
        params = parse_params(params_text, "Via")
        return cls(host, port, transport=transport.upper(), params=params, protocol=f"{name}/{version}")

    def param(self, name: str) -> Optional[str]:
        """Value of parameter ``name`` (``""`` for a flag), None when absent."""
        return _param(self.params, name)

    def with_param(self, name: str, value: Optional[str]) -> "Via":
        """A copy with ``name`` set (replacing)."""
        params = tuple(p for p in self.params if p[0].lower() != name.lower()) + ((name, value),)
        return Via(self.host, self.port, transport=self.transport, params=params, protocol=self.protocol)

    @property
    def branch(self) -> Optional[str]:
        return self.param("branch")

    @property
    def sent_by(self) -> Tuple[str, int]:
        """(host, port), the port defaulting to 5060."""
        return self.host, self.port if self.port is not None else 5060

    def __str__(self) -> str:
        host = format_host(self.host)
        hostport = host if self.port is None else f"{host}:{self.port}"
        return f"{self.protocol}/{self.transport} {hostport}{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


def _via_from(fields: Tuple[Any, ...]) -> Via:
    via = Via.__new__(Via)
    via.protocol, via.transport, via.host, via.port, via.params = fields
    return via


_VIAS = Remembered(Via._parse, lambda v: (v.protocol, v.transport, v.host, v.port, v.params), _via_from)
