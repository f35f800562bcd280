"""Every setting is documented: the README's configuration table names each field of the one settings object."""

from __future__ import annotations

from pathlib import Path

from cityos.platform.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readmes_configuration_table():
    table = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    missing = [name for name in Settings.model_fields if f"CITYOS_{name.upper()}" not in table]
    assert missing == [], f"settings missing from the README's configuration table: {missing}"
