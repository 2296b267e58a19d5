"""The options of `friendscrape export`, and the formats they offer (the export's code and
its graph files take these names from here).

Apart from the export's code, so that mounting them imports nothing of the store or of
the file writers: the command line mounts every command's options for any command it
parses.
"""

from __future__ import annotations

import argparse

from friendscrape import arguments

FORMATS = ("jsonl", "csv", "edges", "nodes", "graphml", "gexf", "changes")
COMPRESS = ("gzip", "zstd", "none")
TABLE_FORMATS = ("csv", "jsonl", "parquet")
"""The file formats of an edge or node table (--as)."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add export's options to ``parser`` (the global ones are the face's)."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="jsonl (one object per user), csv (names per user), edges or nodes (graph "
        "tables, ids on both ends), graphml or gexf (whole graph, for Gephi and networkx), "
        "changes (follows and unfollows between two waves: --from-wave, --to-wave) "
        "(default: jsonl, for an --output named .jsonl, .ndjson, .json or with no suffix)",
    )
    parser.add_argument(
        "--wave",
        type=arguments.whole(),
        help="jsonl or csv: each user's list as of this wave (default: the latest)",
    )
    parser.add_argument(
        "--from-wave",
        type=arguments.whole(),
        help="changes: the earlier wave (default: the one before --to-wave)",
    )
    parser.add_argument(
        "--to-wave",
        type=arguments.whole(),
        help="changes: the later wave (default: the latest)",
    )
    parser.add_argument(
        "--output", type=arguments.output_file, help="file to write (default: stdout)"
    )
    parser.add_argument(
        "--as",
        dest="table",
        choices=TABLE_FORMATS,
        help="file format of edges/nodes/changes (default: from the --output suffix, else csv)",
    )
    parser.add_argument(
        "--compress",
        choices=COMPRESS,
        help="compress the output as it is written (default: from the --output suffix, "
        ".gz or .zst, else none)",
    )
    parser.add_argument(
        "--within",
        action="store_true",
        help="only edges between users of the job (the induced subgraph)",
    )
    parser.add_argument(
        "--partition", type=arguments.whole(), help="export this partition's users only"
    )
    parser.add_argument(
        "--force", action="store_true", help="write a GraphML/GEXF graph of any size"
    )
