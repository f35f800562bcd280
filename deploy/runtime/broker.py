"""Mosquitto (Debian's), run on 127.0.0.1; accounts and rights in its dynamic security plugin.

No anonymous access; deny by default (see :mod:`cityos.ingest.broker_auth` for what each account may
do). The platform's own services use the ``cityos-service`` account, which also administers the
plugin; devices get their own accounts (``cityos devices``). While the broker runs, accounts change
over the plugin's control API, without a restart; while it is stopped, the plugin's file is
regenerated from the device registry before it starts.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import subprocess
from pathlib import Path
from urllib.parse import quote

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import port_open, read_pid, wait_until
from cityos.deploy.runtime.state import Secrets, StateDir, write_private
from cityos.deploy.runtime.system import ensure_commands, which
from cityos.ingest.broker_auth import CONFIG_NAME, SERVICE_USER, close_gate, render_config, write_config
from cityos.ingest.devices import BrokerTarget, service_hash, sync_broker
from cityos.platform.settings import Settings, redact_url

#: Where Debian (multiarch) and the eclipse-mosquitto image install the plugin.
PLUGIN_PATHS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so", "/usr/lib/*/mosquitto_dynamic_security.so",
                "/usr/lib/mosquitto_dynamic_security.so")
#: Per-client queue bounds (Mosquitto 2.0 applies them to every client alike; see README "Broker limits").
MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 1024**3
SESSION_EXPIRATION = "1d"


def plugin_path() -> str:
    """The dynamic security plugin installed here."""
    for pattern in PLUGIN_PATHS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise RuntimeError("Mosquitto's dynamic security plugin (mosquitto_dynamic_security.so) is not installed")


def broker_conf(folder: Path, port: int, pidfile: Path, logfile: Path, tls_port: int = 0, plugin: str = "") -> str:
    """mosquitto.conf for the local broker."""
    text = f"""# written by cityos up
per_listener_settings false
allow_anonymous false
# Accounts, roles and ACLs (deny by default; a refused SUBSCRIBE gets a failure reason code),
# changed at run time over $CONTROL/dynamic-security/v1 by the service account.
plugin {plugin or plugin_path()}
plugin_opt_config_file {folder / CONFIG_NAME}
persistence true
persistence_location {folder / 'data'}/
autosave_interval 30
pid_file {pidfile}
log_dest file {logfile}
log_type error
log_type warning
log_type notice
log_timestamp_format %Y-%m-%dT%H:%M:%S
# Memory bounds per client. Mosquitto 2.0 cannot exempt one account, so the bounds are sized for
# the ingest workers' sessions (a database outage is absorbed there); no other account can hold a
# queue: devices subscribe to nothing and the public tree is published with QoS 0.
max_queued_messages {MAX_QUEUED_MESSAGES}
max_queued_bytes {MAX_QUEUED_BYTES}
persistent_client_expiration {SESSION_EXPIRATION}
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
        """Config and, on first start, the plugin's file with the service and public accounts only."""
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        if self.settings.mqtt_tls_port:
            self.ensure_tls()
        conf = broker_conf(self.folder, self.port, self.pidfile, self.logfile, self.settings.mqtt_tls_port)
        write_private(self.folder / "mosquitto.conf", conf)
        if not (self.folder / CONFIG_NAME).exists():
            # Devices come from the registry (sync_credentials); the plugin keeps its file up to date after.
            write_config(self.folder / CONFIG_NAME,
                         render_config(service_hash(self.secrets.get("MQTT_SERVICE_PASSWORD")), []))
        owner = self._owner()
        if owner:
            for path in [self.folder, self.folder / "data", self.logfile.parent, *self.folder.glob("*"),
                         *self.folder.glob("tls/*")]:
                os.chown(path, *owner)
            self.logfile.touch()
            os.chown(self.logfile, *owner)
            os.chown(self.state.run, *owner)

    def target(self) -> BrokerTarget:
        """This broker as the place device accounts are written."""
        return BrokerTarget(self.service_url(), self.folder, self.pidfile)

    def sync_credentials(self, database_url: str) -> int:
        """Make the broker's accounts match the registry (its file when stopped, its control API when running)."""

        from cityos.platform.db.connection import connect

        with connect(database_url) as conn:
            result = sync_broker(conn, self.target())
        return len(result.removed) + len(result.roles_changed)

    def up(self, database_url: str | None = None) -> None:
        """Start the broker (idempotent); with ``database_url``, a stopped broker first gets the registry's accounts."""
        if self.external:
            return
        ensure_commands("mosquitto")
        if (self.folder / "acl").exists():
            # A broker of the password/ACL-file era: restart it once on the plugin (files removed below).
            self.down()
            for old in ("passwd", "acl"):
                (self.folder / old).unlink(missing_ok=True)
        self.write_files()
        if read_pid(self.pidfile) is None:
            if database_url:
                self.sync_credentials(database_url)  # the plugin's file, regenerated from the registry
            else:  # devices may not publish until an ingest worker has subscribed again
                path = self.folder / CONFIG_NAME
                write_config(path, close_gate(json.loads(path.read_text())))
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
