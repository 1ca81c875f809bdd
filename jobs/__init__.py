"""RQ job functions: they take ids, re-load rows, delegate to services. Each module owns its enqueue_* helper."""
