"""Strict JSON decoding and canonical JSON encoding for stored files.

The standard :func:`json.loads` is lenient in ways that are dangerous for clinical
records: duplicate keys silently keep the last value, ``NaN``/``Infinity`` are
accepted, ``1e400`` becomes ``inf``, and lone UTF-16 surrogates (``"\\ud800"``) are
decoded into strings that can never be written back as UTF-8. :func:`strict_loads`
refuses all of these and raises :class:`~bedside.common.errors.CorruptDataError` with a
message that names the source and the problem but never quotes file content (a
duplicated key name is the only exception; key names are schema, not data).

:func:`dumps_canonical` is the one encoder used for files: sorted keys, UTF-8,
one-space indentation, a trailing newline. Equal values always give equal bytes, which
is what makes content hashes usable as concurrency tokens.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, NoReturn

from bedside.common.errors import CorruptDataError

logger = logging.getLogger(__name__)

_UTF8_BOM = b"\xef\xbb\xbf"
# Valid UTF-8 cannot encode a surrogate, so a decoded string can only hold one if the
# JSON text has a \uD800-\uDFFF escape. Cheap pre-check before walking the tree.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_KEY_IN_MESSAGE = 64

__all__ = ["dumps_canonical", "dumps_compact", "nesting_depth", "strict_loads"]


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(data: bytes, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays/objects in JSON text, found without parsing it.

    Strings are skipped (brackets inside them do not count). Used to refuse a file that
    nests too deeply *before* any parser or validator recurses into it. Malformed text
    gives some number; the parser refuses it afterwards anyway.

    Args:
        data: The raw JSON bytes.
        stop_above: Return as soon as the depth exceeds this (cheap refusal).
    """
    depth = deepest = 0
    stripped = _JSON_STRING.sub(b"", data)
    for match in _BRACKET.finditer(stripped):
        if match[0] in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        else:
            depth -= 1
    return deepest


class _Refused(ValueError):
    """Internal: raised from decoder hooks; carries a content-free reason."""


def _fail(source: str, problem: str) -> NoReturn:
    raise CorruptDataError(f"{source}: {problem}")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            shown = key if len(key) <= _MAX_KEY_IN_MESSAGE else key[:_MAX_KEY_IN_MESSAGE] + "…"
            raise _Refused(f"duplicate key {shown!r} in an object")
        result[key] = value
    return result


def _parse_constant(name: str) -> NoReturn:
    raise _Refused(f"non-finite number {name} is not allowed")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is too large to be represented (it would become infinite)")
    return value


def _has_surrogate(text: str) -> bool:
    # Lone surrogates are the only code points UTF-8 cannot encode.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_strings(root: Any) -> str | None:
    """Return a reason if any key or string value holds a lone surrogate, else ``None``."""
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if _has_surrogate(key):
                    return "an object key contains an invalid \\u escape (lone surrogate)"
                if isinstance(value, str):
                    if _has_surrogate(value):
                        return "a string contains an invalid \\u escape (lone surrogate)"
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            for value in item:
                if isinstance(value, str):
                    if _has_surrogate(value):
                        return "a string contains an invalid \\u escape (lone surrogate)"
                elif isinstance(value, dict | list):
                    stack.append(value)
    return None


def strict_loads(data: bytes, *, source: str) -> dict[str, Any]:
    """Decode one stored JSON document, refusing anything ambiguous.

    Args:
        data: The raw file bytes. Must be UTF-8 without a byte-order mark.
        source: A short, identifier-free description of where the bytes came from; it
            starts every error message (for example ``"patient file id#1a2b3c4d"``).

    Returns:
        The decoded top-level JSON object.

    Raises:
        CorruptDataError: The bytes are not UTF-8, start with a BOM, are not JSON, contain
            duplicate keys, ``NaN``/``Infinity``/overflowing numbers or lone surrogates,
            nest too deeply, or the top level is not an object.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("strict_loads() needs bytes")
    raw = bytes(data)
    if not raw:
        _fail(source, "the file is empty")
    if raw.startswith(_UTF8_BOM):
        _fail(source, "the file starts with a UTF-8 byte-order mark (BOM), which is not allowed")
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{source}: not valid UTF-8 (at byte offset {exc.start})") from exc
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_constant=_parse_constant,
            parse_float=_parse_float,
        )
    except _Refused as exc:
        raise CorruptDataError(f"{source}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CorruptDataError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise CorruptDataError(f"{source}: JSON is nested too deeply") from exc
    except ValueError as exc:
        # e.g. an integer literal longer than sys.get_int_max_str_digits(); the message
        # states only lengths, never the digits themselves.
        raise CorruptDataError(f"{source}: unreadable JSON value ({exc})") from exc
    if not isinstance(doc, dict):
        _fail(source, f"the top level must be a JSON object, not {_json_type(doc)}")
    reason = _check_strings(doc) if _SURROGATE_ESCAPE.search(text) else None
    if reason is not None:
        _fail(source, reason)
    return doc


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def dumps_canonical(obj: Any) -> bytes:
    """Encode ``obj`` as canonical file bytes.

    Sorted keys, real UTF-8 (no ``\\u`` escapes for non-ASCII), one-space indent and a
    trailing newline. Equal values always produce equal bytes.

    Args:
        obj: A JSON-native value (dict, list, str, int, finite float, bool, None).

    Returns:
        The UTF-8 encoded document.

    Raises:
        ValueError: ``obj`` contains NaN/Infinity, or a string that is not encodable as
            UTF-8 (a lone surrogate), or a circular reference.
        TypeError: ``obj`` contains a value JSON cannot represent.
    """
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def dumps_compact(obj: Any) -> bytes:
    """Encode ``obj`` in a compact canonical form (used for content checksums).

    Same value-to-bytes mapping as :func:`dumps_canonical` but without whitespace, so it
    runs on the C encoder and is several times faster.

    Args:
        obj: A JSON-native value.

    Returns:
        The UTF-8 encoded compact document (no trailing newline).

    Raises:
        ValueError: As :func:`dumps_canonical`.
        TypeError: As :func:`dumps_canonical`.
    """
    text = json.dumps(
        obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")
