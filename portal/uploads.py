"""Uploaded files: checked by extension and by content, limited in size, kept outside the web root.

Files are stored under `settings.portal.upload_dir` as `<yyyy>/<mm>/<random>.<ext>`; the uploader's
own name is kept only in the ledger, for display. Nothing under the folder is ever served by
path: downloads go through routes that check who is asking.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import zipfile
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from agencies.answers import StoredFile
from agencies.errors import Refused
from wangjian.settings import PortalSettings

CHUNK = 256 * 1024
DOCUMENTS = frozenset({"pdf", "docx", "ofd", "jpg", "jpeg", "png"})
SPREADSHEETS = frozenset({"xlsx"})
ANY = DOCUMENTS | SPREADSHEETS
# What a platform sends in answer to an assistance request (协查): its data, as tables or a
# ZIP of them, or a PDF print-out.
DATA_FILES = frozenset({"xlsx", "csv", "zip", "pdf"})
# What the first bytes (or, for Office Open XML and OFD, the ZIP's members) must be.
MAGIC = {
    "pdf": b"%PDF-",
    "jpg": b"\xff\xd8\xff",
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
}
ZIP_MEMBER = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml", "ofd": "OFD.xml"}
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ofd": "application/ofd",
    "csv": "text/csv",
    "zip": "application/zip",
}


def store_upload(
    *,
    settings: PortalSettings,
    filename: str | None,
    stream: BinaryIO,
    role: str,
    allowed: frozenset[str] = ANY,
    at: datetime,
) -> StoredFile | None:
    """Check and keep one uploaded file; None when the field was left empty."""
    name = display_name(filename or "")
    if not name:
        return None
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in allowed:
        raise Refused(
            f"文件“{name}”类型不允许,仅接受:{'、'.join(sorted(allowed))}",
            f"file '{name}' is not accepted; allowed types: {', '.join(sorted(allowed))}",
            column=role,
        )
    root = Path(settings.upload_dir).resolve()
    folder = root / f"{at:%Y}" / f"{at:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    stored = f"{secrets.token_hex(16)}.{ext}"
    target = folder / stored
    limit = settings.max_upload_mb * 1024 * 1024
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise Refused(
                        f"文件“{name}”超过{settings.max_upload_mb}MB",
                        f"file '{name}' is larger than {settings.max_upload_mb} MB",
                        column=role,
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Refused(f"文件“{name}”为空", f"file '{name}' is empty", column=role)
        if not _content_matches(target, ext):
            raise Refused(
                f"文件“{name}”的内容与扩展名.{ext}不符",
                f"the content of '{name}' is not a .{ext} file",
                column=role,
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(
        role=role,
        name=name,
        path=target.relative_to(root).as_posix(),
        size=size,
        sha256=digest.hexdigest(),
    )


def resolve_stored(settings: PortalSettings, relative: str) -> Path | None:
    """The file behind a stored path, if it lies inside the upload folder and exists."""
    root = Path(settings.upload_dir).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def display_name(filename: str) -> str:
    """The uploader's file name without any folder part or control characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return cleaned[:200]


def _content_matches(path: Path, ext: str) -> bool:
    if ext == "csv":
        return _is_text(path)
    if ext == "zip":
        return zipfile.is_zipfile(path)
    if ext in MAGIC:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC[ext])) == MAGIC[ext]
    member = ZIP_MEMBER.get(ext)
    if member is None:
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    # OFD packages name their entry file OFD.xml at the root (GB/T 33190).
    return member in names or (ext == "ofd" and any(n.upper() == "OFD.XML" for n in names))


def _is_text(path: Path) -> bool:
    """A CSV is text: no NUL byte, and UTF-8 or GB18030 (its first 64 KiB, cut at a line)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if b"\x00" in head:
        return False
    if len(head) == 1 << 16 and b"\n" in head:
        head = head[: head.rindex(b"\n")]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            head.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def remove_stored(settings: PortalSettings, files: list[StoredFile]) -> None:
    """Drop files kept for a submission that was then refused."""
    for stored in files:
        path = resolve_stored(settings, stored.path)
        if path is not None:
            os.unlink(path)
