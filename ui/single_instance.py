"""One Bedside per data directory.

The writer lock itself lives in the core (:meth:`bedside.store.storage.DataDir.acquire_writer_lock`,
an OS lock released by the OS however the process dies). A second start on the same
directory gets :class:`~bedside.common.errors.LockedError` naming the holder; :mod:`ui.app`
then asks the running instance to come to the front through a :class:`QLocalSocket`
(a nicety: nothing depends on it), tells the nurse who holds the directory, and exits
with status 2.

The primary instance listens on the socket only *after* it holds the lock, so a stale
socket file from a crashed process is safe to remove.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

logger = logging.getLogger(__name__)

RAISE_MESSAGE = b"raise\n"
EXIT_LOCKED = 2


def server_name(data_dir: Path) -> str:
    """The local-socket name for ``data_dir`` (per user, per directory, short)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "user"
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode("utf-8")).hexdigest()[:12]
    safe_user = "".join(c for c in user if c.isalnum())[:16] or "user"
    return f"bedside-{safe_user}-{digest}"


class InstanceServer(QObject):
    """Listens for "raise" requests from later launches on the same data directory."""

    raise_requested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(data_dir)
        self._server = QLocalServer(self)
        self._server.newConnection.connect(self._on_connection)

    def listen(self) -> bool:
        """Start listening (call only while holding the writer lock)."""
        QLocalServer.removeServer(self.name)
        ok = self._server.listen(self.name)
        if not ok:
            logger.warning("single-instance socket unavailable: %s", self._server.errorString())
        return ok

    def close(self) -> None:
        """Stop listening."""
        self._server.close()

    @Slot()
    def _on_connection(self) -> None:
        sock = self._server.nextPendingConnection()
        if sock is None:
            return
        sock.readyRead.connect(lambda s=sock: self._on_ready(s))
        sock.disconnected.connect(sock.deleteLater)
        if sock.bytesAvailable():
            self._on_ready(sock)

    def _on_ready(self, sock: QLocalSocket) -> None:
        data = bytes(sock.readAll().data())
        if data.startswith(RAISE_MESSAGE.strip()):
            logger.info("another launch asked this window to come to the front")
            self.raise_requested.emit()
        sock.disconnectFromServer()


def ask_running_instance_to_raise(data_dir: Path, timeout_ms: int = 500) -> bool:
    """Tell the instance holding ``data_dir`` to come to the front; True if it listened."""
    sock = QLocalSocket()
    sock.connectToServer(server_name(data_dir))
    if not sock.waitForConnected(timeout_ms):
        return False
    sock.write(RAISE_MESSAGE)
    sock.flush()
    sock.waitForBytesWritten(timeout_ms)
    sock.disconnectFromServer()
    return True


def refusal_text(holder_message: str, raised: bool) -> str:
    """What the nurse reads when the data directory is already open."""
    text = (
        "Bedside is already open on this ward's data directory, so this copy cannot "
        "open it (only one copy may write to a ward at a time, so no dose is ever "
        f"recorded twice or lost).\n\n{holder_message}"
    )
    if raised:
        text += "\n\nThe open copy has been brought to the front."
    else:
        text += (
            "\n\nIf you cannot find the open copy, it may be running under another "
            "login on this workstation."
        )
    return text
