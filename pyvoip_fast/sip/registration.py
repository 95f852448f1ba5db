"""Registration with a registrar (RFC 3261 §10.2), as a layer of the sans-IO endpoint.

One ``_Registration`` per address of record. Its REGISTERs share a Call-ID and From tag and count CSeq up
(§10.2: a registrar orders them by CSeq). The exchange:

- ``register()`` sends REGISTER with our Contact and ``Expires``; a 401/407 is answered with digest credentials
  (``digest.DigestAuth``: a second challenge for the same realm is a rejected password and ends the attempt,
  never a loop); a 423 Interval Too Brief is retried once with the server's ``Min-Expires``; 2xx ends it.
- The granted expiry is the ``expires`` parameter of our own binding among the 2xx's Contacts, else its
  ``Expires`` header, else what we asked for. The binding is refreshed ``min(expiry / 2, 30 s)`` before it runs
  out (a 10 s binding after 5 s, a 3,600 s one after 3,570 s).
- When the 2xx's Via shows that the registrar saw us at another address (RFC 3581 ``received``/``rport``: we are
  behind a NAT) and we registered over UDP, the Contact is re-registered with that public address at once, and
  later Contacts (calls) use it too.
- A refresh that fails for any reason but authentication is retried after ``Retry-After`` or a back-off from
  30 s doubling to 10 minutes. An authentication failure is final (``RegistrationFailed(auth=True)``).
- While registered, a keep-alive goes to the registrar's hop every ``keepalive`` seconds: a CRLF CRLF ping
  (RFC 5626 §4.4.1), which keeps a NAT binding or the TCP/TLS connection open; the adapter takes them from
  ``keepalives_to_send()``.
- ``unregister()`` sends ``Expires: 0`` for our Contact; its answer gives ``Unregistered``.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any, Dict, List, Optional, Tuple, Union

from ..errors import LocalProtocolError, SipParseError
from . import events as ev
from .abnf import is_digits
from .calls import _ALLOW, Addr, fmt_addr
from .digest import AuthenticationRejected, describe
from .message import Headers, SipRequest, SipResponse
from .routing import Hop
from .uas import _UasRequests
from .uri import NameAddress, SipUri, format_host, parse_uri

__all__ = ["RegistrationState"]

#: the longest retry back-off after a failed refresh, seconds
_MAX_BACKOFF = 600.0
_FIRST_BACKOFF = 30.0


class RegistrationState(enum.Enum):
    """Where a registration stands."""

    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERING = "unregistering"
    UNREGISTERED = "unregistered"


class _Registration:
    """One address of record's binding at its registrar."""

    def __init__(self, handle: int, aor: SipUri, registrar: SipUri, hop: Hop, routes: List[str], expires: int,
                 keepalive: Optional[float]) -> None:
        self.handle = handle
        self.aor = aor
        self.registrar = registrar
        self.hop = hop
        self.routes = routes
        self.wanted = expires
        self.keepalive = keepalive
        self.call_id = secrets.token_hex(12)
        self.tag = secrets.token_hex(6)
        self.cseq = 0
        self.state = RegistrationState.REGISTERING
        self.expires = 0  # granted
        self.contact = ""
        self.refresh_at: Optional[float] = None
        self.retry_at: Optional[float] = None
        self.keepalive_at: Optional[float] = None
        self.backoff = _FIRST_BACKOFF
        self.chain: Dict[Tuple[str, bool], Any] = {}
        self.interval_retries = 0
        self.nat_moves = 0  # Contact changes after received/rport since the last success (bounded)
        self.recover_delay = 0.0  # before re-registering over a new connection after the old one closed
        self.ever_registered = False
        self.last_status: Optional[int] = None
        self.last_reason = ""
        self.request: Optional[SipRequest] = None


