"""The compiled tick-group loop (ext/ticks.pyx) and its pure-Python twin (media/_ticks_py.py) run the same schedule
the same way: the same slots of the same pacers, stage by stage in the same order, the same lateness histogram,
worst lateness, skips and callback count.

Each implementation runs in its own process (``PYVOIP_FAST_NO_EXTENSIONS=1`` selects the twins), on a real
``MediaClock`` whose loop's time is set by the scenario: it advances the time and runs the clock's wake-ups itself,
so every lateness is exact. The scenario has what a loaded listener meets: three tick groups, pacers with three
stages and one with a plain callback, a stage that raises, a stage that stops another call's pacer, a wake-up 70 ms
late (bursts and skips), and one 130 ms late (a pacer that may burst 10 slots: the histogram's last bin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.helpers import require_compiled

#: what both scenarios start from: a loop whose time is ``T[0]``, set by the scenario
PRELUDE = r"""
import asyncio, json, logging, random, sys
from pyvoip_fast import _compat
from pyvoip_fast.media import clock as mc

logging.disable(logging.CRITICAL)  # (the raising stages are logged; the trace is what is compared)
T = [0.0]

class Loop(asyncio.SelectorEventLoop):
    def time(self):
        return T[0]

"""

SCENARIO = PRELUDE + r"""
T[0] = 1000.0
loop = Loop()
clock = mc.MediaClock(loop)
trace = []
pacers = {}

def stage(name, k):
    def run(n, due):
        trace.append([name, k, n, round(due, 6), round(T[0], 6)])
        T[0] += 0.0003  # each stage takes 0.3 ms: later members run later
        if name == "bad" and k == 1:
            raise RuntimeError("a broken stream")
        if name == "stopper" and k == 0 and n == 3:
            pacers["victim"].stop()
    return run

def plain(n, due):
    trace.append(["plain", -1, n, round(due, 6), round(T[0], 6)])

for i, name in enumerate(["a", "b", "bad", "stopper", "c", "d", "victim"]):
    start = 1000.0 + 0.002 * (i % 3)  # three phases: three groups
    pacers[name] = mc.Pacer(clock, 0.02, None, start=start, stages=[stage(name, k) for k in range(3)],
                            note_stage=1 if name == "d" else 0, max_burst=10 if name == "d" else 3)
pacers["plain"] = mc.Pacer(clock, 0.02, plain, start=1000.002)
assert len(clock._groups) == 3
steps = [0.0001] * 30 + [0.07] + [0.0004] * 20 + [0.13] + [0.0002] * 20
for dt in steps:
    T[0] += dt
    if clock._heap and clock._heap[0][0] <= T[0] + clock.early:
        clock._run()
    T[0] += 0.0019
    if clock._heap and clock._heap[0][0] <= T[0] + clock.early:
        clock._run()
loop.close()
out = {
    "impl": _compat.implementation(),
    "base": type(pacers["a"]).__mro__[1].__module__,
    "trace": trace,
    "lateness": {str(i): c for i, c in enumerate(clock.lateness) if c},
    "worst": round(clock.worst_recent, 6),
    "callbacks_run": clock.callbacks_run,
    "skipped": {k: p.skipped for k, p in pacers.items()},
    "n": {k: p.n for k, p in pacers.items()},
}
print(json.dumps(out))
"""


#: random schedules, one per seed: pacers joining and leaving groups, zero to four stages, any note stage and burst,
#: stages that raise or stop another pacer (or themselves), wake-ups early, on time and up to 150 ms late
RANDOM = PRELUDE + r"""
results = []
for seed in json.loads(sys.argv[1]):
    rng = random.Random(seed)
    T[0] = 500.0
    loop = Loop()
    clock = mc.MediaClock(loop)
    trace, pacers = [], []

    def make(i, k, nstages):
        def run(n, due):
            trace.append([i, k, n, round(due, 6), round(T[0], 6)])
            T[0] += rng.choice((0.0, 0.0001, 0.0004))
            roll = rng.random()
            if roll < 0.02:
                raise RuntimeError("a broken stream")
            if roll < 0.04 and pacers:
                rng.choice(pacers).stop()
        return run

    def add():
        i = len(pacers)
        nstages = rng.choice((0, 1, 2, 3, 3, 4))
        period = rng.choice((0.02, 0.02, 0.03))
        start = clock.on_grid(T[0]) + mc.GRID * rng.randrange(3)
        kw = dict(start=start, max_burst=rng.randint(1, 5))
        if nstages:
            p = mc.Pacer(clock, period, None, stages=[make(i, k, nstages) for k in range(nstages)],
                         note_stage=rng.randrange(nstages), **kw)
        else:
            p = mc.Pacer(clock, period, make(i, -1, 0), **kw)
        pacers.append(p)

    for _ in range(rng.randint(1, 10)):
        add()
    for step in range(400):
        T[0] += rng.choice((0.0002, 0.0005, 0.001, 0.002, 0.002, 0.004, 0.021, 0.07, 0.15))
        roll = rng.random()
        if roll < 0.03:
            add()
        elif roll < 0.05 and pacers:
            rng.choice(pacers).stop()
        if clock._heap and clock._heap[0][0] <= T[0] + clock.early:
            clock._run()
    loop.close()
    results.append({
        "trace": trace,
        "lateness": {str(i): c for i, c in enumerate(clock.lateness) if c},
        "worst": round(clock.worst_recent, 6),
        "callbacks_run": clock.callbacks_run,
        "skipped": [p.skipped for p in pacers],
        "n": [p.n for p in pacers],
    })
