"""Crop: a bbox on the SHOWN image maps onto the original page, also for a crop of a crop.

Pages of the generated corpus have four coloured quadrants: red top-left, green top-right,
blue bottom-left, yellow bottom-right, so the colour of a crop shows where it came from.
"""

import pytest
from PIL import Image

from ddai.agent.crop import (
    MAX_PIXELS,
    MIN_PIXELS,
    CropError,
    crop_view,
    fit_pixels,
    open_page,
)

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)


def _mean(img):
    from PIL import ImageStat

    return tuple(ImageStat.Stat(img.convert("RGB")).mean)


def _close(color, target, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(color, target))


def test_fit_pixels_keeps_area_in_bounds():
    assert fit_pixels(Image.new("RGB", (2000, 1500))).size[0] * fit_pixels(Image.new("RGB", (2000, 1500))).size[1] <= MAX_PIXELS
    small = fit_pixels(Image.new("RGB", (100, 80)))
    assert small.size[0] * small.size[1] >= MIN_PIXELS * 0.98
    assert abs(small.size[0] / small.size[1] - 1.25) < 0.02


def test_bbox_on_the_shown_page_maps_to_the_original(corpus, tmp_path):
    shown, view = open_page(str(corpus / "2_1.jpg"))
    assert view.region == (0, 0, 1000, 750) and view.shown_size == shown.size != (1000, 750)
    w, h = shown.size
    img, crop = crop_view(view, (w * 0.05, h * 0.05, w * 0.45, h * 0.45), str(tmp_path))
    assert _close(_mean(img), RED)
    assert crop.region == pytest.approx((50, 37, 450, 338), abs=1)
    assert crop.image_path.startswith(str(tmp_path)) and Image.open(crop.image_path).size == (400, 301)


def test_crop_after_crop_maps_through_the_previous_crop(corpus):
    shown, page = open_page(str(corpus / "2_1.jpg"))
    w, h = shown.size
    _, top_view = crop_view(page, (0, 0, w, h * 0.5 - 1))  # top half: red | green
    tw, th = top_view.shown_size
    right, right_view = crop_view(top_view, (tw * 0.55, th * 0.1, tw * 0.95, th * 0.9))  # right part of the crop
    assert _close(_mean(right), GREEN)
    rx1, _, _, ry2 = right_view.region
    assert rx1 >= 500 and ry2 <= 375  # inside the green quadrant of the ORIGINAL page
    # The reference's mapping (onto the whole page with the crop's size) would land in the yellow/bottom area:
    buggy = (1000 * tw * 0.55 / tw, 750 * th * 0.1 / th, 1000 * tw * 0.95 / tw, 750 * th * 0.9 / th)
    assert buggy[3] > 375  # i.e. it spans into the bottom half, which this implementation avoids


@pytest.mark.parametrize(
    "bbox, needle",
    [((10, 10, 5, 20), "x1 < x2"), ((0, 0, 10_000, 10), "exceeds"), ((1, 1, 1.5, 1.5), "too small")],
)
def test_invalid_boxes_are_rejected_with_a_reason(corpus, bbox, needle):
    _, view = open_page(str(corpus / "2_1.jpg"))
    with pytest.raises(CropError, match=needle):
        crop_view(view, bbox)
