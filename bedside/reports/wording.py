"""Nurse language for every message on screen (issue 10, item 7).

The core speaks to programs as well as to people: its errors name record fields
(``temperature_c``), carry validation-library phrases ("Input should be less than or
equal to 45"), instants in ISO 8601 and citation keys (``[S2, S3]``). Everything a
nurse reads passes through :func:`nurse_text` first: field names become words, the
validation phrases become short instructions, instants become local time with the zone,
and citation keys move out of the sentence (:func:`split_sources` hands them to a
tooltip, one hover away).

Only the wording changes: numbers, limits and the reasons themselves are kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

logger = logging.getLogger(__name__)

_SOURCE_KEY = r"(?:S\d+[a-z]?|SEED|LOCAL)"
SOURCES_RE = re.compile(rf"\s*\[({_SOURCE_KEY}(?:\s*,\s*{_SOURCE_KEY})*)\]")
"""A citation such as ``[S2, S3, S10, SEED]`` (with the space before it)."""

ISO_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b"
)
"""An ISO 8601 instant."""

SNAKE_RE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
"""A ``snake_case`` identifier."""

_PHRASES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Value error, |Assertion failed, |\(top level\): "), ""),
    (re.compile(r"Input should be less than or equal to ([^\s;,)]+)"), r"must be \1 or less"),
    (re.compile(r"Input should be greater than or equal to ([^\s;,)]+)"), r"must be \1 or more"),
    (re.compile(r"Input should be less than ([^\s;,)]+)"), r"must be less than \1"),
    (re.compile(r"Input should be greater than ([^\s;,)]+)"), r"must be more than \1"),
    (re.compile(r"Input should be a finite number"), "enter a number"),
    (re.compile(r"Input should be a valid integer[^;(]*"), "enter a whole number "),
    (re.compile(r"Input should be a valid number[^;(]*"), "enter a number "),
    (re.compile(r"Input should be a valid (?:list|array)[^;(]*"), "choose from the list "),
    (re.compile(r"Input should be a valid boolean[^;(]*"), "answer yes or no "),
    (re.compile(r"Input should be a valid (?:string|str)[^;(]*"), "enter text "),
    (re.compile(r"Input should be a valid (?:datetime|date)[^;(]*"), "enter a date and time "),
    (re.compile(r"Input should be (.+?)(?= \(got|;|$)"), r"choose one of \1"),
    (
        re.compile(r"String should have at least (\d+) characters?"),
        r"enter at least \1 character(s)",
    ),
    (re.compile(r"String should have at most (\d+) characters?"), r"use at most \1 characters"),
    (re.compile(r"List should have at least (\d+) items?[^;(]*"), r"choose at least \1"),
    (re.compile(r"Field required"), "this is required"),
    (re.compile(r"Extra inputs are not permitted"), "is not part of this entry"),
    (re.compile(r"\(got dict\)|\(got list\)"), ""),
    (re.compile(r"\(got None\)"), "(empty)"),
    (re.compile(r"\(got '([^']*)'\)"), r"(you entered \1)"),
    (re.compile(r"\(got ([^)]*)\)"), r"(you entered \1)"),
]


def split_sources(text: str) -> tuple[str, list[str]]:
    """``text`` without citation keys, and the keys (in order, without repeats)."""
    keys: list[str] = []
    for m in SOURCES_RE.finditer(text):
        for key in (k.strip() for k in m.group(1).split(",")):
            if key not in keys:
                keys.append(key)
    return SOURCES_RE.sub("", text), keys


def sources_tooltip(keys: list[str], titles: dict[str, str] | None = None) -> str:
    """``Sources: …`` for a tooltip (titles from the protocol's sources table when given)."""
    if not keys:
        return ""
    titles = titles or {}
    return "Sources: " + "; ".join(f"{titles[k]} ({k})" if titles.get(k) else k for k in keys)


def _local(match: re.Match[str]) -> str:
    from bedside.common.timeutil import format_local, parse_instant

    try:
        return format_local(parse_instant(match.group(0).replace(" ", "T")))
    except ValueError:
        return match.group(0)


def _word(match: re.Match[str]) -> str:
    from bedside.clinical.rules import DEVICE_LABELS
    from bedside.reports import presenters

    name = match.group(0)
    for table in (presenters.FIELD_LABELS, DEVICE_LABELS, presenters.DUE_KIND_LABELS):
        if name in table:
            return str(table[name])
    return name.replace("_", " ")


def nurse_text(text: str) -> str:
    """``text`` in the words a nurse uses (see the module docstring)."""
    if not text:
        return text
    out, _keys = split_sources(text)
    out = ISO_RE.sub(_local, out)
    for pattern, repl in _PHRASES:
        out = pattern.sub(repl, out)
    out = SNAKE_RE.sub(_word, out)
    out = re.sub(r"[ \t]{2,}", " ", out).replace(" )", ")").replace(" ;", ";")
    return out.strip()


BAD_PATTERNS: dict[str, re.Pattern[str]] = {
    "validation-library phrase": re.compile(
        r"Input should|Field required|Value error|validation error|Extra inputs|"
        r"String should|type=|pydantic",
        re.IGNORECASE,
    ),
    "field name": SNAKE_RE,
    "ISO timestamp": ISO_RE,
    "citation key": re.compile(rf"\[{_SOURCE_KEY}"),
    "UUID": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
    "software word": re.compile(
        r"\bQt|PySide|Traceback|Exception|=None|\(None\)|: None\b|\bms\b|data director"
    ),
}
"""What must never reach a nurse (checked by the tests on every message shown)."""


def problems(text: str) -> list[str]:
    """The kinds of software language found in ``text`` (empty when it reads well)."""
    return [name for name, pattern in BAD_PATTERNS.items() if pattern.search(text)]
