"""Adapters: PostgreSQL, jobs, mail, webhooks, passwords, the embedded database server."""
