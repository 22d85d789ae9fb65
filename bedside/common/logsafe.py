"""What may be logged about a patient: a short one-way hash of the id, never a value."""

from __future__ import annotations

import hashlib
import logging

logger = logging.getLogger(__name__)


def patient_hash(patient_id: str) -> str:
    """Return ``id#`` + the first 8 hex digits of SHA-256 of the id: safe to log."""
    return "id#" + hashlib.sha256(patient_id.encode("utf-8")).hexdigest()[:8]


__all__ = ["patient_hash"]
