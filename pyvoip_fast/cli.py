"""The command-line peer (placeholder until the CLI issue lands): --version and --help."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import IMPLEMENTATION, __version__


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pyvoip-fast", description="SIP/RTP G.711 voice-over-IP peer")
    parser.add_argument("--version", action="version", version=f"pyvoip-fast {__version__} ({IMPLEMENTATION})")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
