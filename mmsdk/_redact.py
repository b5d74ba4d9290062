"""Scrub secrets from text before it reaches an error message, a log line or a repr.

Keys come from the environment variables the official SDKs read (and any other
variable whose name says it holds a secret), plus the shapes common keys take;
the ``user:password@`` part of a URL is masked too.
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_KEY_SHAPES = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
# The userinfo of a URL (``scheme://user:password@``), as mmsdk._media.redact_url masks it.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s@/?#]*(?:[/?#][^\s@]*)?@")
_extra_secrets: set[str] = set()

REDACTED = "[REDACTED]"


def add_secret(value: str | None) -> None:
    """Remember a secret given explicitly (not through the environment)."""
    if value and len(value) >= 4:
        _extra_secrets.add(value)


def _environment_secrets() -> list[str]:
    return [
        value
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name) and len(value) >= 4
    ]


def redact(text: str) -> str:
    """Return *text* with every known secret, key-shaped token and URL userinfo replaced."""
    secrets = sorted({*_environment_secrets(), *_extra_secrets}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    return _KEY_SHAPES.sub(REDACTED, text)
