"""`friendscrape status`: ``options`` is its command line, ``command`` its work (the
shared read model's figures in their versioned JSON form), ``table`` the people's table.

This file imports nothing: the command line mounts ``options`` for every command it
parses, and the store is opened only when status runs.
"""
