"""The ``cityos`` command line: a thin layer over the same functions the API calls.

Each component contributes a Typer app; they are mounted here by name so that an install
without the server extras (the edge gateway) still runs the commands it has.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(name="cityos", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="cityos: City as Platform (IoT ingest, GIS, open data).")

#: (module:attribute of a Typer app, group name or "" to merge its commands at top level)
COMMANDS: list[tuple[str, str]] = [
    ("cityos.deploy.cli:app", ""),
    ("cityos.platform.db_cli:app", "db"),
    ("cityos.platform.tokens_cli:app", "tokens"),
    ("cityos.platform.consent_cli:app", "consent"),
    ("cityos.ingest.cli:ingest_app", ""),
    ("cityos.ingest.cli:devices_app", "devices"),
    ("cityos.ingest.cli:deadletters_app", "deadletters"),
    ("cityos.gis.cli:app", "gis"),
    ("cityos.opendata.cli:publish_app", ""),
    ("cityos.opendata.cli:datasets_app", "datasets"),
    ("cityos.opendata.cli:requests_app", "requests"),
    ("cityos.ingest.gateway.cli:app", "gateway"),
]


def _mount() -> None:
    for spec, group in COMMANDS:
        module, _, attr = spec.partition(":")
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:  # an extra that is not installed (a gateway has no server stack)
            if exc.name and exc.name.startswith("cityos"):
                raise
            continue
        if group:
            app.add_typer(sub, name=group)
        else:
            for command in sub.registered_commands:
                app.registered_commands.append(command)


_mount()


def main() -> None:
    """Entry point of the ``cityos`` script."""
    app()


if __name__ == "__main__":
    main()
