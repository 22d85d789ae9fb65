"""The validated protocol is kept in a signed cache (issue 14 item 7: start-up).

The cache may only save time: the same bytes give the same Protocol, other bytes are
validated again, a tampered cache file is never believed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bedside.clinical.protocol as protocol_module
from bedside.clinical.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol
from bedside.common.errors import ProtocolError
from bedside.common.signedcache import user_cache_path


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names passed to ``parse_protocol`` (the full validation)."""
    calls: list[str] = []
    real = protocol_module.parse_protocol

    def spy(text: str, *, what: str = "protocol") -> Protocol:
        calls.append(what)
        return real(text, what=what)

    monkeypatch.setattr(protocol_module, "parse_protocol", spy)
    return calls


def test_the_same_bytes_are_validated_once(tmp_path: Path, validated: list[str]) -> None:
    path = tmp_path / "p.json"
    shutil.copy(DEFAULT_PROTOCOL, path)
    first = load_protocol(path)
    second = load_protocol(path)
    assert validated == ["p.json"]
    assert second == first and second is not first


def test_changed_bytes_are_validated_again_and_bad_ones_still_refused(
    tmp_path: Path, validated: list[str]
) -> None:
    path = tmp_path / "p.json"
    shutil.copy(DEFAULT_PROTOCOL, path)
    load_protocol(path)
    path.write_bytes(path.read_bytes() + b"\n")  # same content, other bytes
    load_protocol(path)
    assert validated == ["p.json", "p.json"]
    path.write_bytes(path.read_bytes().replace(b'"verified": true', b'"verified": 1', 1))
    with pytest.raises(ProtocolError):
        load_protocol(path)


def test_a_tampered_cache_file_is_not_believed(tmp_path: Path, validated: list[str]) -> None:
    path = tmp_path / "p.json"
    shutil.copy(DEFAULT_PROTOCOL, path)
    expected = load_protocol(path)
    (cached,) = user_cache_path("protocols").glob("*.bin")
    blob = bytearray(cached.read_bytes())
    blob[-10] ^= 1
    cached.write_bytes(bytes(blob))
    assert load_protocol(path) == expected
    assert validated == ["p.json", "p.json"]
