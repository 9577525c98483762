"""LLM-serving compute: kernel-profile schema, cost models, servers, KV cache."""
