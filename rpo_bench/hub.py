"""Whether the Hugging Face hub can be reached: asked once per process, in one quick try, so
an offline machine stops with a plain message instead of minutes of hub retries."""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse

TRY_SECONDS = 3.0


@functools.cache
def reachable() -> bool:
    """False with HF_HUB_OFFLINE set, or when one TCP connection to the hub's host fails."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=TRY_SECONDS):
            return True
    except OSError:  # no route, no DNS, refused, timed out: all mean offline here
        return False
