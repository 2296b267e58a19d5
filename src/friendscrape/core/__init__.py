"""The engine of one partition run: feeder, fetchers, queue, writer, watchdog, and the
pieces they use (the collector of one user, the circuit breaker, the lease, counters).

The core knows no command line, no command and no simulator."""
