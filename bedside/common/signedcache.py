"""Signed pickles in the user cache directory: results that are slow to rebuild, kept safely.

Two things use it: the journal store's record cache (:mod:`bedside.store.journalcache`) and the
validated protocol (:func:`bedside.clinical.protocol.load_protocol`). Each entry is stored under a
name with the key it was computed for (a SHA-256 over the exact input bytes, chosen by the
caller), signed with HMAC-SHA256 under a random per-user key kept in the user config
directory (mode 0600), and only unpickled after both the key and the signature match.

Anything unexpected (missing, short, another key, bad signature, unpickling error) is a miss,
logged at debug level (a bad signature at warning): a cache can only save time, never change
what is loaded. Nothing here is ever written into a ward folder.
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

from bedside import APP_NAME

logger = logging.getLogger(__name__)

_KEY_NAME = "journal-cache.key"
_TAG = 32
_KEY = 32


def cache_secret() -> bytes | None:
    """This user's signing key (created on first use), or ``None`` when it cannot be kept."""
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


def code_fingerprint(*files: str | None) -> bytes:
    """SHA-256 over Bedside's version, pydantic-core's and the source bytes of ``files``.

    Part of every cache key, so a pickle made by other code (another release, or a changed
    model during development) is a miss rather than an object of the wrong shape. A file
    that cannot be read (a frozen build) counts by name only: the version still changes.
    """
    import pydantic_core

    from bedside import __version__

    h = hashlib.sha256(f"{__version__}\0{pydantic_core.__version__}".encode())
    for name in files:
        h.update(b"\0" + str(name).encode())
        if name:
            with contextlib.suppress(OSError):
                h.update(hashlib.sha256(Path(name).read_bytes()).digest())
    return h.digest()


def user_cache_path(*parts: str) -> Path:
    """A folder under Bedside's user cache directory."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)).joinpath(*parts)


class SignedPickles:
    """A folder of signed pickles: ``get(name, key)`` returns what ``put(name, key, v)`` stored."""

    def __init__(self, directory: Path, secret: bytes | None = None) -> None:
        """Entries live in ``directory`` (created on the first ``put``, mode 0700)."""
        self.dir = directory
        self._secret = secret if secret is not None else cache_secret()

    def path(self, name: str) -> Path:
        """The file of entry ``name``."""
        return self.dir / f"{name}.bin"

    def get(self, name: str, key: bytes) -> Any | None:
        """The value stored for ``key`` under ``name``, or ``None`` (a miss)."""
        if self._secret is None or len(key) != _KEY:
            return None
        try:
            data = self.path(name).read_bytes()
        except OSError:
            return None
        if len(data) < _TAG + _KEY or data[_TAG : _TAG + _KEY] != key:
            return None
        tag = hmac.new(self._secret, data[_TAG:], hashlib.sha256).digest()
        if not hmac.compare_digest(tag, data[:_TAG]):
            logger.warning("a cache file failed its signature; ignored")
            return None
        enabled = gc.isenabled()
        gc.disable()  # unpickling builds many acyclic objects: no collection passes meanwhile
        try:
            return pickle.loads(data[_TAG + _KEY :])  # signed with this user's key, checked above
        except Exception:  # noqa: BLE001 - any unpickling problem is a miss
            logger.debug("cache entry unreadable; rebuilt")
            return None
        finally:
            if enabled:
                gc.enable()

    def put(self, name: str, key: bytes, value: Any) -> None:
        """Store ``value`` for ``key`` (best effort: failures are logged, never raised)."""
        if self._secret is None or len(key) != _KEY:
            return
        tmp = self.dir / f".{name}.{os.getpid()}.tmp"
        try:
            body = key + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            tag = hmac.new(self._secret, body, hashlib.sha256).digest()
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_bytes(tag + body)
            os.replace(tmp, self.path(name))
        except Exception:  # noqa: BLE001 - the cache can only save time, never fail a load
            logger.debug("cache entry not written")
            with contextlib.suppress(OSError):
                tmp.unlink()


__all__ = ["SignedPickles", "cache_secret", "code_fingerprint", "user_cache_path"]
