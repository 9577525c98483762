"""Analytic baseline policies (numpy only)."""
