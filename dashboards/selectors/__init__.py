"""Reads behind the pages. Every number and chart comes from the metrics rollups
(observatory.metrics.selectors.metrics_query); only lists of individual calls (slowest,
unpriced, errors by type, traces) read the call store, each through an index."""
