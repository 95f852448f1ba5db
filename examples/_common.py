"""What every example shares: the command line (``--bind``, ``--calls``), logging, and the answer loop.

Each example is one file with one ``handle(call, args)`` coroutine: the voice application itself. This module
answers calls on ``--bind`` and runs ``handle`` for each, several at once, until ``--calls`` calls have been
served (0: forever; Ctrl-C stops).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any, Awaitable, Callable, Optional, Sequence

from pyvoip_fast.session import Phone


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bind", default="127.0.0.1:5080", metavar="HOST:PORT", help="where to answer (127.0.0.1:5080)")
    p.add_argument("--calls", type=int, default=0, help="stop after this many calls (default 0: keep serving)")
    return p


def serve(handle: Callable[[Any, argparse.Namespace], Awaitable[None]], args: argparse.Namespace,
          **answer: Any) -> int:
    """Answer calls and run ``handle`` for each; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    host, _, port = args.bind.rpartition(":")

    async def main() -> None:
        async with Phone(host.strip("[]"), int(port), user="app") as phone:
            logging.info("[App] Answering on %s:%d", *phone.local_address)
            running = set()
            served = 0
            while args.calls <= 0 or served < args.calls:
                incoming = await phone.incoming()
                served += 1

                async def one(incoming: Any = incoming) -> None:
                    call = await phone.answer(incoming, **answer)
                    try:
                        await handle(call, args)
                    finally:
                        await call.hangup()
                        logging.info("[App] Call ended: %s", call.end_reason)

                task = asyncio.ensure_future(one())
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running, return_exceptions=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    return 0


def run(main: Callable[[Optional[Sequence[str]]], int]) -> None:
    sys.exit(main(None))
