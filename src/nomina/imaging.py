"""Safe image decoding: format check, pixel limit, EXIF orientation, hashing.

Photos are kept byte for byte as supplied; what the face model sees is a decoded copy turned upright
according to the photo's EXIF orientation. Every failure names the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import FileMissing, ImageTooLarge, NominaError, NotAnImage, UnsupportedFormat, one_line, reason

__all__ = [
    "ACCEPTED_FORMATS",
    "MIN_SIDE",
    "DecodedImage",
    "decode_image",
    "decoded",
    "decoding_slot",
    "read_photo",
    "sha256_hex",
]

#: Pillow format names Nomina accepts: lossless and lossy formats in which photos are supplied. MPO is a JPEG
#: followed by more images (a phone's HDR gain map, a depth map, a stereo pair): its first image is the photo.
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF")
#: The most scans a JPEG may hold. Every scan of a progressive JPEG is decoded over the whole image, so a
#: small file of 100,000 tiny scans of a large image would take hours; a camera's has about 10.
MAX_JPEG_SCANS = 256


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


class _Slots:
    """How many photos this process holds decoded at once, whoever asked: each import worker, each web
    request adding photos or showing one, each hand-marked face takes a slot for as long as it holds
    the pixels, and waits for one while ``limit`` are taken.

    A photo within the pixel limit decodes to up to 150 MB, and its analysis needs about as much again;
    without slots, forty web requests each adding one small file that decodes to 50 megapixels (a PNG of
    a flat colour is a few hundred kB) held 40 such photos at once and could exhaust the server's memory.
    With slots, the memory held by decoded photos is ``limit`` times the largest, and the cores are not
    shared among more photos than they can analyse (the ``workers`` setting).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._taken = 0
        self._line: deque[object] = deque()  # those waiting, first come first served
        self._held = threading.local()  # whether this thread holds a slot already

    @property
    def taken(self) -> int:
        return self._taken

    @contextmanager
    def __call__(self, limit: int) -> Iterator[None]:
        """Hold a slot, once fewer than ``limit`` are taken and everyone who asked before has one: an
        import's worker, which asks again as soon as it gives one back, cannot keep a page waiting. A
        thread that holds a slot already goes on in it (it would otherwise wait for itself)."""
        if getattr(self._held, "slot", False):
            yield
            return
        me = object()
        with self._changed:
            self._line.append(me)
            try:
                self._changed.wait_for(lambda: self._line[0] is me and self._taken < max(1, limit))
            except BaseException:  # interrupted while waiting: leave the line
                self._line.remove(me)
                self._changed.notify_all()
                raise
            self._line.popleft()
            self._taken += 1
            self._changed.notify_all()  # the next in line may fit too
        self._held.slot = True
        try:
            yield
        finally:
            self._held.slot = False
            with self._changed:
                self._taken -= 1
                self._changed.notify_all()


#: ``with decoding_slot(settings.workers):`` around decoding a photo and everything done with its pixels.
decoding_slot = _Slots()


