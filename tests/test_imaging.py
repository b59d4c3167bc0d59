"""Safe decoding: EXIF orientation, formats, limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import london
from PIL import Image

from nomina import FaceAnalyzer
from nomina.errors import ImageTooLarge, NotAnImage, UnsupportedFormat
from nomina.imaging import decode_image


def rotated_with_exif(path, orientation: int, transpose: Image.Transpose) -> bytes:
    """The photo's pixels stored turned, with the EXIF tag that turns them upright again."""
    img = Image.open(path).transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
def test_exif_orientation_is_applied_before_detection(faces_dir, model, settings, orientation, transpose):
    data = rotated_with_exif(london(faces_dir, "007"), orientation, transpose)
    image = decode_image(data, "turned.jpg", settings.max_pixels)
    assert (image.width, image.height) == (400, 400)
    upright = decode_image(london(faces_dir, "007").read_bytes(), "upright.jpg", settings.max_pixels)
    assert np.abs(image.pixels.astype(int) - upright.pixels.astype(int)).mean() < 8
    face = FaceAnalyzer(model, settings).analyze(image)[0]
    assert abs(face.quality.roll) < 10  # eyes level: the face was turned upright
    assert image.sha256 != upright.sha256  # the stored bytes stay as supplied


def test_formats_and_limits(faces_dir):
    png = io.BytesIO()
    Image.open(london(faces_dir, "001")).save(png, "PNG")
    assert decode_image(png.getvalue(), "x.png", 10**7).format == "PNG"
    gif = io.BytesIO()
    Image.open(london(faces_dir, "001")).save(gif, "GIF")
    with pytest.raises(UnsupportedFormat, match="x.gif: unsupported image format GIF"):
        decode_image(gif.getvalue(), "x.gif", 10**7)
    with pytest.raises(ImageTooLarge, match="x.png: image too large, 400x400"):
        decode_image(png.getvalue(), "x.png", 1000)
    with pytest.raises(NotAnImage, match="x.jpg: empty file"):
        decode_image(b"", "x.jpg", 1000)


def test_grey_and_alpha_photos_decode_to_three_channels(faces_dir):
    for mode in ("L", "RGBA", "CMYK"):
        buf = io.BytesIO()
        img = Image.open(london(faces_dir, "001")).convert(mode)
        img.save(buf, "TIFF")
        decoded = decode_image(buf.getvalue(), f"x-{mode}.tiff", 10**7)
        assert decoded.pixels.shape == (400, 400, 3) and decoded.pixels.dtype == np.uint8
