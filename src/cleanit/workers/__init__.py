"""Background workers: procrastinate tasks that call the services."""
