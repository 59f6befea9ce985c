"""Content-addressed file storage for documents: a file's name is the sha256 of its
bytes, so the same bytes are stored once and a stored file cannot change unnoticed.

Writes go to a temporary file in the same directory, are fsynced, then renamed into
place and the directory fsynced: once :meth:`BlobStore.commit` returns, the bytes survive
a crash. All of it is blocking file I/O: callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from sessions.files import fsync_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(ValueError):
    pass


class Upload:
    """A file being received: written to a temporary file and hashed as it arrives."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"the file is larger than {self.max_bytes} bytes")
        self._digest.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Flush and fsync; the sha256 of what was written."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._digest.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class Blobs(Protocol):
    """Where documents, signatures and results are kept, by the sha256 of their bytes.

    Every node of a deployment must see the same blobs. :class:`BlobStore` keeps them in
    a directory that all nodes share (NFS or any POSIX file system with atomic rename
    and fsync). An object-storage implementation (S3 and the like) would put the bytes
    there on :meth:`commit` and keep a local cache for :meth:`path_of`, which page
    rendering (PDFium) and file responses need."""

    def begin(self, max_bytes: int) -> Upload:
        """A file to receive an upload into (hashed as it arrives)."""

    def commit(self, upload: Upload, sha256: str) -> Path:
        """Store a finished upload durably; returns its local path."""

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` durably; returns its sha256."""

    def read(self, sha256: str) -> bytes: ...

    def path_of(self, sha256: str) -> Path:
        """A local file holding the blob's bytes."""


class BlobStore:
    """:class:`Blobs` in a directory (``DATA_DIR/documents``), shared by all nodes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def begin(self, max_bytes: int) -> Upload:
        return Upload(self.incoming, max_bytes)

    def commit(self, upload: Upload, sha256: str) -> Path:
        """Move a finished upload into place (or drop it if those bytes are stored)."""
        target = self.path_of(sha256)
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            upload.discard()
        else:
            os.replace(upload.path, target)
            fsync_dir(target.parent)
        return target

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (durably) and return its sha256."""
        upload = self.begin(len(data))
        try:
            upload.write(data)
            sha256 = upload.finish()
        except BaseException:
            upload.discard()
            raise
        self.commit(upload, sha256)
        return sha256

    def read(self, sha256: str) -> bytes:
        return self.path_of(sha256).read_bytes()
