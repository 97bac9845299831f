"""External systems: the ports flows speak, and one adapter package per system."""
