"""Use cases. Every entry point (API, CLI, worker, demo) calls these functions."""
