"""A SIP account (who we are at a registrar) and the live registration of it.

``Account`` is plain configuration: the address of record, the digest username and password, the registrar
(default: the AOR's domain), an optional outbound proxy, the transport, the expiry to ask for, the keep-alive
interval and a CA file for TLS. ``Phone(account=...)`` and ``pyvoip-fast --account`` take one.

``Registration`` is what ``UserAgent.register()`` returns: its ``state`` (``RegistrationState``), the granted
``expires``, the ``contact`` registered, how many times it was refreshed, and ``unregister()``. The sans-IO endpoint
does the protocol (``sip/registration.py``); this object only turns its events into awaitables and log lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from ..errors import RegistrationError
from ..sip import events as ev
from ..sip.digest import Credentials
from ..sip.registration import RegistrationState
from ..sip.routing import TRANSPORTS
from ..sip.uri import SipUri, parse_uri

__all__ = ["Account", "Registration", "RegistrationState", "password_from_env", "registrar_of"]

logger = logging.getLogger("pyvoip_fast.app.useragent")


def password_from_env(variable: str) -> str:
    """The password held by environment variable ``variable`` (so it never appears on a command line).

    Raises:
        ValueError: the variable is not set or empty.
    """
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"environment variable {variable} (--password-env) is not set or empty")
    return value


def registrar_of(aor: str, registrar: Optional[str] = None) -> Tuple[SipUri, SipUri]:
    """The parsed AOR and the REGISTER Request-URI: ``registrar``, else the AOR's domain (RFC 3261 §10.2).

    Raises:
        ValueError: an AOR without a user part, or a URI that is not sip:/sips:.
    """
    aor_uri = parse_uri(aor)
    if not isinstance(aor_uri, SipUri) or not aor_uri.user:
        raise ValueError(f"an address of record is sip:user@domain, not {aor!r}")
    reg_uri = parse_uri(registrar) if registrar is not None else SipUri(
        aor_uri.host, aor_uri.port, scheme=aor_uri.scheme,
        params=tuple(p for p in aor_uri.params if p[0] == "transport"))
    if not isinstance(reg_uri, SipUri):
        raise ValueError(f"the registrar must be a sip: or sips: URI, not {registrar!r}")
    return aor_uri, reg_uri


@dataclass(frozen=True)
class Account:
    """A SIP account.

    Attributes:
        aor: the address of record, ``sip:alice@example.com``.
        password: the digest password (never shown by ``repr``); None for a server that does not authenticate.
        auth_user: the digest username; default the AOR's user part.
        registrar: the REGISTER Request-URI; default ``sip:`` + the AOR's domain.
        proxy: an outbound proxy URI (``sip:proxy.example.com;transport=tcp``); every request outside a dialog
            goes through it (and so does the REGISTER).
        transport: the default transport (``udp``, ``tcp``, ``tls``) of requests whose URI names none.
        expires: the registration lifetime to ask for, seconds.
        keepalive: seconds between CRLF keep-alives on the registration flow (None: none).
        ca_file: PEM of a private CA for TLS (default: the system's store).
        register: False to use the account's identity and credentials without registering.
    """

    aor: str
    password: Optional[str] = field(default=None, repr=False)
    auth_user: Optional[str] = None
    registrar: Optional[str] = None
    proxy: Optional[str] = None
    transport: str = "udp"
    expires: int = 600
    keepalive: Optional[float] = 30.0
    ca_file: Optional[str] = None
    register: bool = True

    def __post_init__(self) -> None:
        uri = parse_uri(self.aor)
        if not isinstance(uri, SipUri) or not uri.user:
            raise ValueError(f"an account's address of record is sip:user@domain, not {self.aor!r}")
        for name in ("registrar", "proxy"):
            value = getattr(self, name)
            if value is not None and not isinstance(parse_uri(value), SipUri):
                raise ValueError(f"the {name} must be a sip: or sips: URI, not {value!r}")
        if self.transport.upper() not in TRANSPORTS:
            raise ValueError(f"transport must be one of udp, tcp, tls, not {self.transport!r}")
        if not 1 <= int(self.expires) < 2 ** 31:
            raise ValueError(f"expires must be 1 to 2**31-1 seconds, not {self.expires!r}")

    @property
    def uri(self) -> SipUri:
        uri = parse_uri(self.aor)
        assert isinstance(uri, SipUri)
        return uri

    @property
    def credentials(self) -> Optional[Credentials]:
        """Digest credentials (the auth user, else the AOR's user), or None without a password."""
        if self.password is None:
            return None
        return Credentials(self.auth_user or self.uri.user or "", self.password)


class Registration:
    """A registration kept alive by the user agent (see the module docstring)."""

    def __init__(self, ua: Any, handle: int, aor: str) -> None:
        # ``ua`` is the ``UserAgent`` that owns it (not imported: the user agent imports this module)
        self._ua = ua
        self.handle = handle
        self.aor = aor
        self.contact = ""
        self.expires = 0
        self.refreshes = 0
        self.last_error: Optional[RegistrationError] = None
        self._first: asyncio.Future[None] = ua._loop.create_future()
        self._removed: asyncio.Future[None] = ua._loop.create_future()

    @property
    def state(self) -> RegistrationState:
        state: RegistrationState = self._ua.endpoint.registration_state(self.handle)
        return state

    @property
    def registered(self) -> bool:
        return self.state is RegistrationState.REGISTERED

    async def wait_registered(self) -> None:
        """Return once the first REGISTER succeeded.

        Raises:
            RegistrationError: it failed (the registrar's answer, or 408 when none came).
        """
        await asyncio.shield(self._first)

    async def unregister(self, timeout: float = 2.0) -> bool:
        """Remove the binding (``Expires: 0``) and wait for the answer (at most ``timeout`` seconds).

        Returns:
            True when the registrar confirmed it.
        """
        if self._ua._closed:
            return False
        sent = self._ua._act(lambda now: self._ua.endpoint.unregister(self.handle, now))
        if not sent:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self._removed), timeout)
        except asyncio.TimeoutError:
            logger.warning("[SIP] No answer to the unregistration of %s", self.aor)
            return False
        return True

    # -- events from the endpoint ---------------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Registered):
            self.contact, self.expires = event.contact, event.expires
            self.refreshes += 1 if event.refresh else 0
            self.last_error = None
            if not self._first.done():
                self._first.set_result(None)
        elif isinstance(event, ev.RegistrationFailed):
            error = RegistrationError(event.status_code, event.reason, f"registration of {self.aor} failed: "
                                      f"{event.reason}", auth=event.auth)
            self.last_error = error
            if not self._first.done():
                self._first.set_exception(error)
                self._first.exception()  # retrieved: the caller may have stopped waiting
        elif isinstance(event, ev.Unregistered):
            if not self._removed.done():
                self._removed.set_result(None)

    def __repr__(self) -> str:
        return f"<Registration {self.aor} {self.state.value} expires={self.expires}>"