@contextmanager
def decoded(data: bytes, name: str, max_pixels: int, workers: int) -> Iterator[DecodedImage]:
    """:func:`decode_image` in one of the process's decoding slots, held until the block ends: do all the
    work with the pixels inside it (a slot is what bounds the memory decoded photos hold)."""
    with decoding_slot(workers):
        yield decode_image(data, name, max_pixels)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: The largest photo file read, in bytes: a 50-megapixel photo is far smaller (an uncompressed 16-bit one is
#: 300 MB), and a larger file would be read whole into memory before its header could be checked.
MAX_FILE_BYTES = 300 * 1024**2


def read_photo(path: Path) -> bytes:
    """The bytes of a photo file, or FileMissing naming the path (ImageTooLarge over :data:`MAX_FILE_BYTES`)."""
    path = Path(path)
    try:
        found = path.stat()
    except FileNotFoundError:
        raise FileMissing(f"{path}: no such file") from None
    except OSError as exc:  # a name too long, a loop of links, a folder that cannot be entered
        raise FileMissing(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except ValueError:  # a NUL in the name
        raise FileMissing(f"{str(path)!r}: cannot be read (the name holds a NUL character)") from None
    if not stat.S_ISREG(found.st_mode):
        raise FileMissing(f"{path}: not a file")
    if found.st_size > MAX_FILE_BYTES:
        raise ImageTooLarge(f"{path}: {found.st_size:,} bytes; a photo file of more than {MAX_FILE_BYTES:,} is refused")
    try:
        return path.read_bytes()
    except MemoryError:
        raise ImageTooLarge(f"{path}: too large to read in the memory available") from None
    except OSError as exc:
        raise FileMissing(f"{path}: cannot be read ({exc.strerror or exc})") from None


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
    if data.startswith(b"\xff\xd8"):
        _check_jpeg_scans(data, name)
    # warnings.catch_warnings changes process-wide state: decodes in worker threads take turns.
    with _DECODING, warnings.catch_warnings(), _pillow_log_kept() as said:
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise NotAnImage(f"{name}: not an image (unrecognised file contents)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge(f"{name}: image too large, over the decompression limit") from None
        except MemoryError:
            raise ImageTooLarge(f"{name}: image too large to decode in the memory available") from None
        except Exception as exc:  # noqa: BLE001 (a damaged file can make a decoder fail in any way: struct.error, TypeError...)
            raise NotAnImage(f"{name}: not a readable image ({reason(exc)})") from None
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
            with _c_stderr_kept(fmt == "TIFF", said):
                # is_animated looks for a second image only; n_frames would walk every page of a TIFF first,
                # which takes minutes for 100,000 pages.
                if fmt != "MPO" and getattr(img, "is_animated", False):
                    img.seek(1)  # a damaged file that only points to a second image fails here
                    raise UnsupportedFormat(
                        f"{name}: several images in one {fmt} file (pages or frames); give each photo as a file "
                        "of its own"
                    )
                img.load()
                if fmt in ("JPEG", "MPO"):
                    _check_jpeg_data(data, name)
                upright = _rgb(_upright(img), name)
        except NominaError:
            raise
        except MemoryError:
            raise ImageTooLarge(f"{name}: image too large to decode in the memory available") from None
        except Exception as exc:  # noqa: BLE001 (as above)
            why = "; ".join([reason(exc), *said[:1]])
            raise NotAnImage(f"{name}: damaged or truncated image ({why})") from None
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


# EXIF orientation -> the transposition that turns the photo upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(img: Image.Image) -> Image.Image:
    """The photo turned as its EXIF orientation says (the pixels only: Pillow's exif_transpose also rewrites
    the EXIF block, which fails on a damaged one). A damaged block whose orientation cannot be read leaves
    the photo as it is: its pixels are still the photo (a case photo is searched in every orientation)."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 (any damage in the EXIF block)
        return img
    method = _TRANSPOSE.get(orientation) if type(orientation) is int else None
    return img if method is None else img.transpose(method)


@contextmanager
def _c_stderr_kept(active: bool, said: list[str]) -> Iterator[None]:
    """While ``active``, what C code writes to the process's standard error goes into ``said`` instead (its
    lines, once the block has ended). libtiff reports a damaged file there itself, which would put a second
    line beside Nomina's one-line error. Called under the decoding lock; Python's own ``sys.stderr`` is
    flushed first, so nothing written before is lost."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                sink.seek(0)
                text = sink.read(4096).decode("utf-8", "replace")
                said.extend(one_line(line) for line in text.splitlines() if line.strip())
    finally:
        os.close(saved)


class _PillowLog(logging.Handler):
    """Pillow's log messages of warning level and above, kept in the list of the decode running in this
    thread (none elsewhere). Pillow reports some damage (a TIFF's impossible samples per pixel) by logging
    an error before raising, which Python would otherwise print to standard error beside Nomina's one-line
    message; a damaged image's message quotes the first line kept instead."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kept = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        kept: list[str] | None = getattr(self.kept, "lines", None)
        if kept is not None:
            kept.append(one_line(record.getMessage()))


_PILLOW_LOG = _PillowLog()
logging.getLogger("PIL").addHandler(_PILLOW_LOG)


@contextmanager
def _pillow_log_kept() -> Iterator[list[str]]:
    """Pillow's log messages in this thread while the block runs, in the list it gives."""
    lines: list[str] = []
    _PILLOW_LOG.kept.lines = lines
    try:
        yield lines
    finally:
        _PILLOW_LOG.kept.lines = None


def _check_jpeg_scans(data: bytes, name: str) -> None:
    """Refuse a JPEG of more than :data:`MAX_JPEG_SCANS` scans. A scan starts with the marker FF DA, which
    cannot occur inside compressed data (an FF there is always followed by 00 or a restart marker)."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise NotAnImage(
            f"{name}: a JPEG of {scans:,} scans (at most {MAX_JPEG_SCANS} are decoded; a camera's photo has about "
            "10): damaged, or made to take hours to decode"
        )


#: What libjpeg says, as its first warning, of a JPEG whose pixels it could not all decode (it fills the rest with
#: grey and goes on): a truncated file whose end marker was put back, a damaged Huffman code, a scan cut short.
_JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters", "Inconsistent progression")
#: ... except a few bytes between the image data and the end marker, which some cameras and editors leave (no pixel
#: is lost). Damage inside the data also leaves bytes there, unread, but tens or hundreds of them.
_JPEG_PADDING = re.compile(r"Corrupt JPEG data: ([1-9]|1[0-6]) extraneous bytes before marker 0xd9")


def _check_jpeg_data(data: bytes, name: str) -> None:
    """Refuse a JPEG whose compressed data is damaged. Pillow decodes it without a word, the missing part grey;
    libjpeg's warning is only printed, so the file is decoded again by OpenCV's libjpeg at an eighth of its size
    in grey (the whole compressed data is still read, at a fraction of the cost) and its first warning read
    from standard error. Called under the decoding lock, like every capture of standard error."""
    heard: list[str] = []
    with _c_stderr_kept(True, heard):
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_IGNORE_ORIENTATION)
    first = heard[0] if heard else ""
    if first.startswith(_JPEG_DAMAGE) and not _JPEG_PADDING.match(first):
        raise NotAnImage(f"{name}: damaged or truncated image ({first})")


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
