"""data_prep.images: confinement to the dataset root, pickle refusal, full decoding, ink helpers."""

from __future__ import annotations

import io
import os
import pickle

import pytest
from PIL import Image

from data_prep.images import (
    DatasetRoot,
    ImageError,
    crop_to_ink,
    invert,
    load_image,
    on_white,
    read_image,
)
from data_prep.ink import ink_is_light


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    image = Image.new("L", (40, 30), 255)
    image.paste(0, (10, 10, 20, 20))
    (folder / "ok.png").write_bytes(_png_bytes(image))
    return folder


def test_loads_and_fully_decodes(root):
    image = load_image(root / "ok.png", root)
    assert image.size == (40, 30)
    assert image.getpixel((15, 15)) == 0
    assert load_image("ok.png", root).size == (40, 30)  # relative to the root


def test_reasons(root, tmp_path):
    with pytest.raises(ImageError) as err:
        load_image(root / "absent.png", root)
    assert err.value.reason == "missing_image"

    data = (root / "ok.png").read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as err:
        load_image(root / "cut.png", root)
    assert err.value.reason == "unreadable_image"

    (root / "text.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError) as err:
        load_image(root / "text.png", root)
    assert err.value.reason == "unreadable_image"


def test_refuses_pickles_by_suffix_and_by_magic(root):
    payload = pickle.dumps({"image": b"x"}, protocol=4)
    (root / "images.pkl").write_bytes(payload)
    (root / "disguised.bmp").write_bytes(payload)
    for name in ("images.pkl", "disguised.bmp"):
        with pytest.raises(ImageError) as err:
            load_image(root / name, root)
        assert err.value.reason == "pickle_refused"


def test_refuses_paths_escaping_the_root(root, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes((root / "ok.png").read_bytes())
    with pytest.raises(ImageError) as err:
        load_image(root / ".." / "secret.png", root)
    assert err.value.reason == "path_escapes_root"
    os.symlink(outside, root / "link.png")
    with pytest.raises(ImageError) as err:
        load_image(root / "link.png", root)
    assert err.value.reason == "path_escapes_root"
    os.symlink(root / "ok.png", root / "inner_link.png")  # a link that stays inside is fine
    assert load_image(root / "inner_link.png", root).size == (40, 30)


def test_invert_and_flatten():
    white_on_black = Image.new("L", (8, 8), 0)
    white_on_black.putpixel((2, 2), 255)
    inverted = invert(white_on_black)
    assert inverted.getpixel((0, 0)) == 255 and inverted.getpixel((2, 2)) == 0
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert on_white(transparent).getpixel((0, 0)) == (255, 255, 255)


def test_ink_is_light_judges_the_page_after_flattening_on_white():
    white_on_black = Image.new("L", (20, 10), 0)
    white_on_black.paste(255, (2, 2, 6, 6))
    assert ink_is_light(white_on_black)
    assert not ink_is_light(invert(white_on_black))
    # Black ink on a transparent page is a light page once composited on white.
    transparent = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    transparent.putpixel((1, 1), (0, 0, 0, 255))
    assert not ink_is_light(transparent)


def test_read_image_outside_a_dataset_root(tmp_path):
    Image.new("L", (12, 7), 0).save(tmp_path / "user.png")
    assert read_image(tmp_path / "user.png").size == (12, 7)
    with pytest.raises(ImageError) as missing:
        read_image(tmp_path / "absent.png")
    assert missing.value.reason == "missing_image"
    with pytest.raises(ImageError) as folder:
        read_image(tmp_path)
    assert folder.value.reason == "unreadable_image" and "directory" in folder.value.detail


def test_crop_to_ink_on_a_transparent_palette_page():
    # im2latex pages: palette PNG, transparent background, dark ink somewhere on a large page.
    page = Image.new("RGBA", (300, 400), (0, 0, 0, 0))
    page.paste((0, 0, 0, 255), (100, 200, 150, 220))
    palette_page = Image.open(io.BytesIO(_png_bytes(page.convert("P", palette=Image.Palette.ADAPTIVE))))
    palette_page.load()
    cropped = crop_to_ink(palette_page, margin=8)
    assert cropped is not None and cropped.mode in ("L", "RGB")
    assert cropped.size == (50 + 16, 20 + 16)
    assert cropped.convert("L").getpixel((0, 0)) == 255
    assert cropped.convert("L").getpixel((20, 15)) == 0
    assert crop_to_ink(Image.new("L", (50, 50), 255)) is None


def test_decodes_each_file_once_and_still_rejects_truncated_files(root, monkeypatch):
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    assert load_image(root / "ok.png", root).getpixel((15, 15)) == 0
    assert len(opened) == 1  # no separate verify() pass
    bmp = io.BytesIO()
    Image.new("L", (64, 64), 0).save(bmp, format="BMP")
    (root / "cut.bmp").write_bytes(bmp.getvalue()[:-500])
    with pytest.raises(ImageError) as err:
        load_image("cut.bmp", root)
    assert err.value.reason == "unreadable_image"


def test_dataset_root_confines_every_kind_of_path(root):
    images = DatasetRoot(root)
    (root / "sub").mkdir()
    (root / "sub" / "deep.png").write_bytes((root / "ok.png").read_bytes())
    assert images.load_image("sub/deep.png").size == (40, 30)  # below the root, not directly in it
    assert images.load_image(root / "ok.png").size == (40, 30)
    assert images.load_image(images.real / "ok.png").size == (40, 30)
    with pytest.raises(ImageError) as err:
        images.load_image("sub")
    assert err.value.reason == "unreadable_image" and "directory" in err.value.detail
    with pytest.raises(ImageError) as err:
        images.load_image("sub/../../root/../secret.png")
    assert err.value.reason == "path_escapes_root"
    # A link inside the root whose target is a pickle is refused by the target's name.
    (root / "data.pkl").write_bytes(pickle.dumps([1], protocol=4))
    os.symlink(root / "data.pkl", root / "image.png")
    with pytest.raises(ImageError) as err:
        images.load_image("image.png")
    assert err.value.reason == "pickle_refused"
