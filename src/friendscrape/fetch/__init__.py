"""HTTP for every source: one session, timeouts, size caps, retries, rate limits."""
