"""Metrics: recorders and summaries."""
