"""Keep the key out of everything an error carries: its text, `detail`, `problems`, raw bodies.

The key (``key_id:key_secret``) is redacted whole and each half on its own, in text that has
had JSON ``\\uXXXX`` escapes undone first, *before* anything is shortened; a text that was cut
short loses a trailing fragment that could be the start of a secret.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

__all__ = ["MASK", "Redactor"]

MASK = "***"
_MIN_PART = 6  # a key half shorter than this is too common a string to hunt for
_MIN_FRAGMENT = 4
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


class Redactor:
    """Replaces every form of one key with ``***``; a no-op without a key."""

    def __init__(self, key: str | None) -> None:
        secrets: set[str] = set()
        if key:
            secrets.add(key)
            for part in key.split(":"):
                if len(part.strip()) >= _MIN_PART:
                    secrets.add(part.strip())
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def text(self, value: str, *, cut: bool = False) -> str:
        """`value` with every secret masked; `cut=True` when the text was truncated at its end
        (a trailing prefix of a secret is masked too)."""
        if not self._secrets or not value:
            return value
        if "\\u" in value:
            value = _unescape(value)
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        if cut:
            value = self._drop_fragment(value)
        return value

    def _drop_fragment(self, value: str) -> str:
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(value)), _MIN_FRAGMENT - 1, -1):
                if value.endswith(secret[:size]):
                    return value[:-size] + MASK
        return value

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (str, list, dict, dataclass) with every string masked."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray)):
            return self.text(bytes(value).decode("utf-8", "replace")).encode()
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self.value(getattr(value, f.name)) for f in dataclasses.fields(value)
            }
            return dataclasses.replace(value, **changes)
        return value

    def scrub(self, exc: BaseException) -> BaseException:
        """Mask the key in an exception's args and every attribute it carries (in place)."""
        if not self._secrets:
            return exc
        exc.args = tuple(self.value(arg) for arg in exc.args)
        for name, attr in list(vars(exc).items()):
            if not name.startswith("__"):
                setattr(exc, name, self.value(attr))
        return exc
