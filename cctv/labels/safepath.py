"""Paths taken from label files (data keys, label paths, file names, zip members) are never trusted:
they must stay inside the folder they are relative to."""
import os
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


def extract_zip(zip_path, dest) -> Path:
    """Extract `zip_path` into `dest`, refusing (UserError naming the member) any member that is a link
    or whose name would land outside `dest`; nothing is written when one is found."""
    zip_path, dest = Path(zip_path), Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{zip_path}: not a readable zip file ({e})") from None
    with archive:
        members = archive.infolist()
        for member in members:
            if not is_safe_relative(member.filename):
                raise UserError(f"{zip_path}: member '{member.filename}' escapes the archive folder; refusing to extract")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UserError(f"{zip_path}: member '{member.filename}' is a symbolic link; refusing to extract")
        for member in members:
            target = safe_join(dest, member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    return dest
