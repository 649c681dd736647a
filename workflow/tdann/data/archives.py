"""Tar / zip extraction that refuses members escaping the destination and extracts all or nothing."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath


class ArchiveError(RuntimeError):
    """An archive cannot be read or extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the destination (or is a device file)."""


def _check_member_path(archive: Path, name: str) -> None:
    """Refuse absolute paths and '..' components (in either slash style)."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the destination")


def _check_link(archive: Path, name: str, target: str, relative_to_member: bool) -> None:
    """Refuse a link whose target leaves the destination (symlinks resolve from the member's folder)."""
    base = PurePosixPath(name).parent if relative_to_member else PurePosixPath()
    resolved = os.path.normpath(str(base / target.replace("\\", "/")))
    if target.startswith(("/", "\\")) or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} links to {target!r}, outside the destination")


def _validate_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for m in tf.getmembers():
        _check_member_path(archive, m.name)
        if m.issym():
            _check_link(archive, m.name, m.linkname, relative_to_member=True)
        elif m.islnk():
            _check_link(archive, m.name, m.linkname, relative_to_member=False)
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device file or FIFO")


def _validate_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        _check_member_path(archive, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(archive, info.filename, zf.read(info).decode("utf-8", "replace"), relative_to_member=True)


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``dest``; return the extracted files.

    Every member is checked before anything is written: absolute paths, '..' components, links pointing
    outside ``dest`` and device files raise ``UnsafeArchiveError`` naming the archive and the member.
    Extraction goes to a temporary folder beside ``dest``; its top-level entries are renamed into ``dest``
    (replacing same-named ones) only when everything succeeded, so a failure leaves ``dest`` untouched.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _validate_zip(archive, zf)
                    zf.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive, "r:*") as tf:
                    _validate_tar(archive, tf)
                    tf.extractall(tmp, filter="data")  # the stdlib's own checks as a second line of defence
            else:
                raise ArchiveError(f"{archive}: not a tar or zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            raise ArchiveError(f"{archive}: cannot extract: {err}") from err
        files = sorted(dest / p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file() and not p.is_symlink())
        dest.mkdir(exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
