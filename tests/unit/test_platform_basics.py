"""Settings, URLs and migration discovery (pure functions)."""

from __future__ import annotations

import pytest

from cityos.platform.db.migrate import MigrationError, discover
from cityos.platform.mqtt import BrokerAddress
from cityos.platform.settings import Settings, redact_url


def test_settings_read_cityos_environment_variables(monkeypatch):
    monkeypatch.setenv("CITYOS_API_PORT", "9123")
    monkeypatch.setenv("CITYOS_K_ANONYMITY", "15")
    settings = Settings()
    assert settings.api_port == 9123
    assert settings.k_anonymity == 15


def test_settings_refuse_k_below_two(monkeypatch):
    monkeypatch.setenv("CITYOS_K_ANONYMITY", "1")
    with pytest.raises(ValueError, match="k_anonymity"):
        Settings()


def test_redact_url_hides_the_password():
    assert redact_url("postgresql://cityos:s3cr%40t@127.0.0.1:5432/cityos") == "postgresql://cityos:***@127.0.0.1:5432/cityos"


def test_broker_address_parses_credentials_and_tls():
    address = BrokerAddress.parse("mqtts://dev%2F1:p%40ss@broker.example:8884")
    assert (address.host, address.port, address.username, address.password, address.tls) == (
        "broker.example", 8884, "dev/1", "p@ss", True)


def test_broker_address_refuses_other_schemes():
    with pytest.raises(ValueError, match="mqtt://"):
        BrokerAddress.parse("http://broker")


def test_migrations_are_numbered_without_gaps():
    versions = [m.version for m in discover()]
    assert versions == list(range(1, len(versions) + 1))


def test_duplicate_migration_versions_are_an_error(tmp_path):
    (tmp_path / "0001_a.sql").write_text("select 1")
    (tmp_path / "0001_b.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="two migrations"):
        discover(tmp_path)
