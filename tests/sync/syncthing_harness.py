"""Two real Syncthing instances on the loopback interface, for the replication tests.

Each instance has its own ``--home`` (generated with ``syncthing generate``), then its
``config.xml`` is edited: listen on ``tcp://127.0.0.1:PORT`` only, the peer at a static
``tcp://127.0.0.1:PORT`` address, no global or local discovery, no relays, no NAT/STUN, no
usage reporting, no crash reporting, no auto-upgrade, GUI/REST on ``127.0.0.1`` (random
port) with an API key, and one shared folder ``ward`` with the file watcher on and a short
rescan interval. Nothing ever listens on or dials an address other than 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SYNCTHING = shutil.which("syncthing")
FOLDER_ID = "ward"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set(parent: ET.Element, tag: str, text: str) -> None:
    node = parent.find(tag)
    if node is None:
        node = ET.SubElement(parent, tag)
    node.text = text


class Instance:
    """One Syncthing process with its own home, folder and ports."""

    def __init__(self, name: str, home: Path, folder: Path) -> None:
        assert SYNCTHING is not None
        self.name, self.home, self.folder = name, home, folder
        self.port = free_port()
        self.gui_port = free_port()
        self.api_key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True)
        out = subprocess.run(
            [SYNCTHING, "generate", f"--home={home}", "--no-default-folder", "--skip-port-probing"],
            capture_output=True,
            text=True,
            check=True,
            env=self.env(),
        )
        text = out.stdout + out.stderr
        self.device_id = next(
            line.split("Device ID:", 1)[1].strip()
            for line in text.splitlines()
            if "Device ID:" in line
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(STNOUPGRADE="1", STNORESTART="1", STNODEFAULTFOLDER="1")
        return env

    def configure(self, peer: Instance) -> None:
        """Write the loopback-only config sharing ``ward`` with ``peer``."""
        path = self.home / "config.xml"
        tree = ET.parse(path)
        root = tree.getroot()
        for old in root.findall("folder"):
            root.remove(old)
        gui = root.find("gui")
        assert gui is not None
        gui.set("enabled", "true")
        gui.set("tls", "false")
        _set(gui, "address", f"127.0.0.1:{self.gui_port}")
        _set(gui, "apikey", self.api_key)
        opts = root.find("options")
        assert opts is not None
        for tag in opts.findall("listenAddress"):
            opts.remove(tag)
        for tag, value in {
            "listenAddress": f"tcp://127.0.0.1:{self.port}",
            "globalAnnounceEnabled": "false",
            "localAnnounceEnabled": "false",
            "relaysEnabled": "false",
            "natEnabled": "false",
            "stunKeepaliveStartS": "0",
            "stunKeepaliveMinS": "0",
            "stunServer": "",
            "urAccepted": "-1",
            "urSeen": "3",
            "autoUpgradeIntervalH": "0",
            "startBrowser": "false",
            "crashReportingEnabled": "false",
            "reconnectionIntervalS": "1",
            "announceLANAddresses": "false",
            "setLowPriority": "false",
        }.items():
            _set(opts, tag, value)
        for dev in root.findall("device"):
            root.remove(dev)
        for defaults in root.findall("defaults"):  # templates for new peers: none accepted
            root.remove(defaults)
        for inst in (self, peer):
            dev = ET.SubElement(
                root,
                "device",
                {"id": inst.device_id, "name": inst.name, "compression": "metadata"},
            )
            ET.SubElement(dev, "address").text = f"tcp://127.0.0.1:{inst.port}"
            ET.SubElement(dev, "autoAcceptFolders").text = "false"
        folder = ET.Element(
            "folder",
            {
                "id": FOLDER_ID,
                "label": FOLDER_ID,
                "path": str(self.folder),
                "type": "sendreceive",
                "rescanIntervalS": "2",
                "fsWatcherEnabled": "true",
                "fsWatcherDelayS": "1",
                "ignorePerms": "false",
                "autoNormalize": "true",
            },
        )
        for inst in (self, peer):
            ET.SubElement(folder, "device", {"id": inst.device_id})
        ET.SubElement(folder, "minDiskFree", {"unit": "%"}).text = "0"
        ET.SubElement(folder, "markerName").text = ".stfolder"
        root.insert(0, folder)
        tree.write(path)
        written = ET.parse(path).getroot()
        addresses = [a.text for a in written.iter("address")]
        addresses += [a.text for a in written.iter("listenAddress")]
        assert addresses and all(
            (a or "").replace("tcp://", "").startswith("127.0.0.1:") for a in addresses
        ), f"only static loopback addresses, got {addresses}"

    # ------------------------------------------------------------------ process

    def start(self) -> None:
        """Start ``syncthing serve`` and wait until its REST API answers."""
        assert SYNCTHING is not None
        # The child keeps its own copy of the log descriptor; ours is closed at once.
        with (self.home / "syncthing.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    SYNCTHING,
                    "serve",
                    f"--home={self.home}",
                    "--no-browser",
                    "--no-restart",
                    "--no-upgrade",
                    f"--gui-address=http://127.0.0.1:{self.gui_port}",
                    f"--gui-apikey={self.api_key}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.get("/rest/system/ping").get("ping") == "pong":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"syncthing {self.name} exited: {self.log_tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"syncthing {self.name} did not start: {self.log_tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM), waiting for the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        try:
            return (self.home / "syncthing.log").read_text("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ REST

    def get(self, path: str) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.gui_port}{path}", headers={"X-API-Key": self.api_key}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read() or b"{}")

    def connected_to(self, peer: Instance) -> bool:
        try:
            conns = self.get("/rest/system/connections")["connections"]
        except (OSError, KeyError, ValueError):
            return False
        return bool(conns.get(peer.device_id, {}).get("connected"))

    def listen_addresses(self) -> list[str]:
        """The addresses this instance's config says it listens on."""
        cfg = self.get("/rest/config")
        return list(cfg["options"]["listenAddresses"])
