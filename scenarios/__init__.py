"""Scenarios: YAML schema, loading, building, running, and the ``edgetwin`` CLI."""
