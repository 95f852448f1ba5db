"""Sphinx configuration: the API reference from the docstrings (autodoc + napoleon, Google style), the prose pages
in Markdown (MyST), and the command-line reference generated from the argument parser at every build.

Build it as CI does, warnings as errors:  ``sphinx-build -W --keep-going -b html docs docs/_build/html``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout, when the package is not installed
os.environ.setdefault("COLUMNS", "100")  # argparse wraps its help to this width

import pyvoip_fast  # noqa: E402
from pyvoip_fast.app import cli  # noqa: E402

project = "pyvoip_fast"
author = "pyvoip_fast developers"
copyright = "pyvoip_fast developers, MIT licence"
release = version = pyvoip_fast.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated"]
root_doc = "index"

autodoc_member_order = "bysource"
# document each object once, where it is defined: modules that re-export (their __all__) do not repeat it
autodoc_default_options = {"ignore-module-all": True}
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields of their class, not a second description of each attribute
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"pyvoip_fast {release}"


def _write_cli_reference(_app: object) -> None:
    """``_generated/cli-<command>.txt``: the help of every command, exactly as ``--help`` prints it."""
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    for name, parser in cli.command_parsers().items():
        (out / f"cli-{name}.txt").write_text(parser.format_help())


def setup(app: "object") -> None:
    app.connect("builder-inited", _write_cli_reference)  # type: ignore[attr-defined]
