"""`friendscrape estimate`: ``options`` is its command line, ``command`` its work (every
worker tier's days and cost), with ``model``, ``limits``, ``advice`` and ``upstream``.

This file imports nothing: the command line mounts ``options`` for every command it
parses, and the model loads only when estimate runs.
"""
