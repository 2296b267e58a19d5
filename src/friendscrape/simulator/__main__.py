"""``python -m friendscrape.simulator``: serve the simulated site until SIGTERM or SIGINT."""

from friendscrape.simulator.cli import main

raise SystemExit(main())
