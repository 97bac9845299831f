"""In-memory ASGI simulators that speak the real APIs of the external systems."""
