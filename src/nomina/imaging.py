"""Safe image decoding: format check, pixel limit, EXIF orientation, hashing.

Photos are kept byte for byte as supplied; what the face model sees is a decoded copy turned upright
according to the photo's EXIF orientation. Every failure names the file.
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FileMissing, ImageTooLarge, NotAnImage, UnsupportedFormat

__all__ = ["ACCEPTED_FORMATS", "MIN_SIDE", "DecodedImage", "decode_image", "read_photo", "sha256_hex"]

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
    costs nothing; Pillow's own bomb warning becomes an error too. Decoding is strict: a truncated file
    or a PNG chunk that fails its CRC check is refused (Pillow does not check the CRCs of image data),
    as is a file holding several images (TIFF pages, animation frames), which would otherwise be read
    as its first image only. Pillow's other warnings are about metadata (a corrupt EXIF block, a
    palette's transparency) and are ignored: the pixels either decode or raise.
    """
    if not data:
        raise NotAnImage(f"{name}: empty file (0 bytes)")
    if data.startswith(_PNG_SIGNATURE):
        _check_png_chunks(data, name)
    # warnings.catch_warnings changes process-wide state: decodes in worker threads take turns.
    with _DECODING, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise NotAnImage(f"{name}: not an image (unrecognised file contents)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge(f"{name}: image too large, over the decompression limit") from None
        except (OSError, ValueError, SyntaxError) as exc:
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
        if min(width, height) < MIN_SIDE:
            raise NotAnImage(
                f"{name}: {width}x{height} pixels, too small to show a face (at least {MIN_SIDE} pixels each way)"
            )
        try:
            frames = int(getattr(img, "n_frames", 1))
            if frames > 1:
                raise UnsupportedFormat(
                    f"{name}: {frames} images in one {fmt} file (pages or frames); give each photo as a file of its own"
                )
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when the photo is upright already
            upright = _rgb(img, name)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning) as exc:
            raise NotAnImage(f"{name}: damaged or truncated image ({exc})") from None
    # Copying out the decoded pixels cannot warn, so it runs outside the lock: for a 12 MP photo it is most
    # of the time, and the workers' decodes then overlap.
    rgb = np.asarray(upright) if isinstance(upright, Image.Image) else upright
    pixels = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)  # a new array (30x faster than a flip)
    return DecodedImage(pixels=pixels, format=fmt, sha256=sha256_hex(data), size_bytes=len(data))


#: The smallest width and height accepted, in pixels: a thinner image cannot show a face.
MIN_SIDE = 16
# Grey (mid-level) behind the transparent parts of a photo, as behind the detector's padded copies.
_BACKGROUND = (127, 127, 127)
# Pillow modes with an alpha channel (other modes may carry a transparent colour in ``info``).
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_DECODING = threading.Lock()


def _rgb(img: Image.Image, name: str) -> Image.Image | np.ndarray:
    """The image as RGB: an RGB Pillow image (``img`` itself when it is one already), or H x W x 3 uint8
    for high bit depths (scaled down, not clipped). Transparency is laid on grey; a fully transparent image
    shows nothing and is refused."""
    if img.mode.startswith("I") or img.mode == "F":  # 16- and 32-bit integer, 32-bit float: one channel
        grey = _eight_bit(np.asarray(img), img.mode)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        if not np.asarray(rgba.getchannel("A")).any():
            raise NotAnImage(f"{name}: fully transparent, no visible pixels")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _eight_bit(values: np.ndarray, mode: str) -> np.ndarray:
    """Grey levels of a high-bit-depth image as uint8, scaled from the image's white level.

    16-bit images (modes ``I;16*``) are white at 65535. Pillow's 32-bit integer (``I``) and float (``F``)
    images carry no white level, so the smallest usual one that holds the brightest pixel is taken: 1.0
    (floats), 255 or 65535; beyond that, the brightest pixel is white. Negative and non-finite values
    are black.
    """
    grey = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    top = float(grey.max()) if grey.size else 0.0
    if mode.startswith("I;16"):
        white = 65535.0
    else:
        levels = ((1.0,) if mode == "F" else ()) + (255.0, 65535.0)
        white = next((level for level in levels if top <= level), top)
    return np.asarray(np.round(grey * (255.0 / white)), dtype=np.uint8)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_chunks(data: bytes, name: str) -> None:
    """Every chunk of a PNG file up to IEND present and matching its CRC; NotAnImage naming the file."""
    view = memoryview(data)
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise NotAnImage(f"{name}: damaged or truncated image (the PNG data ends before its IEND chunk)")
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise NotAnImage(f"{name}: damaged or truncated image (the PNG data ends inside a chunk)")
        (crc,) = struct.unpack(">I", view[end - 4 : end])
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            label = kind.decode("ascii", "backslashreplace")
            raise NotAnImage(f"{name}: damaged image (PNG chunk {label} at byte {pos} fails its CRC check)")
        if kind == b"IEND":
            return
        pos = end
