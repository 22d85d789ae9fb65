"""A local, signed cache of merged and validated records, so a restart need not re-validate.

Journals only grow and every line is checksummed, so a patient whose journals are byte for
byte what they were at the last full load has the same merged record. The cache is keyed by
the SHA-256 of every journal's exact bytes (plus the app version and this format), so any
change anywhere — a new line, a replicated peer journal, a flipped bit — misses and the full
load (every line checked, every event validated) runs again. ``verify`` never uses it.

The cache lives in the user cache directory (never in the replicated ward folder), is signed
with HMAC-SHA256 under a random per-user key kept in the user config directory (mode 0600), and
is only unpickled after the signature checks. Anything unexpected (missing, short, bad
signature, unpickling error) is a miss, logged at debug level: the cache can only save time.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import platformdirs

from bedside import APP_NAME, __version__

logger = logging.getLogger(__name__)

CACHE_FORMAT = b"bedside-journal-cache-2"  # 2: chains bound to the patient
_KEY_NAME = "journal-cache.key"


def _secret() -> bytes | None:
    path = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / _KEY_NAME
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            secret = os.urandom(32)
            os.write(fd, secret)
        finally:
            os.close(fd)
        return secret
    except OSError as exc:
        logger.debug("no cache key (%s); cache disabled", type(exc).__name__)
        return None


class RecordCache:
    """Signed pickles of loaded records for one ward folder as one workstation."""

    def __init__(self, root: Path, workstation: str) -> None:
        """Cache for ward folder ``root`` seen as ``workstation``."""
        ident = hashlib.sha256(f"{Path(root).resolve()}\0{workstation}".encode()).hexdigest()
        base = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
        self.dir = base / "journals" / ident[:20]
        self._secret = _secret()

    @staticmethod
    def key(journals: list[tuple[str, bytes]]) -> bytes:
        """The cache key of a patient's journals (their names and exact bytes)."""
        h = hashlib.sha256(CACHE_FORMAT + b"\0" + __version__.encode())
        for name, data in journals:
            h.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(data).digest())
        return h.digest()

    def _path(self, pid: str) -> Path:
        return self.dir / f"{pid}.bin"

    def get(self, pid: str, key: bytes) -> Any | None:
        """The cached value for ``key``, or ``None`` (a miss)."""
        if self._secret is None:
            return None
        try:
            data = self._path(pid).read_bytes()
        except OSError:
            return None
        if len(data) < 64 or data[32:64] != key:
            return None
        tag = hmac.new(self._secret, data[32:], hashlib.sha256).digest()
        if not hmac.compare_digest(tag, data[:32]):
            logger.warning("a record cache file failed its signature; ignored")
            return None
        enabled = gc.isenabled()
        gc.disable()  # unpickling builds many acyclic objects: no collection passes meanwhile
        try:
            return pickle.loads(data[64:])  # signed with this user's key, checked above
        except Exception:  # noqa: BLE001 - any unpickling problem is a miss
            logger.debug("record cache unreadable; full load")
            return None
        finally:
            if enabled:
                gc.enable()

    def put(self, pid: str, key: bytes, value: Any) -> None:
        """Store ``value`` for ``key`` (best effort: failures are logged, never raised)."""
        if self._secret is None:
            return
        try:
            body = key + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            tag = hmac.new(self._secret, body, hashlib.sha256).digest()
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.dir / f".{pid}.{os.getpid()}.tmp"
            tmp.write_bytes(tag + body)
            os.replace(tmp, self._path(pid))
        except Exception:  # noqa: BLE001 - the cache can only save time, never fail a load
            logger.debug("record cache not written")
            with contextlib.suppress(OSError):
                tmp.unlink()


__all__ = ["RecordCache"]
