"""`friendscrape run`: ``options`` is its command line, ``command`` its work (collect one
partition, holding its lease, or claim partitions one after another with ``--partition
next``), ``progressbar`` the live line of an interactive run.

This file imports nothing: the command line mounts ``options`` for every command it
parses, and the collector (its HTTP client, parsers and store) loads only when a run
starts.
"""
