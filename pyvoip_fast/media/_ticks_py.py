"""Pure-Python twin of ``pyvoip_fast.media._ticks`` (ext/ticks.pyx): the fields of a ``media.clock.Pacer`` and the
per-wake-up loop of a tick group (the pacers of one period and phase that share one clock entry).

``media.clock`` subclasses both: ``Pacer`` adds its schedule's rules (``_serve``: skipping, bursts), ``_TickGroup``
its membership. What runs here is the group's clock entry and, at each wake-up, every member's due slot, stage by
stage, and the count of each slot's lateness in the clock's histogram. The compiled module runs the same loop without the
interpreter (about a fifth of a loaded listener's processor time went to this loop in Python);
``tests/media/test_ticks_parity.py`` runs both on the same schedules.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["PacerCore", "TickGroupCore"]

logger = logging.getLogger("pyvoip_fast.media.clock")  # the clock's own log: the twin is its implementation


class PacerCore:
    """The fields of ``media.clock.Pacer`` (slots, as the compiled base's fields)."""

    __slots__ = ("clock", "period", "callback", "start", "n", "max_burst", "skipped", "on_skip", "_group", "_note",
                 "stages", "note_stage")

    clock: Any
    period: float
    callback: Callable[[int, float], None]
    start: float
    n: int
    max_burst: int
    skipped: int
    on_skip: Optional[Callable[[int], None]]
    _group: Any
    _note: Optional[Callable[[float], None]]
    stages: Tuple[Callable[[int, float], None], ...]
    note_stage: int


class TickGroupCore:
    """The fields of ``media.clock._TickGroup`` and what it does at each wake-up.

    ``key`` is None for a pacer of its own on a clock with only the basic interface (``time``, ``early``,
    ``call_at``: a simulated clock in a benchmark): its slots go through ``Pacer._serve`` and nothing counts their
    lateness here. Otherwise the clock is a ``MediaClock`` (``now``, ``lateness``, ``note_lateness``).
    """

    __slots__ = ("clock", "key", "members", "entry", "when")

    clock: Any
    key: Optional[Tuple[float, int]]
    members: Dict[Any, None]
    entry: Any
    when: float

    def _schedule(self, when: float) -> None:
        """The group's next wake-up at ``when``, in place of the one it had."""
        if self.entry is not None:
            self.entry.cancel()
        self.when = when
        if self.key is None:  # a pacer of its own on a clock with only the basic interface
            self.entry = self.clock.call_at(when, self._fire)
        else:
            self.entry = self.clock.call_at(when, self._fire, measured=False)

    def _fire(self, _when: float) -> None:
        rest = self._fire_first()
        if rest is not None:
            self._fire_rest(rest)

    def _fire_first(self) -> Optional[Tuple[List[Any], int]]:
        """Serve the members' due slots up to their first stage, and reschedule the group.

        Returns the staged members whose later stages are still to run and the most stages any of them has (for
        ``_fire_rest``), or None. A wake-up that serves several groups (the clock fell behind) runs every group's
        first stage, the send, before any group's later ones: the packets of the last group due wait for the other
        groups' sending only, not for their receiving and playout too.
        """
        self.entry = None
        self.when = math.inf
        clock = self.clock
        grouped = self.key is not None  # the clock is a MediaClock: its lateness histogram is counted here
        now = clock.now if grouped else clock.time  # (a pacer's own clock may be a simulated one)
        limit = now() + clock.early
        nxt = math.inf
        served = 0
        staged: List[Tuple[Any, int, float]] = []
        stages = 0
        for pacer in list(self.members):
            if pacer._group is not self:
                continue
            n, start, period = pacer.n, pacer.start, pacer.period
            due = start + n * period
            if grouped and due <= limit < start + (n + 1) * period:
                # the usual wake-up: exactly one slot due, nothing to skip (``Pacer._serve``, inlined)
                pacer.n = n + 1
                served += 1
                if pacer.stages:  # run with the group's other staged pacers, stage by stage (below)
                    staged.append((pacer, n, due))
                    if len(pacer.stages) > stages:
                        stages = len(pacer.stages)
                else:
                    clock.note_lateness(now() - due)
                    try:
                        pacer.callback(n, due)
                    except Exception:  # a broken stream must not stop the others of its group
                        logger.exception("media clock callback %r failed", pacer.callback)
            else:
                served += pacer._serve(limit)
            if pacer._group is self:
                due = pacer.start + pacer.n * pacer.period
                if due < nxt:
                    nxt = due
        self._run_stage(0, staged)
        if grouped:
            clock.callbacks_run += served - 1  # the clock counted this entry once
        if self.members and nxt < self.when:
            self._schedule(nxt)
        return (staged, stages) if stages > 1 else None

    def _fire_rest(self, rest: Tuple[List[Any], int]) -> None:
        """The later stages of the members ``_fire_first`` served, stage by stage."""
        staged, stages = rest
        for k in range(1, stages):
            self._run_stage(k, staged)

    def _run_stage(self, k: int, staged: List[Any]) -> None:
        """Stage ``k`` of each staged member still in the group, its lateness counted at its ``note_stage``."""
        clock = self.clock
        now = clock.now if self.key is not None else clock.time
        for pacer, n, due in staged:
            todo = pacer.stages
            if k >= len(todo) or pacer._group is not self:  # (stopped by an earlier stage)
                continue
            if k == pacer.note_stage:
                clock.note_lateness(now() - due)
            try:
                todo[k](n, due)
            except Exception:  # a broken stream must not stop the others of its group
                logger.exception("media clock stage %r failed", todo[k])
