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


def _grey(faces_dir) -> np.ndarray:
    return np.asarray(Image.open(london(faces_dir, "001")).convert("L")).astype(np.float64)


def _bytes(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def test_high_bit_depth_photos_are_scaled_not_clipped(faces_dir, model, settings):
    """16-bit PNGs, 32-bit integer and float TIFFs used to decode as a white (or black) square."""
    import cv2

    grey = _grey(faces_dir)
    colour = cv2.imread(str(london(faces_dir, "001"))).astype(np.float64)
    made = {
        "grey16.png": _bytes(Image.fromarray((grey * 257).astype(np.uint16)), "PNG"),
        "colour16.png": cv2.imencode(".png", (colour * 257).astype(np.uint16))[1].tobytes(),
        "int32.tif": _bytes(Image.fromarray((grey * 65793).astype(np.int32)), "TIFF"),  # 24-bit values
        "float01.tif": _bytes(Image.fromarray((grey / 255).astype(np.float32)), "TIFF"),
        "float255.tif": _bytes(Image.fromarray(grey.astype(np.float32)), "TIFF"),
    }
    analyzer = FaceAnalyzer(model, settings)
    for name, data in made.items():
        image = decode_image(data, name, 10**7)
        assert image.pixels.dtype == np.uint8 and image.pixels.shape == (400, 400, 3)
        reference = colour if name.startswith("colour") else np.repeat(grey[:, :, None], 3, axis=2)
        assert np.abs(image.pixels - reference).mean() < 1.5, name
        if name in ("grey16.png", "int32.tif"):
            assert len(analyzer.analyze(image)) == 1, name


def test_transparent_parts_are_laid_on_grey_and_an_invisible_photo_is_refused(faces_dir):
    rgba = np.asarray(Image.open(london(faces_dir, "001")).convert("RGBA")).copy()
    rgba[:, :200, 3] = 0  # the left half invisible
    image = decode_image(_bytes(Image.fromarray(rgba), "PNG"), "half.png", 10**7)
    assert (image.pixels[:, :200] == 127).all()
    assert (image.pixels[:, 200:] == np.asarray(rgba)[:, 200:, 2::-1]).all()
    rgba[:, :, 3] = 0
    with pytest.raises(NotAnImage, match="clear.png: fully transparent, no visible pixels"):
        decode_image(_bytes(Image.fromarray(rgba), "PNG"), "clear.png", 10**7)


def test_a_file_of_several_images_is_refused(faces_dir):
    face = Image.open(london(faces_dir, "001")).convert("RGB")
    for fmt, name in (("TIFF", "pages.tif"), ("PNG", "frames.png"), ("WEBP", "frames.webp")):
        data = _bytes(face, fmt, save_all=True, append_images=[face.rotate(90), face.rotate(180)])
        with pytest.raises(UnsupportedFormat, match=f"{name}: several images in one {fmt} file"):
            decode_image(data, name, 10**7)


def _tiff_pages(pages: int) -> bytes:
    """A TIFF of ``pages`` 16 x 16 grey pages that share one strip: 114 bytes a page."""
    import struct

    entries = [(256, 3, 16), (257, 3, 16), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1)]
    entries += [(278, 3, 16), (279, 4, 256)]
    size = 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + 256) + bytes(256))
    for i in range(pages):
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1)
            out += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<I", 8 + 256 + (i + 1) * size if i < pages - 1 else 0)
    return bytes(out)


def test_a_tiff_of_a_hundred_thousand_pages_is_refused_at_its_second(monkeypatch):
    """Counting the pages walked all of them first, in a time that grows with their square: minutes for
    11 MB, hours for a file under the size limit, with every other decode of the process waiting."""
    from PIL import TiffImagePlugin

    read = []
    real = TiffImagePlugin.TiffImageFile._seek
    monkeypatch.setattr(
        TiffImagePlugin.TiffImageFile, "_seek", lambda self, frame: read.append(frame) or real(self, frame)
    )
    with pytest.raises(UnsupportedFormat, match="many.tif: several images in one TIFF file"):
        decode_image(_tiff_pages(100_000), "many.tif", 10**7)
    assert max(read) <= 1  # the first page, and a look for the second
    assert decode_image(_tiff_pages(1), "one.tif", 10**7).width == 16


