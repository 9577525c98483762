"""Real LLM kernels timed into profiles (issue 4)."""
