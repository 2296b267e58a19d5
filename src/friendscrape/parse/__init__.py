"""Parsers: pure functions from a response body to a parsed ``Page``, one module per platform."""
