"""NR radio access: numerology, geometry, channels, link abstraction, HARQ, OLLA, cells."""
