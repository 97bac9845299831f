"""What a laptop lacks: simulators of each external system and the local stack (never deployed)."""
