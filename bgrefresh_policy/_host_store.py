"""The host store of ``share_across_processes``: one token file and one lock file per name and key.

Every process of one OS user that uses the same name reads the same files. The directory is
private to that user (0700) and sits on a memory-backed file system where the platform has one
(``XDG_RUNTIME_DIR``, ``/dev/shm``), so a token never reaches a disk; each file is 0600. File
names are a hash of the name and the key: a name never shows a token, and scopes show nothing.

The lock is filelock's: an OS lock (``flock``) that the kernel drops when its holder dies, so a
process killed mid-refresh never blocks the others. A token file is replaced whole
(``os.replace`` of a file written beside it): a reader sees the old file or the new one, never
half of one, even from a writer killed mid-write. A file that is damaged, truncated, of another
format version, or not private to this user is ignored with one WARNING: never read as a token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, AccessTokenInfo

from ._key_state import TokenKey

if TYPE_CHECKING:
    from filelock import BaseFileLock

__all__ = ["FORMAT", "VERSION", "HostStore", "host_directory"]

_LOGGER = logging.getLogger(__name__)

TokenLike = AccessToken | AccessTokenInfo

FORMAT = "bgrefresh-policy host token"
VERSION = 1
# A token file is a few KB; anything far larger is not one, and is not read whole.
_LARGEST = 256 * 1024
_PRIVATE = 0o700
_READ_WRITE = 0o600


class NotPrivateError(PermissionError):
    """The store's directory exists but another user could enter it, or it is not this user's."""


def _base() -> Path:
    """Where the store's directory goes: the first memory-backed place this platform offers."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate):
            return Path(candidate)
    return Path(tempfile.gettempdir())  # not memory-backed (see docs/processes.rst)


def host_directory() -> Path:
    """The store's directory for this OS user, made private (0700) if new.

    :return: the directory.
    :raises NotPrivateError: it exists and is not a directory of this user's that only this user can enter.
    :raises NotImplementedError: not a POSIX host (no user id to make the directory private to).
    """
    if not hasattr(os, "geteuid"):
        raise NotImplementedError("share_across_processes needs a POSIX host (Linux, macOS)")
    uid = os.geteuid()
    directory = _base() / f"bgrefresh-policy-{uid}"
    try:
        directory.mkdir(mode=_PRIVATE)
        os.chmod(directory, _PRIVATE)  # mkdir's mode is cut by the umask, never widened
    except FileExistsError:
        pass
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != uid or found.st_mode & 0o077:
        raise NotPrivateError(
            f"share_across_processes: {directory} is not a directory that only this user ({uid}) can enter; "
            "tokens are not shared through it. Remove it, or set XDG_RUNTIME_DIR to a private directory"
        )
    return directory


def _key_fields(name: str, key: TokenKey) -> dict[str, Any]:
    return {"name": name, "scopes": list(key.scopes), "tenant_id": key.tenant_id, "cae": key.cae}


class HostStore:
    """The token files and locks of one ``share_across_processes`` name.

    :param str name: the name every sharing process gives.
    :param directory: the private directory (:func:`host_directory`).
    """

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        # The damaged files already warned about, by identity and version: one WARNING each.
        self._warned: set[tuple[str, int, int, int]] = set()

    def path(self, key: TokenKey, suffix: str) -> Path:
        """The file of ``key`` with ``suffix`` (``.token``, ``.lock``): named by a hash, never by a token."""
        fields = json.dumps(_key_fields(self.name, key), sort_keys=True).encode()
        return self.directory / (hashlib.sha256(fields).hexdigest()[:40] + suffix)

    def lock(self, key: TokenKey) -> BaseFileLock:
        """A new, unheld lock for ``key``: each holds a descriptor of its own, so threads exclude each other too."""
        from filelock import FileLock

        return FileLock(self.path(key, ".lock"), mode=_READ_WRITE, thread_local=False)

    def read(self, key: TokenKey) -> AccessTokenInfo | None:
        """The token stored for ``key``; None if there is none, or none to trust (one WARNING per bad file)."""
        path = self.path(key, ".token")
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a symlink (ELOOP), or a file this user cannot read
            self._warn(path, None, f"cannot be opened ({type(exc).__name__})")
            return None
        with os.fdopen(descriptor, "rb") as file:
            found = os.fstat(descriptor)
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o077:
                self._warn(path, found, "is not a file private to this user")
                return None
            token, reason = self._parse(file.read(_LARGEST + 1), key)
        if token is None and reason is not None:
            self._warn(path, found, reason)
        return token

    def _parse(self, data: bytes, key: TokenKey) -> tuple[AccessTokenInfo | None, str | None]:
        """The token in ``data``, or why there is none to take."""
        try:
            record = json.loads(data) if len(data) <= _LARGEST else None
        except ValueError:  # truncated, or not JSON (UnicodeDecodeError is a ValueError)
            record = None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return None, "is not a token file (damaged, truncated or foreign)"
        if record.get("version") != VERSION:
            return None, f"has format version {record.get('version')!r}, not {VERSION}"
        if record.get("key") != _key_fields(self.name, key):
            return None, "holds another key's token"
        token, expires_on, refresh_on = record.get("token"), _number(record.get("expires_on")), record.get("refresh_on")
        if not isinstance(token, str) or expires_on is None or (refresh_on is not None and _number(refresh_on) is None):
            return None, "has no well-formed token"
        return AccessTokenInfo(token, expires_on, refresh_on=_number(refresh_on)), None

    def write(self, key: TokenKey, token: TokenLike) -> None:
        """Store ``token`` for ``key``, replacing the file whole: readers see the old or the new one."""
        record = {
            "format": FORMAT,
            "version": VERSION,
            "key": _key_fields(self.name, key),
            "token": token.token,
            "expires_on": token.expires_on,
            "refresh_on": getattr(token, "refresh_on", None),
        }
        # mkstemp makes the file 0600 and exclusively; a writer killed before the replace leaves
        # only a stray temporary file, which no reader opens.
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".writing-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(json.dumps(record).encode())
            os.replace(temporary, self.path(key, ".token"))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _warn(self, path: Path, found: os.stat_result | None, reason: str) -> None:
        version = (str(path), *((found.st_ino, found.st_mtime_ns, found.st_size) if found else (0, 0, 0)))
        if version in self._warned:
            return
        self._warned.add(version)
        _LOGGER.warning(
            "share_across_processes %r: ignoring %s: it %s; the credential is asked instead", self.name, path, reason
        )


def _number(value: object) -> Any:
    """``value`` if it is a finite number of seconds, else None; a fraction is kept as the credential gave it,
    so that a token read back compares equal to the one written."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None
