"""A router's per-plugin API keys (``Router(credentials=...)``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._errors import InvalidInputError
from ._redact import add_secret
from ._registry import fingerprint

__all__ = ["Credentials", "short"]


class Credentials(Mapping[str, str]):
    """A router's keys by plugin name: validated, redacted, never shown."""

    def __init__(self, credentials: Mapping[str, str] | None) -> None:
        if credentials is None:
            credentials = {}
        if not isinstance(credentials, Mapping):
            raise InvalidInputError("credentials must be a dict of plugin name to API key, "
                                    f"got {type(credentials).__name__}.")
        keys: dict[str, str] = {}
        for plugin, key in credentials.items():
            if not isinstance(plugin, str) or not plugin.strip() or ":" in plugin:
                raise InvalidInputError("credentials must map plugin names like 'openai' to "
                                        f"keys; got the name {short(plugin)}.")
            if not isinstance(key, str) or not key.strip():
                got = "an empty string" if isinstance(key, str) else type(key).__name__
                raise InvalidInputError(f"credentials[{plugin!r}] must be a non-empty string "
                                        f"(the API key), got {got}.")
            add_secret(key)
            keys[plugin.strip()] = key
        self._keys = keys
        self.fingerprints = {plugin: fingerprint(key) for plugin, key in keys.items()}

    def __getitem__(self, plugin: str) -> str:
        return self._keys[plugin]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # never show a key
        return f"<credentials for {sorted(self._keys)}>"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
