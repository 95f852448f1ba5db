"""``python -m pyvoip_fast``: the command-line peer."""

import sys

from .app.cli import main

if __name__ == "__main__":
    sys.exit(main())
