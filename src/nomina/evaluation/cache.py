"""The embedding cache of ``nomina evaluate``: what the pipeline made of each photo, by photo and pipeline.

A photo is known by the SHA-256 of its bytes; a pipeline by a hash of the model's identity (name and
file hashes), the settings that change what the analysis produces, and :data:`PIPELINE_VERSION`, which
changes whenever the analysis code does. A changed photo, model or setting therefore never reuses an
old entry. The cache is one SQLite file; it holds face embeddings, which are biometric data.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..files import PRIVATE_FILE, private_folder, restrict

__all__ = ["CACHE_FILE", "PIPELINE_VERSION", "Analysis", "EmbeddingCache", "pipeline_key"]

CACHE_FILE = "embeddings.sqlite"
#: Raised whenever face analysis changes in a way that changes its results.
PIPELINE_VERSION = 4  # 2: quality measures contrast, noise and the quality score; 3: SFace output length;
# 4: ArcFace output length


@dataclass(frozen=True)
class Analysis:
    """What the pipeline made of one photo."""

    status: str  # "ok", "no_face" (a detection failure) or "unreadable" (not a usable image)
    faces: int  # faces detected
    message: str | None = None  # why, for a failure
    face: dict[str, Any] | None = None  # the face used: number, box, landmarks, quality
    vector: np.ndarray | None = None  # its embedding (unit length), for status "ok"
    width: int = 0
    height: int = 0


def pipeline_key(model_identity: dict[str, Any], settings: dict[str, Any]) -> str:
    """A short hash naming the model, the analysis settings and the pipeline version."""
    text = json.dumps({"model": model_identity, "settings": settings, "version": PIPELINE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class EmbeddingCache:
    """Analyses by (photo SHA-256, pipeline key) in ``folder/embeddings.sqlite``. Use from one thread."""

    def __init__(self, folder: Path, pipeline: str) -> None:
        folder = Path(folder).expanduser()
        private_folder(folder)  # embeddings of the photos evaluated: the owner's alone, whatever the umask
        self.path = folder / CACHE_FILE
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        restrict(self.path)  # SQLite gives its -wal and -shm files the database file's permissions
        self.pipeline = pipeline
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS analyses (photo_sha256 TEXT, pipeline TEXT, status TEXT, faces INTEGER, "
            "message TEXT, face TEXT, vector BLOB, width INTEGER, height INTEGER, "
            "PRIMARY KEY (photo_sha256, pipeline))"
        )
        self._db.commit()

    def get_many(self, shas: list[str]) -> dict[str, Analysis]:
        found: dict[str, Analysis] = {}
        for i in range(0, len(shas), 500):
            chunk = shas[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT photo_sha256, status, faces, message, face, vector, width, height FROM analyses "
                f"WHERE pipeline = ? AND photo_sha256 IN ({marks})",
                [self.pipeline, *chunk],
            )
            for sha, status, faces, message, face, vector, width, height in rows:
                found[sha] = Analysis(
                    status=status,
                    faces=faces,
                    message=message,
                    face=None if face is None else json.loads(face),
                    vector=None if vector is None else np.frombuffer(vector, dtype=np.float32).copy(),
                    width=width,
                    height=height,
                )
        return found

    def put(self, sha: str, a: Analysis) -> None:
        """Store an analysis (not committed until :meth:`commit`)."""
        self._db.execute(
            "INSERT OR REPLACE INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sha,
                self.pipeline,
                a.status,
                a.faces,
                a.message,
                None if a.face is None else json.dumps(a.face),
                None if a.vector is None else np.asarray(a.vector, dtype=np.float32).tobytes(),
                a.width,
                a.height,
            ),
        )

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()
