"""`friendscrape report`: ``options`` is its command line, ``command`` its work (one
self-contained HTML page), with ``figures``, ``svg``, ``charts``, ``tables`` and ``page``.

This file imports nothing: the command line mounts ``options`` for every command it
parses, and the page's parts load only when report runs.
"""
