"""App: what users run. ``Phone`` and ``Call`` (the asyncio API: ``phone``), the SIP user agent that drives the
sans-IO endpoint over a UDP transport (``useragent``), the ``pyvoip-fast`` command line (``cli``) and its
``bench`` sub-command (``bench``).

May import every layer below: ``media``, ``net``, ``audio``, ``sip``, ``rtp``, ``codecs`` and the bottom layer.
"""
