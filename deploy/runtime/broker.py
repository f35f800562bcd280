"""Mosquitto (Debian's), run on 127.0.0.1 with password authentication and ACLs.

No anonymous access. The platform's own services use the ``cityos-service`` user; devices get
their own users (see ``cityos devices``), each allowed to publish only under its own id. The
password and ACL files are regenerated and the broker reloaded with SIGHUP, without a restart.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from urllib.parse import quote

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import port_open, read_pid, wait_until
from cityos.deploy.runtime.state import Secrets, StateDir, write_private
from cityos.deploy.runtime.system import ensure_commands, which
from cityos.ingest.broker_auth import SERVICE_USER, BrokerFiles
from cityos.ingest.devices import service_hash, sync_broker
from cityos.platform.settings import Settings, redact_url


def broker_conf(folder: Path, port: int, pidfile: Path, logfile: Path, tls_port: int = 0) -> str:
    """mosquitto.conf for the local broker."""
    text = f"""# written by cityos up
per_listener_settings false
allow_anonymous false
password_file {folder / 'passwd'}
acl_file {folder / 'acl'}
persistence true
persistence_location {folder / 'data'}/
autosave_interval 30
pid_file {pidfile}
log_dest file {logfile}
log_type error
log_type warning
log_type notice
log_timestamp_format %Y-%m-%dT%H:%M:%S
# Persistent sessions of offline ingest workers keep every message (acknowledged data is never
# dropped); in-flight QoS 1 to a subscriber is limited by its own Receive Maximum.
max_queued_messages 0
max_inflight_messages 0
max_packet_size 1048576
listener {port} 127.0.0.1
"""
    if tls_port:
        text += f"""listener {tls_port} 127.0.0.1
certfile {folder / 'tls' / 'server.crt'}
keyfile {folder / 'tls' / 'server.key'}
"""
    return text


class Broker:
    """The platform's MQTT broker."""

    name = "mosquitto"

    def __init__(self, settings: Settings, state: StateDir, secrets: Secrets):
        self.settings = settings
        self.state = state
        self.secrets = secrets
        self.folder = state.home / "broker"
        self.pidfile = state.pidfile("mosquitto")
        self.logfile = state.logs / "mosquitto.log"
        self.port = settings.mqtt_port

    @property
    def external(self) -> bool:
        return bool(os.environ.get("CITYOS_MQTT_URL"))

    def service_url(self) -> str:
        """Broker URL with the platform service's credentials."""
        if self.external:
            return os.environ["CITYOS_MQTT_URL"]
        pw = quote(self.secrets.get("MQTT_SERVICE_PASSWORD"), safe="")
        return f"mqtt://{SERVICE_USER}:{pw}@127.0.0.1:{self.port}"

    def _owner(self) -> tuple[int, int] | None:
        """Mosquitto drops root privileges to its own user; the files it reloads must be its."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("mosquitto")
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def ensure_tls(self) -> None:
        """A local CA and a server certificate for 127.0.0.1 (once), for the TLS listener.

        Production uses the city's own certificate (see deploy/production); gateways trust the CA
        file ``broker/tls/ca.crt`` given to them.
        """
        tls = self.folder / "tls"
        if (tls / "server.crt").exists():
            return
        tls.mkdir(parents=True, exist_ok=True)
        ext = tls / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for cmd in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=cityos local broker CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "825", "-extfile", "san.ext"],
        ):
            subprocess.run([which("openssl") or "openssl", *cmd], cwd=tls, check=True, capture_output=True)
        for key in tls.glob("*.key"):
            key.chmod(0o600)

    def ca_file(self) -> Path:
        """The CA certificate clients need for the TLS listener."""
        return self.folder / "tls" / "ca.crt"

    def write_files(self) -> None:
        """Config, password file (hashed) and ACL; existing device entries are kept."""
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        if self.settings.mqtt_tls_port:
            self.ensure_tls()
        conf = broker_conf(self.folder, self.port, self.pidfile, self.logfile, self.settings.mqtt_tls_port)
        write_private(self.folder / "mosquitto.conf", conf)
        if not (self.folder / "passwd").exists():
            # The service user only; devices are added from the registry by sync_credentials().
            self.files().write(service_hash(self.secrets.get("MQTT_SERVICE_PASSWORD")), [])
        owner = self._owner()
        if owner:
            for path in [self.folder, self.folder / "data", self.logfile.parent, *self.folder.glob("*"),
                         *self.folder.glob("tls/*")]:
                os.chown(path, *owner)
            self.logfile.touch()
            os.chown(self.logfile, *owner)
            os.chown(self.state.run, *owner)

    def files(self) -> BrokerFiles:
        """The broker's credential files and pid file."""
        return BrokerFiles(self.folder, self.pidfile)

    def sync_credentials(self, database_url: str) -> int:
        """Write the registry's active devices into the broker's files and reload it."""
        import psycopg

        with psycopg.connect(database_url) as conn:
            return sync_broker(conn, self.files(), self.secrets.get("MQTT_SERVICE_PASSWORD"))

    def up(self) -> None:
        if self.external:
            return
        ensure_commands("mosquitto", "mosquitto_passwd")
        self.write_files()
        if read_pid(self.pidfile) is None:
            if port_open("127.0.0.1", self.port):
                raise RuntimeError(f"port {self.port} is taken by another program; set CITYOS_MQTT_PORT")
            subprocess.run([which("mosquitto") or "mosquitto", "-c", str(self.folder / "mosquitto.conf"), "-d"],
                           check=True)
        try:
            wait_until(lambda: port_open("127.0.0.1", self.port), 15, "Mosquitto")
        except TimeoutError as exc:
            tail = self.logfile.read_text()[-1000:] if self.logfile.exists() else "(no log written: can the "\
                "mosquitto user reach the state folder?)"
            raise RuntimeError(f"Mosquitto did not start on port {self.port}: {tail}") from exc

    def down(self) -> bool:
        if self.external:
            return False
        from cityos.deploy.runtime.process import stop_pid

        return stop_pid(self.pidfile)

    def version(self) -> str:
        exe = which("mosquitto")
        if not exe:
            return ""
        out = subprocess.run([exe, "-h"], capture_output=True, text=True, check=False).stdout
        first = out.splitlines()[0] if out else ""
        return first.replace("mosquitto version", "").strip()

    def status(self) -> ComponentStatus:
        from cityos.platform.mqtt import check_broker

        url = self.service_url()
        running = True if self.external else read_pid(self.pidfile) is not None
        st = ComponentStatus(self.name, "external" if self.external else "local", running, False,
                             version="" if self.external else self.version(), url=redact_url(url))
        if running:
            ok, reason = check_broker(url)
            st.healthy = ok
            if not ok:
                st.detail["error"] = reason
        return st

    def log_path(self) -> Path | None:
        return None if self.external else self.logfile
