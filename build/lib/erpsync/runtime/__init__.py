"""Lambda plumbing: settings, error classes, queue envelopes, logging."""
