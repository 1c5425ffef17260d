"""The files of citizens' attachments under MEDIA_DIR: private (files 0600, folders 0700), written atomically
and named by their SHA-256, so identical bytes are one file and a half-written file is never visible.

Layout: ``MEDIA_DIR/ab/abcdef…`` for kept files and ``MEDIA_DIR/tmp/`` for downloads in progress (on the
same file system, so keeping a file is one rename). Paths in the database are relative to MEDIA_DIR.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ntbcare.core.media_rules import stored_name
from ntbcare.core.security import PRIVATE_FILE_MODE, private_dir

TEMP_FOLDER = "tmp"


class MediaStore:
    """MEDIA_DIR: where downloads are written, kept, read back for serving and deleted."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def temp_file(self) -> tuple[int, Path]:
        """A new empty 0600 file for a download in progress, and its open descriptor."""
        folder = self.root / TEMP_FOLDER
        self._private(folder)
        fd, name = tempfile.mkstemp(dir=folder, prefix="part-")  # 0600, O_EXCL
        return fd, Path(name)

    def keep(self, temp: Path, sha256: str) -> str:
        """Move a complete, fsynced download to its content name; returns the path relative to MEDIA_DIR.

        The rename replaces an identical file of the same name, so the file exists afterwards even if another
        process was deleting the old one at that moment.
        """
        relative = stored_name(sha256)
        final = self.root / relative
        self._private(final.parent)
        os.chmod(temp, PRIVATE_FILE_MODE)
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return relative

    def _private(self, folder: Path) -> None:
        """MEDIA_DIR itself and ``folder`` in it created 0700 (``mkdir`` gives missing parents the umask's mode)."""
        private_dir(self.root)
        private_dir(folder)

    def path(self, relative: str | None) -> Path | None:
        """The absolute path of a kept file, or None when it is missing or would lie outside MEDIA_DIR."""
        if not relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root.resolve()) or not candidate.is_file():
            return None
        return candidate

    def delete(self, relative: str | None) -> bool:
        """Remove a kept file; False when it was not there."""
        path = self.path(relative)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    @staticmethod
    def discard(temp: Path | None) -> None:
        """Remove a download that is not kept (refused, failed, or its row is gone)."""
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable: the folder's entry, not only the file's bytes, survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
