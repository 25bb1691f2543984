"""Drivers (latency, throughput), statistics and monitors; no driver names a specific backend."""
