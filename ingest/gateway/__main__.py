"""``python -m cityos.ingest.gateway ...``: the gateway's command line (same as ``cityos gateway``)."""

from cityos.ingest.gateway.cli import app

if __name__ == "__main__":
    app()
