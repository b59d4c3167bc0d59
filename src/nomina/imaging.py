"""Safe image decoding: format check, pixel limit, EXIF orientation, hashing.

Photos are kept byte for byte as supplied; what the face model sees is a decoded copy turned upright
according to the photo's EXIF orientation. Every failure names the file.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FileMissing, ImageTooLarge, NotAnImage, UnsupportedFormat

__all__ = ["ACCEPTED_FORMATS", "DecodedImage", "decode_image", "read_photo", "sha256_hex"]

#: Pillow format names Nomina accepts: lossless and lossy formats in which photos are supplied.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")


@dataclass(frozen=True)
class DecodedImage:
    """A photo decoded for analysis: upright BGR pixels (OpenCV's order) and facts about the file."""

    pixels: np.ndarray  # H x W x 3, uint8, BGR
    format: str
    sha256: str
    size_bytes: int

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_photo(path: Path) -> bytes:
    """The bytes of a photo file, or FileMissing naming the path."""
    path = Path(path)
    if not path.exists():
        raise FileMissing(f"{path}: no such file")
    if not path.is_file():
        raise FileMissing(f"{path}: not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileMissing(f"{path}: cannot be read ({exc.strerror})") from None


def decode_image(data: bytes, name: str, max_pixels: int) -> DecodedImage:
    """Decode photo bytes safely; ``name`` is used in error messages.

    The pixel count is checked from the header before any pixel is decoded, so a decompression bomb
    costs nothing. Pillow's own bomb warning becomes an error too.
    """
    if not data:
        raise NotAnImage(f"{name}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise NotAnImage(f"{name}: not an image (unrecognised file contents)") from None
        except Image.DecompressionBombError:
            raise ImageTooLarge(f"{name}: image too large, over the decompression limit") from None
        except (Image.DecompressionBombWarning, OSError, ValueError, SyntaxError) as exc:
            raise NotAnImage(f"{name}: not a readable image ({exc})") from None
        fmt = img.format or "unknown"
        if fmt not in ACCEPTED_FORMATS:
            raise UnsupportedFormat(f"{name}: unsupported image format {fmt} (accepted: {', '.join(ACCEPTED_FORMATS)})")
        width, height = img.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"{name}: image too large, {width}x{height} = {width * height:,} pixels "
                f"(limit {max_pixels:,}; setting NOMINA_MAX_PIXELS)"
            )
        try:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
            raise NotAnImage(f"{name}: damaged or truncated image ({exc})") from None
    pixels = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    return DecodedImage(pixels=pixels, format=fmt, sha256=sha256_hex(data), size_bytes=len(data))