def test_a_jpeg_of_very_many_scans_is_refused_before_decoding(faces_dir):
    """Each scan of a progressive JPEG is decoded over the whole image: 100,000 tiny scans took minutes."""
    from nomina.imaging import MAX_JPEG_SCANS

    photo = _bytes(Image.open(london(faces_dir, "001")), "JPEG", progressive=True)
    assert decode_image(photo, "progressive.jpg", 10**7).width == 400  # about 10 scans: decoded
    start = photo.rindex(b"\xff\xda")
    last_scan = photo[start : photo.rindex(b"\xff\xd9")]
    bomb = photo[: photo.rindex(b"\xff\xd9")] + last_scan * MAX_JPEG_SCANS + b"\xff\xd9"
    with pytest.raises(NotAnImage, match=r"^bomb.jpg: a JPEG of \d+ scans \(at most 256 are decoded"):
        decode_image(bomb, "bomb.jpg", 10**7)


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with the size in its frame header (SOF0) changed, its data left as it is."""
    at = jpeg.index(b"\xff\xc0") + 5  # marker, length (2), precision (1): then height and width
    return jpeg[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 4 :]


def test_a_jpeg_whose_data_was_cut_or_damaged_is_refused_though_its_end_marker_is_there(faces_dir, capfd):
    good = london(faces_dir, "004").read_bytes()
    damaged = {f"cut at {share}%": good[: len(good) * share // 100] + b"\xff\xd9" for share in (30, 50, 80, 95)}
    damaged["frame header claims 7000 x 7000"] = _with_size(good, 7000, 7000)
    damaged["data with unread bytes before its end"] = good[:-2] + bytes(range(1, 120)) + b"\xff\xd9"
    capfd.readouterr()
    for what, data in damaged.items():
        with pytest.raises(NotAnImage, match=r"^photo\.jpg: damaged or truncated image \(Corrupt JPEG data: "):
            decode_image(data, "photo.jpg", 10**8)
            pytest.fail(f"{what}: decoded")
    assert capfd.readouterr() == ("", ""), "libjpeg's warnings stay out of the terminal"
    # what cameras and editors do to a sound JPEG is not damage: a few bytes before the end marker, data after it
    for sound in (good, good[:-2] + bytes(3) + b"\xff\xd9", good + b"a thumbnail or a trailer"):
        assert decode_image(sound, "photo.jpg", 10**8).pixels.shape == (400, 400, 3)


def test_a_jpeg_carrying_a_second_image_is_read_as_its_first(faces_dir):
    """Phones write HDR photos as MPO: the photo, then its gain map."""
    face = Image.open(london(faces_dir, "001"))
    data = _bytes(face, "MPO", save_all=True, append_images=[face.resize((100, 100))])
    image = decode_image(data, "hdr.jpg", 10**7)
    plain = decode_image(_bytes(face, "JPEG"), "plain.jpg", 10**7)
    assert image.format == "MPO" and (image.width, image.height) == (400, 400)
    assert np.abs(image.pixels.astype(int) - plain.pixels.astype(int)).mean() < 1


def test_pillow_logging_an_error_prints_nothing_beside_the_one_line_message(tmp_path):
    """Pillow logs some damage (an impossible samples-per-pixel tag) before refusing the file; Python would print
    that on standard error beside Nomina's message. (In a process of its own: pytest catches log records.)"""
    import struct
    import subprocess
    import sys

    data = bytearray(_bytes(Image.new("RGB", (64, 64), (120, 100, 90)), "TIFF"))
    start = struct.unpack("<I", data[4:8])[0]
    for k in range(struct.unpack("<H", data[start : start + 2])[0]):
        entry = start + 2 + 12 * k
        if struct.unpack("<H", data[entry : entry + 2])[0] == 277:  # SamplesPerPixel
            data[entry + 8 : entry + 10] = struct.pack("<H", 40707)
    (tmp_path / "spp.tif").write_bytes(data)
    script = (
        "import sys\nfrom nomina.errors import NotAnImage\nfrom nomina.imaging import decode_image\n"
        "try:\n    decode_image(open(sys.argv[1], 'rb').read(), 'spp.tif', 10**7)\n"
        "except NotAnImage as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "spp.tif")], capture_output=True, text=True)
    assert done.stdout.startswith("spp.tif: ") and done.stderr == ""


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_png_chunks_must_match_their_crc_and_end(faces_dir):
    import struct

    data = _bytes(Image.open(london(faces_dir, "001")), "PNG")
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    with pytest.raises(NotAnImage, match=r"x.png: damaged image \(PNG chunk IDAT at byte \d+ fails its CRC check"):
        decode_image(_flip(data, idat + 4 + length), "x.png", 10**7)  # the CRC itself
    with pytest.raises(NotAnImage, match="x.png: damaged image"):
        decode_image(_flip(data, idat + 40), "x.png", 10**7)  # a byte of the compressed pixels
    with pytest.raises(NotAnImage, match="x.png: damaged image"):
        decode_image(_flip(data, 20), "x.png", 10**7)  # the header's width
    with pytest.raises(NotAnImage, match="x.png: damaged or truncated image"):
        decode_image(data[: data.index(b"IEND") - 4], "x.png", 10**7)
    assert decode_image(data + b"trailing bytes", "x.png", 10**7).width == 400  # after IEND: ignored


def test_pillow_warnings_never_leak(faces_dir):
    """Pillow's warnings about metadata are ignored; its decompression-bomb warning is an error."""
    import struct
    import warnings
    import zlib

    exif = Image.Exif()
    exif[0x010E] = "A" * 100  # a description stored outside its tag...
    data = bytearray(_bytes(Image.open(london(faces_dir, "001")), "JPEG", exif=exif))
    tiff = data.index(b"Exif\0\0") + 6
    order = "<" if data[tiff : tiff + 2] == b"II" else ">"
    entry = data.index(struct.pack(f"{order}HH", 0x010E, 2), tiff)  # ...whose length is then made to run
    data[entry + 4 : entry + 8] = struct.pack(f"{order}I", 5000)  # past the end of the file
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert decode_image(bytes(data), "exif.jpg", 10**7).width == 400
    assert caught == []
    assert warnings.filters == filters  # the process's filters are as they were

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 10_000, 10_000, 1, 0, 0, 0, 0)  # over Pillow's own warning limit
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge, match="bomb.png: image too large"):
        decode_image(bomb, "bomb.png", 10**9)


