"""Ink polarity decided per image (data_prep.ink: ink_is_light / dark_ink_on_light) on real files."""

from __future__ import annotations

import glob
import io
import tarfile

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from data_prep.ink import dark_ink_on_light, ink_is_light


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_crohme_bitmaps_are_inverted_and_their_black_on_white_copies_are_not(shared_data):
    """All 986 CROHME 2014 bitmaps (white on black) are light ink; their inverted JPEG copies,
    as in Uni-MuMER's data.zip, are not; after dark_ink_on_light every one is dark on light."""
    light, copies, copies_light, means = 0, 0, 0, []
    with tarfile.open(shared_data / "crohme" / "crohme2014_test_images.tar.gz") as archive:
        for member in archive:
            if not member.name.endswith(".bmp"):
                continue
            bitmap = Image.open(io.BytesIO(archive.extractfile(member).read()))
            light += ink_is_light(bitmap)
            if len(means) % 3 == 0:  # a third of them as black-on-white JPEGs (encoding is the cost)
                copies += 1
                copies_light += ink_is_light(_jpeg(ImageOps.invert(bitmap.convert("L"))))
            fixed, inverted = dark_ink_on_light(bitmap)
            means.append(np.asarray(fixed).mean())
    assert (light, copies, copies_light) == (986, 329, 0)
    assert min(means) > 200  # mostly white pages


def test_photos_and_renders_are_left_alone(shared_data):
    photos = sorted(glob.glob(str(shared_data / "hme100k" / "train" / "train_images" / "*.jpg")))
    pages = sorted(glob.glob(str(shared_data / "im2latex" / "im2markup_sample" / "images" / "*.png")))[:20]
    assert len(photos) == 346 and len(pages) == 20
    assert not any(ink_is_light(Image.open(p)) for p in photos)  # dim grey pages included
    assert not any(ink_is_light(Image.open(p)) for p in pages)  # transparent palette pages


def test_frames_padding_and_forced_modes():
    page = Image.new("L", (300, 100), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle([0, 0, 299, 99], outline=0, width=12)  # a dark frame around a light page
    draw.line([(60, 50), (240, 50)], fill=0, width=3)
    assert not ink_is_light(page) and ink_is_light(ImageOps.invert(page))
    assert not ink_is_light(Image.new("L", (40, 40), 255)) and ink_is_light(Image.new("L", (40, 40), 0))
    assert dark_ink_on_light(page, True)[1] and not dark_ink_on_light(ImageOps.invert(page), False)[1]
    with pytest.raises(ValueError, match="invert must be auto, true or false"):
        dark_ink_on_light(page, "yes")


def test_one_vocabulary_on_the_command_line_and_in_recipes():
    """``--invert`` (predict, client, app) and the reader option take the same three values."""
    from data_prep.ink import INVERT_CHOICES, check_invert_mode, parse_invert

    assert [parse_invert(word) for word in INVERT_CHOICES] == ["auto", True, False]
    assert parse_invert("TRUE") is True and parse_invert(False) is False
    for word in ("yes", "no", "1", ""):
        with pytest.raises(ValueError, match="invert must be auto, true or false"):
            parse_invert(word)
    assert check_invert_mode("auto") == "auto" and check_invert_mode(True) is True
    with pytest.raises(ValueError, match="invert must be auto, true or false"):
        check_invert_mode(1)
