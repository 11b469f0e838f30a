"""The ``cleanit`` command line (Typer + Rich)."""
