"""Host packages the local runtime needs, installed from the host's own Debian sources.

The host's apt sources and libc are never changed: newer servers (PostgreSQL 17 with
TimescaleDB) come from a separate trixie root, see :mod:`cityos.deploy.runtime.postgres`.
"""

from __future__ import annotations

import os
import shutil
import subprocess

#: command on PATH -> Debian package that provides it
HOST_TOOLS = {
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "mmdebstrap": "mmdebstrap",
}


class ProvisioningError(RuntimeError):
    """The local runtime cannot be provisioned; the message says what to do."""


def which(command: str) -> str | None:
    """Path of ``command``, also looking in sbin folders that a non-login PATH may miss."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(command, path=path)


def ensure_commands(*commands: str) -> None:
    """Install the Debian packages that provide ``commands`` if any is missing (needs root)."""
    missing = sorted({HOST_TOOLS[c] for c in commands if which(c) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise ProvisioningError(
            f"missing host packages {', '.join(missing)}; install them with "
            f"`sudo apt-get install -y --no-install-recommends {' '.join(missing)}` and re-run"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Package lists may be absent on a fresh machine; refresh once, then install.
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env
    )
    _stop_package_services(missing)


def package_installed(package: str) -> bool:
    """True if the Debian package is installed."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return "install ok installed" in result.stdout


def ensure_packages(*packages: str) -> None:
    """Install the Debian packages that are missing (needs root)."""
    missing = [p for p in packages if not package_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ProvisioningError(f"missing host packages; run `sudo apt-get install -y {' '.join(missing)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


#: What the end-to-end tests need on the host: the browser, a Japanese font, the OGC clients (GDAL, QGIS),
#: and stress-ng (the delivery tests keep every core busy). (npm: see cityos.apps.build, by command.)
TEST_PACKAGES = ("chromium", "fonts-ipafont-gothic", "gdal-bin", "python3-qgis", "qgis-providers", "stress-ng")


def _stop_package_services(packages: list[str]) -> None:
    """Debian may start a package's own service on install; the runtime runs its own instances."""
    if "mosquitto" in packages and which("service"):
        subprocess.run(["service", "mosquitto", "stop"], check=False, capture_output=True)
