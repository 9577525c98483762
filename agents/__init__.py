"""Policies: the protocol, the registry and the baselines."""