print(json.dumps(results))
"""


def _run(twins: bool, script: str = SCENARIO, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "PYVOIP_FAST_NO_EXTENSIONS"}
    if twins:
        env["PYVOIP_FAST_NO_EXTENSIONS"] = "1"
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_compiled_tick_loop_runs_the_schedule_as_the_twin_does() -> None:
    require_compiled("_ticks")
    compiled, twin = _run(False), _run(True)
    assert compiled["impl"] == "cython" and compiled["base"] == "pyvoip_fast.media._ticks"
    assert twin["impl"] == "python" and twin["base"] == "pyvoip_fast.media._ticks_py"
    for key in ("trace", "lateness", "worst", "callbacks_run", "skipped", "n"):
        assert compiled[key] == twin[key], key
    trace = twin["trace"]
    # the scenario did what it is for: every stage of many slots, bursts and skips, a pacer stopped mid-wake-up,
    # the raising stage's call kept going, lateness in the last bin
    assert len(trace) > 200
    assert {(name, k) for name, k, *_ in trace} >= {(n, k) for n in "ab" for k in range(3)} | {("plain", -1)}
    assert ["bad", 2] in [row[:2] for row in trace]  # its stage 1 raised; its stage 2 still ran
    # "victim" shares "stopper"'s group and joined after it: its slot 3 was due in the wake-up whose first stage
    # stopped it, and none of that slot's stages ran
    assert max(row[2] for row in trace if row[0] == "victim") == 2
    assert ["stopper", 0, 3] in [row[:3] for row in trace]
    assert all(twin["skipped"][name] > 0 for name in "abc") and twin["skipped"]["d"] == 0  # (d: bursts of 10)
    assert "1000" in twin["lateness"] and twin["worst"] > 0.1
    # stage by stage across a group: every member's stage 0 before any member's stage 1
    first = [row for row in trace if row[2] == 0 and row[0] in ("a", "stopper")]
    assert [row[1] for row in first] == [0, 0, 1, 1, 2, 2]


def test_compiled_tick_loop_matches_the_twin_on_random_schedules() -> None:
    require_compiled("_ticks")
    seeds = json.dumps(list(range(1, 41)))
    compiled, twin = _run(False, RANDOM, seeds), _run(True, RANDOM, seeds)
    assert len(compiled) == len(twin) == 40
    for seed, (c, t) in enumerate(zip(compiled, twin), start=1):
        assert c == t, f"seed {seed}"
    # the schedules were not trivial: many slots, skips, counts across the histogram
    assert sum(len(t["trace"]) for t in twin) > 20_000
    assert sum(sum(t["skipped"]) for t in twin) > 100
    assert max(int(bin_) for t in twin for bin_ in t["lateness"]) == 1000


def test_lateness_is_read_on_the_loops_clock() -> None:
    """On a real asyncio loop the compiled loop reads the time itself (``clock_gettime``, where ``time.monotonic``
    is that): a member whose slot waits 5 ms behind the stage before it is counted 5 ms late, not on another clock."""
    import asyncio
    import time as _time

    from pyvoip_fast.media.clock import MediaClock, Pacer

    ticks = 8

    async def main() -> MediaClock:
        clock = MediaClock(asyncio.get_running_loop())
        done = asyncio.get_running_loop().create_future()
        seen = []

        def slow(n: int, due: float) -> None:
            until = _time.monotonic() + 0.005
            while _time.monotonic() < until:
                pass

        def record(n: int, due: float) -> None:
            seen.append(n)
            if len(seen) == ticks and not done.done():
                done.set_result(None)

        start = clock.on_grid(clock.now()) + 0.02
        first = Pacer(clock, 0.02, None, start=start, stages=[slow, slow])
        second = Pacer(clock, 0.02, None, start=start, stages=[record, slow])
        assert first._group is second._group
        await asyncio.wait_for(done, 5)
        first.stop()
        second.stop()
        return clock

    clock = asyncio.run(main())
    late_bins = [i for i, c in enumerate(clock.lateness) for _ in range(c) if i >= 45]
    # the second member of every tick: 5 ms behind the first's send stage (bins of 0.1 ms), never the last bin
    assert len(late_bins) >= ticks and all(45 <= i < 1000 for i in late_bins), late_bins
    assert 0.0045 <= clock.worst_recent < 0.1
