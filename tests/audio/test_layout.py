"""The audio layer's layout: one module per job, the package exports it all, the old paths give the same objects."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import pyvoip_fast.audio as audio
from helpers import ROOT

AUDIO_DIR = ROOT / "pyvoip_fast" / "audio"

#: each public name and the module that owns it
HOMES = {
    "TARGET_RATE": "base",
    "Source": "base",
    "Sink": "base",
    "as_int16": "base",
    "RatedSource": "resample",
    "ResampledSource": "resample",
    "resampled": "resample",
    "FileSource": "files",
    "ClipCache": "clips",
    "ClipSource": "clips",
    "open_source": "files",
    "load_audio": "files",
    "ToneSource": "generators",
    "SilenceSource": "generators",
    "WavRecorder": "sinks",
    "NullSink": "sinks",
    "TeeSink": "sinks",
    "MicrophoneSource": "devices",
    "PyAudioSink": "devices",
}

#: what ``pyvoip_fast.audio_io`` exported before the split: all of it must still be there
BEFORE_SPLIT = ["TARGET_RATE", "Source", "Sink", "FileSource", "ToneSource", "SilenceSource", "MicrophoneSource",
                "open_source", "load_audio", "WavRecorder", "PyAudioSink", "TeeSink", "NullSink", "as_int16"]


def test_the_package_exports_every_public_name_from_its_home() -> None:
    assert sorted(audio.__all__) == sorted(HOMES)
    assert set(BEFORE_SPLIT) <= set(audio.__all__)
    for name, module in HOMES.items():
        home = importlib.import_module(f"pyvoip_fast.audio.{module}")
        assert getattr(audio, name) is getattr(home, name), name
        assert name in home.__all__, f"{module}.__all__ lacks {name}"


@pytest.mark.parametrize("old", ["pyvoip_fast.audio_io"])
def test_old_paths_give_the_very_same_objects(old: str) -> None:
    mod = importlib.import_module(old)
    assert list(mod.__all__) == list(audio.__all__)
    for name in audio.__all__:
        assert getattr(mod, name) is getattr(audio, name), f"{old}.{name}"


@pytest.mark.parametrize("path", sorted(AUDIO_DIR.glob("*.py")), ids=lambda p: p.name)
def test_every_module_says_what_it_does(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert doc, f"{path.name} has no docstring"
    if path.name not in ("__init__.py", "io.py"):
        assert "Strategy" in doc and "Owns" in doc, f"{path.name}: the docstring must give its strategy and what it owns"


def test_classes_live_in_their_home_module() -> None:
    for name, module in HOMES.items():
        obj = getattr(audio, name)
        if isinstance(obj, type):
            assert obj.__module__ == f"pyvoip_fast.audio.{module}", name
