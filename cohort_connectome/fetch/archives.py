"""Safe extraction of zip and tar(.gz) archives.

Members with absolute paths, ``..`` components, links pointing outside the
archive and device files are refused, and extraction happens in a temporary
folder beside the destination, so that a failure leaves nothing partial.
Every failure is an `InputError` naming the archive and the member.  In
nilearn the archives of the dataset fetchers are uncompressed whole
(``nilearn.datasets``); the member checks are ours.
"""

import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..errors import InputError
from .download import CHUNK_SIZE


def _member_parts(name):
    """Path components of an archive member name, or None when unsafe."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return parts


def _link_escapes(member_parts, target, hardlink):
    """Does a link at ``member_parts`` pointing to ``target`` leave the archive root?"""
    text = target.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return True
    base = [] if hardlink else member_parts[:-1]
    depth = len(base)
    for part in text.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _open_archive(archive):
    """``("zip", ZipFile)`` or ``("tar", TarFile)``; InputError when neither."""
    try:
        if zipfile.is_zipfile(archive):
            return "zip", zipfile.ZipFile(archive)
        return "tar", tarfile.open(archive, mode="r:*")
    except FileNotFoundError as err:
        raise InputError("archive not found", path=archive) from err
    except tarfile.ReadError as err:
        raise InputError("not a valid zip/tar archive", path=archive) from err
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"not a valid zip/tar archive ({type(err).__name__}: {err})",
                         path=archive) from err


def _entries(kind, handle, archive):
    """``(name, entry)`` of every member, in archive order."""
    try:
        if kind == "zip":
            return [(info.filename, info) for info in handle.infolist()]
        return [(member.name, member) for member in handle.getmembers()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"not a valid zip/tar archive ({type(err).__name__}: {err})",
                         path=archive) from err


def list_members(archive):
    """Names of the members of a zip or tar(.gz) archive, in archive order."""
    kind, handle = _open_archive(archive)
    with handle:
        return [name for name, _ in _entries(kind, handle, archive)]


def _check_entry(kind, name, entry, archive):
    """Refuse unsafe members; return ``"dir"`` or ``"file"``."""
    parts = _member_parts(name)
    if parts is None:
        raise InputError(f"unsafe member {name!r}: absolute path or '..' component",
                         path=archive)
    if kind == "zip":
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InputError(f"unsafe member {name!r}: symlinks are not supported in zip "
                             "archives", path=archive)
        return "dir" if entry.is_dir() else "file"
    if entry.issym() or entry.islnk():
        if _link_escapes(parts, entry.linkname, hardlink=entry.islnk()):
            raise InputError(f"unsafe member {name!r}: link to {entry.linkname!r} points "
                             "outside the archive", path=archive)
        return "file"
    if entry.isdir():
        return "dir"
    if entry.isfile():
        return "file"
    raise InputError(f"unsafe member {name!r}: device, fifo or other special file",
                     path=archive)


def _copy_entry(kind, handle, entry, out, archive, name):
    try:
        if kind == "zip":
            source = handle.open(entry)
        else:
            source = handle.extractfile(entry)
            if source is None:
                raise InputError(f"member {name!r} is not a regular file", path=archive)
        with source, open(out, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK_SIZE)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, KeyError, OSError,
            zlib.error) as err:
        raise InputError(f"corrupt archive: cannot extract {name!r} "
                         f"({type(err).__name__}: {err})", path=archive) from err


def safe_extract(archive, dest, members=None):
    """Extract a zip or tar(.gz) archive safely.

    Members with an absolute path or a ``..`` component, links pointing
    outside the archive and device/fifo members are refused.  Links inside
    the archive are extracted as copies of their target.  Everything is first
    extracted into a temporary folder beside ``dest``, then moved into place,
    so a refused or corrupt archive leaves nothing behind.

    Parameters
    ----------
    archive : str or Path
    dest : str or Path
        Folder to extract into (created if needed; existing other files stay).
    members : sequence of str or dict, optional
        Members to extract (default: all).  A dict maps a member name to the
        path, relative to ``dest``, to write it to.

    Returns
    -------
    list of Path
        The extracted files (not folders), in archive order.

    Raises
    ------
    InputError
        Naming the archive and the member: unsafe member, missing member,
        not a valid zip/tar archive, corrupt data.
    """
    archive = Path(archive)
    dest = Path(dest)
    kind, handle = _open_archive(archive)
    with handle:
        entries = _entries(kind, handle, archive)
        by_name = {}
        for name, entry in entries:
            by_name.setdefault(_normalize_member(name), (name, entry))
        if members is None:
            plan = [(name, entry, None) for name, entry in entries]
        else:
            mapping = members if isinstance(members, dict) else {m: None for m in members}
            plan = []
            for wanted, rename in mapping.items():
                found = by_name.get(_normalize_member(wanted))
                if found is None:
                    raise InputError(f"archive has no member {wanted!r}", path=archive)
                plan.append((*found, rename))
        checked = []
        for name, entry, rename in plan:
            what = _check_entry(kind, name, entry, archive)
            relative = _member_parts(rename) if rename is not None else _member_parts(name)
            if relative is None:
                raise InputError(f"unsafe target path {rename!r} for member {name!r}",
                                 path=archive)
            checked.append((name, entry, what, relative))
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extract",
                                        dir=dest.parent))
        try:
            files = []
            for name, entry, what, relative in checked:
                out = staging.joinpath(*relative)
                if what == "dir":
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                _copy_entry(kind, handle, entry, out, archive, name)
                files.append(relative)
            extracted = []
            for relative in files:
                final = dest.joinpath(*relative)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging.joinpath(*relative), final)
                extracted.append(final)
            for name, entry, what, relative in checked:
                if what == "dir":
                    dest.joinpath(*relative).mkdir(parents=True, exist_ok=True)
            return extracted
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _normalize_member(name):
    parts = _member_parts(name)
    return "/".join(parts) if parts else name
