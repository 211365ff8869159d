"""Paths taken from label files (data keys, label paths, file names, zip members) are never trusted:
they must stay inside the folder they are relative to."""
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import UserError


class UnsafePath(ValueError):
    """A relative path from a label file that would leave its folder."""


def is_safe_relative(relative) -> bool:
    text = str(relative).replace("\\", "/")
    if not text or text.startswith("/") or PureWindowsPath(str(relative)).drive:
        return False
    return ".." not in PurePosixPath(text).parts


def safe_join(root, relative) -> Path:
    """root/relative, or UnsafePath when `relative` is absolute, has '..' or resolves (symlinks) outside."""
    if not is_safe_relative(relative):
        raise UnsafePath(f"'{relative}' escapes {root}")
    root = Path(root)
    joined = root.joinpath(*PurePosixPath(str(relative).replace("\\", "/")).parts)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(joined)]) != real_root:
        raise UnsafePath(f"'{relative}' escapes {root} (through a link)")
    return joined


# Zip bomb limits: a labels export is many small JSON files and images (images don't compress; JSON ~10x).
MAX_ZIP_MEMBERS = 200_000
MAX_ZIP_BYTES = 20 << 30  # extracted, in all
MAX_ZIP_RATIO = 200  # extracted / compressed, for members over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1 << 20


def extract_zip(zip_path, dest) -> Path:
    """Extract `zip_path` into `dest`, refusing (UserError naming the member) any member that is a link or
    whose name would land outside `dest`, and a zip bomb (too many members, too many bytes in all, a member
    compressed beyond MAX_ZIP_RATIO, or more bytes than the disk has free); nothing is written when one is
    found. Sizes are checked as declared, then counted while extracting (a member can't exceed its declared
    size: zipfile stops there)."""
    zip_path, dest = Path(zip_path), Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{zip_path}: not a readable zip file ({e})") from None
    with archive:
        members = archive.infolist()
        _check_members(zip_path, dest, members)
        written = 0
        for member in members:
            target = safe_join(dest, member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as out:
                    member_written = 0
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        member_written += len(chunk)
                        if member_written > member.file_size:
                            raise UserError(f"{zip_path}: member '{member.filename}' holds more than the "
                                            f"{member.file_size} bytes it declares; refusing (a zip bomb?)")
                        if written > MAX_ZIP_BYTES:
                            raise UserError(f"{zip_path}: extracts to more than {_size(MAX_ZIP_BYTES)}; "
                                            f"refusing (a zip bomb?)")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as e:
                raise UserError(f"{zip_path}: member '{member.filename}' is damaged or unsupported ({e})") from None
            except OSError as e:
                raise UserError(f"{zip_path}: extracting '{member.filename}' failed ({e.strerror or e})") from None
    return dest


def _check_members(zip_path, dest, members):
    if len(members) > MAX_ZIP_MEMBERS:
        raise UserError(f"{zip_path}: {len(members)} members, more than {MAX_ZIP_MEMBERS}; refusing (a zip bomb?)")
    total = 0
    for member in members:
        if not is_safe_relative(member.filename):
            raise UserError(f"{zip_path}: member '{member.filename}' escapes the archive folder; refusing to extract")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UserError(f"{zip_path}: member '{member.filename}' is a symbolic link; refusing to extract")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise UserError(f"{zip_path}: member '{member.filename}' expands {ratio:.0f}x "
                            f"({_size(member.compress_size)} -> {_size(member.file_size)}), more than "
                            f"{MAX_ZIP_RATIO}x; refusing (a zip bomb?)")
        total += member.file_size
    if total > MAX_ZIP_BYTES:
        raise UserError(f"{zip_path}: extracts to {_size(total)}, more than {_size(MAX_ZIP_BYTES)}; "
                        f"refusing (a zip bomb?)")
    free = shutil.disk_usage(dest).free
    if total > free:
        raise UserError(f"{zip_path}: extracts to {_size(total)} but {dest} has only {_size(free)} free")


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
