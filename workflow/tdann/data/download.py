"""HTTP(S) downloads with resume (Range requests onto a ``.part`` file), retries with backoff and sha256 verification (stdlib urllib only)."""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from tdann.provenance import sha256

from .files import DatasetConfigError


class DownloadError(RuntimeError):
    """A download failed (HTTP error, network error after all retries)."""


class ChecksumError(RuntimeError):
    """A downloaded file's sha256 differs from the expected digest."""


def _entry_name(entry: dict[str, Any]) -> str:
    """File name for a download entry: ``name`` or the last component of the URL path; no directories."""
    url = entry.get("url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DatasetConfigError(f"download entry {entry!r}: 'url' must be an http(s) URL")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise DatasetConfigError(f"download entry for {url}: 'sha256' must be 64 hex digits, got {digest!r}")
    name = entry.get("name") or urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(url).path).name)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetConfigError(f"download entry for {url}: bad file name {name!r}")
    return name


def _fetch_to_part(url: str, part: Path, timeout: float) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size with a Range request.

    Raises ``urllib.error.URLError`` / ``OSError`` on transient trouble (the caller retries), and
    ``DownloadError`` when the body ends before the announced length.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # range not satisfiable: the part file is already complete
            return
        raise
    with response:
        if offset and response.status != 206:  # server ignored the range: start again
            offset = 0
        expected = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if offset else "wb") as fh:
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                received += len(chunk)
        if expected is not None and received < int(expected):
            raise DownloadError(f"{url}: connection closed after {received} of {expected} bytes")


def download(
    entries: Sequence[dict[str, Any]], dest: str | Path, retries: int = 3, timeout: float = 60, backoff: float = 1.0
) -> list[Path]:
    """Download each entry ``{url, sha256, name?}`` into ``dest`` and verify its sha256; return the paths.

    A file already present with the right digest is not fetched again. Data goes to ``<name>.part`` and
    each retry resumes it with an HTTP Range request; retries wait ``backoff * 2**attempt`` seconds.
    HTTP 4xx errors (other than 408 / 429) are not retried. On a digest mismatch the file is deleted and
    ``ChecksumError`` names it with both digests.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in entries:
        name = _entry_name(entry)
        url, expected = entry["url"], entry["sha256"].lower()
        target, part = dest / name, dest / f"{name}.part"
        if target.exists() and sha256(target) == expected:
            paths.append(target)
            continue
        for attempt in range(retries + 1):
            try:
                _fetch_to_part(url, part, timeout)
                break
            except urllib.error.HTTPError as err:
                if (400 <= err.code < 500 and err.code not in (408, 429)) or attempt == retries:
                    raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            except (urllib.error.URLError, OSError, http.client.HTTPException, DownloadError) as err:
                if attempt == retries:
                    raise DownloadError(f"{url}: failed after {retries + 1} attempts: {err}") from err
            time.sleep(backoff * 2**attempt)
        actual = sha256(part)
        if actual != expected:
            part.unlink()
            raise ChecksumError(f"{name} (from {url}): sha256 {actual} does not match the expected {expected}")
        os.replace(part, target)
        paths.append(target)
    return paths
