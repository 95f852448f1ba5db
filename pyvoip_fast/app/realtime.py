"""Real-time scheduling for a serving listener: ``pyvoip-fast listen --realtime [PRIORITY]``.

A listener's media is paced by one timer every 2 ms. Where other processes want the same cores (a load generator,
a database, the other services of the host), Linux's fair scheduler may let the woken listener wait for the
running process's time slice: waits of 5-15 ms, during which every call due is late, and the calls after them
later still while the listener catches up. ``SCHED_RR`` at a low real-time priority makes the listener run as
soon as its timer or a packet wakes it, ahead of every ordinary process: what audio servers do (JACK; PipeWire
through rtkit) and what Asterisk's ``-p`` and FreeSWITCH's ``-rp`` ask for.

The kernel keeps part of every second for ordinary processes (``kernel.sched_rt_runtime_us``: 5 % by default),
so a listener that spins cannot lock the host up; admission control (``--max-cpu``, ``--max-lag``) keeps it from
getting near. The priority applies to the thread that asks (the CLI's main thread, before the event loop starts)
and to the threads it starts afterwards.

Allowed to root, to a process with ``CAP_SYS_NICE``, or up to the process's ``RLIMIT_RTPRIO`` (``ulimit -r``;
``rtprio`` in ``/etc/security/limits.conf``; ``LimitRTPRIO=`` in a systemd unit). A refusal is an error, not a
warning: the operator asked for it.
"""

from __future__ import annotations

import logging
import os
from typing import Tuple

from ..errors import PyVoipError

__all__ = ["DEFAULT_PRIORITY", "PRIORITY_RANGE", "RealtimeRefused", "enter_realtime"]

logger = logging.getLogger(__name__)

#: the priority ``--realtime`` asks for when none is given: above every ordinary process, below the kernel's and
#: the audio servers' own real-time threads (JACK and PipeWire take 20 and up by default)
DEFAULT_PRIORITY = 10
#: ``SCHED_RR`` priorities Linux accepts
PRIORITY_RANGE: Tuple[int, int] = (1, 99)


class RealtimeRefused(PyVoipError):
    """The system did not grant real-time scheduling (permission, platform or limit)."""


def enter_realtime(priority: int = DEFAULT_PRIORITY) -> None:
    """Put the calling thread (and the threads it starts afterwards) under ``SCHED_RR`` at ``priority``.

    Raises:
        ValueError: ``priority`` outside ``PRIORITY_RANGE``.
        RealtimeRefused: the platform has no ``SCHED_RR`` or the system refused it (the message says why and what
            would allow it).
    """
    lo, hi = PRIORITY_RANGE
    if not lo <= priority <= hi:
        raise ValueError(f"real-time priority must be {lo}-{hi}, not {priority}")
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_RR"):
        raise RealtimeRefused("real-time scheduling (SCHED_RR) is not available on this platform")
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except PermissionError:
        raise RealtimeRefused(
            f"real-time priority {priority} refused: run as root, give the process CAP_SYS_NICE, or raise its "
            f"RLIMIT_RTPRIO to at least {priority} (ulimit -r; now {_rtprio_limit()})"
        ) from None
    except OSError as exc:
        raise RealtimeRefused(f"real-time priority {priority} refused: {exc.strerror or exc}") from None
    logger.info("[Sched] Real-time scheduling: SCHED_RR, priority %d", priority)


def _rtprio_limit() -> str:
    import resource  # (POSIX only: this runs only where sched_setscheduler exists)

    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
