"""Database access: connections, migrations, TimescaleDB feature detection, maintenance."""
