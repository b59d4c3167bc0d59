"""Vector indexes over the gallery: exact (the oracle) and approximate for large galleries; derived data.

- :mod:`.gallery`: :class:`Gallery`, one process's index of every live reference face, exact or
  approximate by mode, kept in step with the database by batches of changes, rebuilt in the background
  when worth it, erasure-safe in memory;
- :mod:`.exact`: exact selection of the top references (and the earlier :class:`ExactIndex`);
- :mod:`.approximate`: the IVF-PQ layer (faiss) that proposes candidates for exact re-ranking;
- :mod:`.rows`: the float vectors in blocks, with face ids and references;
- :mod:`.snapshot`: the on-disk cache, written atomically, scrubbed in place on erasure.

Everything here can be rebuilt from the database: the vectors there are the record.
"""

from .approximate import Params
from .exact import ExactIndex, GalleryIndex, Hit
from .gallery import APPROXIMATE_FROM, MODES, Gallery, Pair
from .snapshot import folder_lock, remove_files

__all__ = [
    "APPROXIMATE_FROM",
    "MODES",
    "ExactIndex",
    "Gallery",
    "GalleryIndex",
    "Hit",
    "Pair",
    "Params",
    "folder_lock",
    "remove_files",
]
