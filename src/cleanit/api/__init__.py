"""The JSON API (FastAPI). Thin: authenticate, parse, call a service, shape the answer."""