class _Registering(_UasRequests):
    """The registration layer of ``SipEndpoint``: REGISTER, its refreshes, keep-alives and unregistration."""

    # -- the application's actions ------------------------------------------------------------------------------
    def register(
        self,
        aor: Union[str, SipUri],
        now: float,
        *,
        registrar: Optional[Union[str, SipUri]] = None,
        dest: Optional[Addr] = None,
        expires: int = 3600,
        keepalive: Optional[float] = None,
    ) -> int:
        """Register our Contact for ``aor`` and keep it registered.

        Args:
            aor: the address of record, ``sip:alice@example.com`` (also our From from now on).
            now: the current time.
            registrar: the Request-URI of the REGISTER; default the AOR's domain (§10.2: ``sip:example.com``).
            dest: the registrar's resolved address (ignored with an outbound proxy; not needed for an IP literal).
            expires: the binding's lifetime we ask for, seconds (1 to 2**31 - 1).
            keepalive: seconds between CRLF keep-alives while registered; None: none.

        Returns:
            the registration's handle.

        Raises:
            ValueError: a bad AOR or registrar, or no way to reach the registrar without DNS.
        """
        aor_uri = parse_uri(aor) if isinstance(aor, str) else aor
        if not isinstance(aor_uri, SipUri) or not aor_uri.user:
            raise ValueError(f"an address of record is a sip: or sips: URI with a user part, not {aor}")
        if not isinstance(expires, int) or not 1 <= expires < 2 ** 31:
            raise ValueError(f"registration expiry must be 1 to 2**31-1 seconds, not {expires!r}")
        if keepalive is not None and keepalive <= 0:
            raise ValueError("the keep-alive interval must be positive")
        if registrar is None:
            reg_uri = SipUri(aor_uri.host, aor_uri.port, scheme=aor_uri.scheme,
                             params=tuple(p for p in aor_uri.params if p[0] == "transport"))
        else:
            parsed = parse_uri(registrar) if isinstance(registrar, str) else registrar
            if not isinstance(parsed, SipUri):
                raise ValueError(f"the registrar must be a sip: or sips: URI, not {registrar}")
            reg_uri = parsed
        hop, routes = self._hop_for_new(reg_uri, dest)
        self.aor = SipUri(aor_uri.host, aor_uri.port, user=aor_uri.user, scheme=aor_uri.scheme)
        self.user = aor_uri.user
        handle = self._new_handle()
        reg = _Registration(handle, self.aor, reg_uri, hop, routes, expires, keepalive)
        self._regs[handle] = reg
        self._send_register(reg, now, reg.wanted, [])
        self._collect(now)
        return handle

    def unregister(self, handle: int, now: float) -> bool:
        """Remove our binding (``Expires: 0``); False when there is none to remove (never registered, failed)."""
        reg = self._regs.get(handle)
        if reg is None or reg.state in (RegistrationState.UNREGISTERED, RegistrationState.UNREGISTERING):
            return False
        was = reg.state
        reg.refresh_at = reg.retry_at = reg.keepalive_at = None
        if was is RegistrationState.FAILED and not reg.ever_registered:
            reg.state = RegistrationState.UNREGISTERED
            return False
        reg.state = RegistrationState.UNREGISTERING
        reg.chain = {}
        self._send_register(reg, now, 0, [])
        self._collect(now)
        return True

    def registration_state(self, handle: int) -> RegistrationState:
        """The state of a registration.

        Raises:
            LocalProtocolError: no registration with that handle.
        """
        return self._reg(handle).state

    def registration_info(self, handle: int) -> Dict[str, object]:
        """State, AOR, Contact, granted expiry, next refresh, last final status of a registration."""
        reg = self._reg(handle)
        return {"state": reg.state, "aor": str(reg.aor), "contact": reg.contact, "expires": reg.expires,
                "refresh_at": reg.refresh_at, "last_status": reg.last_status, "last_reason": reg.last_reason,
                "registrar": str(reg.registrar), "hop": reg.hop}

    def keepalives_to_send(self) -> List[Tuple[Addr, str]]:
        """Keep-alives due: (address, transport) pairs to send ``framing.KEEPALIVE_PING`` to; the list is emptied."""
        out, self._keepalives = self._keepalives, []
        return out

    # -- inside -------------------------------------------------------------------------------------------------
    def _reg(self, handle: int) -> _Registration:
        reg = self._regs.get(handle)
        if not isinstance(reg, _Registration):
            raise LocalProtocolError(f"no registration with handle {handle}")
        return reg

    def _send_register(self, reg: _Registration, now: float, expires: int, auth: List[Tuple[str, str]]) -> None:
        reg.cseq += 1
        contact = self._contact(reg.hop.transport)
        h = Headers()
        h.add("Via", str(self._via(transport=reg.hop.transport)))
        h.add("Max-Forwards", "70")
        for route in reg.routes:
            h.add("Route", route)
        h.add("From", str(NameAddress(reg.aor).with_param("tag", reg.tag)))
        h.add("To", str(NameAddress(reg.aor)))
        h.add("Call-ID", f"{reg.call_id}@{format_host(self.local_addr[0])}")
        h.add("CSeq", f"{reg.cseq} REGISTER")
        h.add("Contact", contact)
        h.add("Expires", str(expires))
        h.add("Allow", _ALLOW)
        h.add("User-Agent", self.user_agent)
        for name, value in auth:
            h.add(name, value)
        request = SipRequest("REGISTER", reg.registrar, h)
        reg.request = request
        reg.contact = contact
        what = "REGISTER" if expires else "REGISTER (Expires: 0, unregistering)"
        via = f" via {reg.hop.transport}" if reg.hop.transport != "UDP" else ""
        self.log.info("[SIP] Sending %s for %s to %s%s", what, reg.aor, fmt_addr(reg.hop.addr), via)
        key = self._start_client_tx(request, reg.hop.addr, now, None)
        self._tx_reg[key] = reg.handle

    def _registration_result(self, handle: int, kind: str, payload: object, now: float) -> None:
        reg = self._regs.get(handle)
        if not isinstance(reg, _Registration):
            return
        if kind == "response":
            assert isinstance(payload, SipResponse)
            if payload.status_code >= 200:
                self._reg_response(reg, payload, now)
            return
        why = self._transport_why.get(reg.hop.addr, "unreachable")
        status, reason = (408, "Request Timeout (no response)") if kind == "timeout" else \
            (503, f"Service Unavailable (transport error: {why})")
        self.log.warning("[SIP] REGISTER for %s: %s", reg.aor, reason)
        self._reg_failed(reg, status, reason, now, auth=False, retry_after=None)

    def _reg_response(self, reg: _Registration, response: SipResponse, now: float) -> None:
        code = response.status_code
        reg.last_status, reg.last_reason = code, response.reason
        expires = 0 if reg.state is RegistrationState.UNREGISTERING else reg.wanted
        self.log.info("[SIP] Received %d %s (REGISTER)", code, response.reason)
        if code in (401, 407):
            request = reg.request
            assert request is not None
            try:
                lines = self.auth.answer(response, "REGISTER", str(reg.registrar), reg.chain)
            except AuthenticationRejected as exc:
                self.log.warning("[SIP] Registration of %s failed: %s", reg.aor, exc.reason)
                self._reg_failed(reg, code, exc.reason, now, auth=True, retry_after=None)
                return
            self.log.info("[SIP] Authenticating as %r: %s", self.auth.credentials.username
                          if self.auth.credentials else "", describe(response))
            self._send_register(reg, now, int(request.headers.get("Expires") or expires), lines)
            return
        if code == 423 and reg.state is not RegistrationState.UNREGISTERING:
            minimum = response.headers.get("Min-Expires") or ""
            if is_digits(minimum.strip()) and reg.wanted < int(minimum) < 2 ** 31 and reg.interval_retries < 2:
                reg.interval_retries += 1
                reg.wanted = int(minimum)
                reg.chain = {}
                self.log.info("[SIP] Registrar wants at least %s s: registering again with that", minimum)
                self._send_register(reg, now, reg.wanted, [])
                return
            self._reg_failed(reg, code, f"423 {response.reason} (Min-Expires {minimum or 'missing'})", now,
                             auth=False, retry_after=None)
            return
        if code >= 300:
            retry = response.headers.get("Retry-After") or ""
            retry_after = float(retry.split(";")[0].strip()) if is_digits(retry.split(";")[0].strip()) else None
            self._reg_failed(reg, code, f"{code} {response.reason}", now, auth=code == 403, retry_after=retry_after)
            return
        # 2xx
        reg.chain = {}
        reg.interval_retries = 0
        if reg.state is RegistrationState.UNREGISTERING:
            reg.state = RegistrationState.UNREGISTERED
            reg.expires = 0
            self.log.info("[SIP] Unregistered %s", reg.aor)
            self._events.append(ev.Unregistered(handle=reg.handle, status_code=code))
            return
        if self._learn_public_address(reg, response, now):
            return
        granted = self._granted(reg, response)
        refresh = reg.ever_registered
        reg.state = RegistrationState.REGISTERED
        reg.ever_registered = True
        reg.expires = granted
        reg.backoff = _FIRST_BACKOFF
        reg.retry_at = None
        reg.nat_moves = 0
        reg.recover_delay = 0.0
        reg.refresh_at = now + granted - min(granted / 2.0, 30.0)
        if reg.keepalive is not None:
            reg.keepalive_at = now + reg.keepalive
        self.log.info("[SIP] Registered %s as %s for %d s", reg.aor, reg.contact, granted)
        self._events.append(ev.Registered(handle=reg.handle, aor=str(reg.aor), contact=reg.contact,
                                          expires=granted, refresh=refresh))

    def _granted(self, reg: _Registration, response: SipResponse) -> int:
        mine = NameAddress.parse(reg.contact).uri
        for value in response.headers.get_all("Contact"):
            try:
                binding = NameAddress.parse(value)
            except SipParseError:
                continue
            uri = binding.uri
            if (isinstance(uri, SipUri) and isinstance(mine, SipUri) and uri.host == mine.host
                    and uri.port == mine.port and uri.user == mine.user):
                text = binding.param("expires")
                if text and is_digits(text.strip()):
                    return int(text)
        header = (response.headers.get("Expires") or "").strip()
        return int(header) if is_digits(header) else reg.wanted

    def _learn_public_address(self, reg: _Registration, response: SipResponse, now: float) -> bool:
        """RFC 3581: re-register from the address the registrar saw, when it differs (UDP only)."""
        if reg.hop.transport != "UDP":
            return False
        try:
            via = response.top_via
        except SipParseError:
            return False
        received, rport = via.param("received"), via.param("rport")
        if not received and not (rport and is_digits(rport)):
            return False  # the registrar said nothing about where it saw us
        host = received or via.host
        port = int(rport) if rport and is_digits(rport) else (via.port or 5060)
        if (host, port) == self.contact_addr or reg.nat_moves >= 2:
            return False
        reg.nat_moves += 1
        self.log.info("[SIP] The registrar sees us at %s (NAT): registering that address as our Contact",
                      fmt_addr((host, port)))
        self.contact_addr = (host, port)
        reg.chain = {}
        self._send_register(reg, now, reg.wanted, [])
        return True

    def _reg_failed(self, reg: _Registration, status: int, reason: str, now: float, *, auth: bool,
                    retry_after: Optional[float]) -> None:
        reg.last_status, reg.last_reason = status, reason
        reg.chain = {}
        if reg.state is RegistrationState.UNREGISTERING:
            reg.state = RegistrationState.UNREGISTERED
            self._events.append(ev.Unregistered(handle=reg.handle, status_code=status))
            return
        reg.state = RegistrationState.FAILED
        reg.refresh_at = reg.keepalive_at = None
        retry_in: Optional[float] = None
        if reg.ever_registered and not auth:
            if retry_after is not None:
                retry_in = retry_after
            else:
                retry_in = reg.backoff
                reg.backoff = min(reg.backoff * 2, _MAX_BACKOFF)
            reg.retry_at = now + retry_in
            self.log.warning("[SIP] Registration refresh of %s failed (%s): retrying in %.0f s", reg.aor, reason,
                             retry_in)
        self._events.append(ev.RegistrationFailed(handle=reg.handle, status_code=status, reason=reason, auth=auth,
                                                  retry_in=retry_in))

    def _flow_lost(self, addr: Addr, now: float) -> None:
        """The connection to ``addr`` closed: registrations over it register again (see ``connection_lost``)."""
        for reg in self._regs.values():
            if not isinstance(reg, _Registration) or reg.hop.addr != addr or reg.hop.transport == "UDP":
                continue
            if not reg.ever_registered or reg.state in (RegistrationState.UNREGISTERING,
                                                         RegistrationState.UNREGISTERED):
                continue
            if reg.state is RegistrationState.FAILED and reg.retry_at is None:
                continue  # an authentication failure: never retried
            reg.refresh_at = None
            reg.keepalive_at = None
            delay = reg.recover_delay
            reg.recover_delay = min(max(1.0, delay * 2), _FIRST_BACKOFF)
            self.log.info("[SIP] The %s connection to the registrar closed: registering %s again%s",
                          reg.hop.transport, reg.aor, f" in {delay:.0f} s" if delay else "")
            if delay:
                reg.retry_at = now + delay
            else:
                reg.retry_at = None
                reg.state = RegistrationState.REGISTERING
                reg.chain = {}
                self._send_register(reg, now, reg.wanted, [])
        self._collect(now)

    def _reg_deadline(self) -> Optional[float]:
        best: Optional[float] = None
        for reg in self._regs.values():
            for d in (reg.refresh_at, reg.retry_at, reg.keepalive_at):
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def _reg_timers(self, now: float) -> None:
        for reg in list(self._regs.values()):
            if reg.refresh_at is not None and reg.refresh_at <= now:
                reg.refresh_at = None
                self.log.info("[SIP] Refreshing the registration of %s", reg.aor)
                reg.chain = {}
                self._send_register(reg, now, reg.wanted, [])
            if reg.retry_at is not None and reg.retry_at <= now:
                reg.retry_at = None
                reg.state = RegistrationState.REGISTERING
                reg.chain = {}
                self._send_register(reg, now, reg.wanted, [])
            if reg.keepalive_at is not None and reg.keepalive_at <= now and reg.keepalive is not None:
                self._keepalives.append((reg.hop.addr, reg.hop.transport))
                reg.keepalive_at = now + reg.keepalive
