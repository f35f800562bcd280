"""The platform's HTTP API (FastAPI); components contribute routers, mounted in :mod:`.app`."""