def test_decoding_in_several_threads_at_once_gives_the_same_pixels_and_leaks_no_warning(faces_dir):
    """Workers decode at once: only the part of decoding that can warn takes turns, the copying out of the
    pixels does not, and nothing of Pillow's warnings or of the process's filters changes."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    photo = Image.open(london(faces_dir, "001"))
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: the orientation fix transposes
    palette = photo.convert("P")
    files = [
        _bytes(photo, "JPEG"),
        _bytes(photo, "JPEG", exif=exif),
        _bytes(palette, "PNG", transparency=0),  # Pillow warns when such an image is converted
        _bytes(photo.convert("I;16"), "PNG"),
    ]
    alone = [decode_image(d, "x", 10**7).pixels for d in files]
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(4) as pool:
        warnings.simplefilter("always")
        together = list(pool.map(lambda k: decode_image(files[k % 4], "x", 10**7).pixels, range(48)))
    assert caught == []
    assert warnings.filters == filters
    assert all(np.array_equal(pixels, alone[k % 4]) for k, pixels in enumerate(together))
    assert alone[1].shape == (400, 400, 3) and not np.array_equal(alone[1], alone[0])


def test_a_photo_too_thin_for_a_face_is_refused_and_never_crashes_the_detector(model, settings):
    for size in ((49_000, 1), (1, 49_000), (15, 400)):
        data = _bytes(Image.fromarray(np.full(size[::-1], 128, np.uint8)), "PNG")
        with pytest.raises(NotAnImage, match=rf"x.png: {size[0]}x{size[1]} pixels, too small to show a face"):
            decode_image(data, "x.png", 10**7)
    analyzer = FaceAnalyzer(model, settings)
    assert analyzer.detect(np.full((2, 5000, 3), 128, np.uint8), any_orientation=True) == []


@pytest.mark.parametrize("seed", [151, 1510, 2657])
def test_a_photo_with_a_damaged_exif_block_is_still_read(faces_dir, settings, seed):
    """Random bytes in the EXIF block of a turned photo made Pillow fail when it rewrote the block while
    turning the photo upright (TypeError, struct.error, AttributeError); the pixels are the photo all the same.
    Damaged this way, the block may still say the photo is turned (then it is turned upright) or not."""
    import random

    small = Image.open(london(faces_dir, "002")).convert("RGB").resize((64, 64))
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x9003] = 6, "Camera", "2020:01:01 00:00:00"
    buf = io.BytesIO()
    small.save(buf, "JPEG", exif=exif.tobytes())
    data = bytearray(buf.getvalue())
    at = data.find(b"MM\x00*") if data.find(b"MM\x00*") >= 0 else data.find(b"II*\x00")
    rng = random.Random(f"exif-JPEG-{seed}")
    for _ in range(rng.randint(1, 4)):
        data[at + rng.randrange(60)] = rng.randrange(256)
    image = decode_image(bytes(data), "damaged-exif.jpg", settings.max_pixels)
    assert image.pixels.shape == (64, 64, 3)
