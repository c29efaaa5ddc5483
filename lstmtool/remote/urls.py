"""What a remote path is, and how a URL is shown (never with its credentials)."""
from __future__ import annotations

import re

SCHEMES = ("s3", "gs", "gcs", "hf", "http", "https")
URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def is_remote(path) -> bool:
    m = URL.match(str(path))
    return bool(m) and m["scheme"].lower() in SCHEMES


def shown(url: str) -> str:
    """The URL as messages show it: no user:password@, no query (presigned signatures)."""
    url = re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", r"\1", str(url), flags=re.I)
    return url.split("?", 1)[0]
