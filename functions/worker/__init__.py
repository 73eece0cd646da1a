"""The worker function: drains the leads queue into PostgreSQL at a capped concurrency."""
