"""Import paths that users and the README rely on keep working after the package moved into layer folders.

Each old path must give the very objects of the module's new home (not copies), so ``isinstance`` checks and
monkeypatching the classes behave the same whichever path a program imports.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

#: (old path, name, new home)
PATHS = [
    ("pyvoip_fast.g711", "ulaw_encode", "pyvoip_fast.codecs.g711"),
    ("pyvoip_fast.g711", "alaw_decode", "pyvoip_fast.codecs.g711"),
    ("pyvoip_fast.g711", "IMPLEMENTATION", "pyvoip_fast.codecs.g711"),
    ("pyvoip_fast.rtp", "RtpPacket", "pyvoip_fast.rtp.packet"),
    ("pyvoip_fast.rtp", "build_packet", "pyvoip_fast.rtp.packet"),
    ("pyvoip_fast.rtp", "write_header", "pyvoip_fast.rtp.packet"),
    ("pyvoip_fast.rtcp", "parse", "pyvoip_fast.rtp.rtcp"),
    ("pyvoip_fast.rtcp", "build_report", "pyvoip_fast.rtp.rtcp"),
    ("pyvoip_fast.plc", "Concealer", "pyvoip_fast.codecs.plc"),
    ("pyvoip_fast.session", "Phone", "pyvoip_fast.app.phone"),
    ("pyvoip_fast.session", "CallEnd", "pyvoip_fast.app.phone"),
    ("pyvoip_fast.stats", "ReceiverStats", "pyvoip_fast.rtp.stats"),
    ("pyvoip_fast.media", "MediaSession", "pyvoip_fast.media.session"),
    ("pyvoip_fast.fanout", "RtpFanout", "pyvoip_fast.media.fanout"),
    ("pyvoip_fast.useragent", "UserAgent", "pyvoip_fast.app.useragent"),
    ("pyvoip_fast.sdp", "make_offer", "pyvoip_fast.sip.sdp"),
    ("pyvoip_fast.sdp", "SessionDescription", "pyvoip_fast.sip.sdp"),
    ("pyvoip_fast.audio_io", "open_source", "pyvoip_fast.audio"),
    ("pyvoip_fast.audio_io", "WavRecorder", "pyvoip_fast.audio"),
    ("pyvoip_fast.sip.endpoint", "SipEndpoint", "pyvoip_fast.sip.endpoint"),
]


@pytest.mark.parametrize("old, name, home", PATHS, ids=lambda v: str(v))
def test_old_import_path_gives_the_same_object(old: str, name: str, home: str) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(home), name)


@pytest.mark.parametrize("old", sorted({p[0] for p in PATHS}))
def test_old_module_exports_everything_it_lists(old: str) -> None:
    mod = importlib.import_module(old)
    for name in getattr(mod, "__all__", []):
        assert hasattr(mod, name), f"{old}.__all__ lists {name!r} but the module lacks it"


def test_the_command_line_still_runs_as_a_module() -> None:
    out = subprocess.run([sys.executable, "-m", "pyvoip_fast", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "pyvoip-fast" in out.stdout + out.stderr
