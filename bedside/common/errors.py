"""The one exception hierarchy of the Bedside core.

Core code raises these and never shows UI; the UI turns them into dialogs.
Messages never contain patient names or identifiers (they may be logged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class BedsideError(Exception):
    """Base class of every error the core raises on purpose."""


class ProtocolError(BedsideError):
    """A protocol file is malformed or fails validation."""


class InputError(BedsideError):
    """Input to a rule or service was rejected; the message names the field and value."""


class ConfirmationRequired(InputError):
    """A soft limit: the value is recorded only once the nurse confirms it.

    ``findings`` are the soft findings (each with ``code``, ``field``, ``message`` and
    ``needs_reason``); ``needed`` their codes, to pass back as ``confirmation.limits``.
    Nothing was written.
    """

    def __init__(self, findings: list[Any]) -> None:
        self.findings = list(findings)
        self.needed: list[str] = [f.code for f in self.findings]
        self.needs_reason = any(getattr(f, "needs_reason", False) for f in self.findings)
        super().__init__("; ".join(f"{f.field}: {f.message}" for f in self.findings))


class StorageError(BedsideError):
    """A save or load could not be completed (the caller must treat data as NOT saved).

    ``ambiguous`` is True when the new data may nevertheless be on disk (retry the same
    save); ``path``, ``quarantine_path`` and ``backup_path`` are set by a failed load.
    """

    ambiguous: bool = False
    path: Path | None = None
    quarantine_path: Path | None = None
    backup_path: Path | None = None


class CorruptDataError(StorageError):
    """A stored file does not parse or fails validation; it has been quarantined."""


class SchemaTooNewError(CorruptDataError):
    """A stored file was written by a newer version of Bedside."""


class MigrationError(StorageError):
    """A migration step failed."""


class ConcurrentModificationError(StorageError):
    """The file on disk changed since it was loaded; the save was refused."""


class LockedError(StorageError):
    """Another process holds the data directory's writer lock."""


class LimitError(BedsideError):
    """A dose or action breaks a protocol limit and was not recorded."""
