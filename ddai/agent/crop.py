"""Image sizing for the model and the crop tool: a bbox on the image the model SAW -> a crop of the page.

Every image shown to the model is a ``View``: the original page file, the region of that page
it shows (in original pixels) and the size it was shown at. A bbox is mapped through the
view it was drawn on. The reference agent always mapped onto the whole page using the size
of the last shown image, so a crop right after a crop landed on the wrong region; mapping
through the view's own region fixes that, and crops of crops compose correctly.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# Qwen2.5-VL searcher defaults of the reference agent.
MAX_PIXELS = 512 * 28 * 28
MIN_PIXELS = 256 * 28 * 28


def fit_pixels(img: Image.Image, max_pixels: int = MAX_PIXELS, min_pixels: int = MIN_PIXELS) -> Image.Image:
    """Rescale by one factor so the area lies in [min_pixels, max_pixels] (aspect kept)."""
    w, h = img.size
    area = w * h
    if area > max_pixels:
        factor = math.sqrt(max_pixels / area)
    elif area < min_pixels:
        factor = math.sqrt(min_pixels / area)
    else:
        factor = 1.0
    if factor != 1.0:
        img = img.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.Resampling.BICUBIC)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


@dataclass(frozen=True)
class View:
    """An image as the model saw it: which page, which region of it, at what size."""

    page_path: str  # the original page file
    region: tuple[float, float, float, float]  # x1, y1, x2, y2 in original page pixels
    shown_size: tuple[int, int]  # (width, height) of the image given to the model
    image_path: str  # the file holding exactly what was shown's source (page or saved crop)

    def to_page(self, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Map a bbox in shown pixels to original page pixels through this view's region."""
        x1, y1, x2, y2 = bbox
        rx1, ry1, rx2, ry2 = self.region
        sx = (rx2 - rx1) / self.shown_size[0]
        sy = (ry2 - ry1) / self.shown_size[1]
        return (rx1 + x1 * sx, ry1 + y1 * sy, rx1 + x2 * sx, ry1 + y2 * sy)


class CropError(ValueError):
    """A bbox that cannot be cropped; the message is shown to the model."""


def open_page(path: str, max_pixels: int = MAX_PIXELS, min_pixels: int = MIN_PIXELS) -> tuple[Image.Image, View]:
    """Load a page and return (image to show, its view)."""
    with Image.open(path) as raw:
        raw.load()
        w, h = raw.size
        shown = fit_pixels(raw, max_pixels, min_pixels)
    return shown, View(page_path=path, region=(0.0, 0.0, float(w), float(h)), shown_size=shown.size, image_path=path)


def crop_view(
    view: View,
    bbox: tuple[float, float, float, float],
    crops_dir: str | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    min_pixels: int = MIN_PIXELS,
    min_side: int = 4,
) -> tuple[Image.Image, View]:
    """Crop the ORIGINAL page at ``bbox`` (drawn on ``view``); return (image to show, new view).

    Validation, in the shown image's pixels: 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height,
    and the region on the page at least ``min_side`` pixels each way. The crop is saved to
    ``crops_dir`` (when given) so the frozen generator can be shown it too.
    """
    x1, y1, x2, y2 = bbox
    w, h = view.shown_size
    if not (0 <= x1 < x2 and 0 <= y1 < y2):
        raise CropError(f"need 0 <= x1 < x2 and 0 <= y1 < y2, got {list(bbox)}")
    if x2 > w or y2 > h:
        raise CropError(f"bbox {list(bbox)} exceeds the image size {w}x{h}")
    px1, py1, px2, py2 = view.to_page(bbox)
    with Image.open(view.page_path) as raw:
        raw.load()
        W, H = raw.size
        box = (
            max(0, math.floor(px1)),
            max(0, math.floor(py1)),
            min(W, math.ceil(px2)),
            min(H, math.ceil(py2)),
        )
        if box[2] - box[0] < min_side or box[3] - box[1] < min_side:
            raise CropError(f"the region is too small ({box[2] - box[0]}x{box[3] - box[1]} page pixels)")
        cropped = raw.crop(box)
        if cropped.mode != "RGB":
            cropped = cropped.convert("RGB")
    shown = fit_pixels(cropped, max_pixels, min_pixels)
    image_path = view.page_path
    if crops_dir:
        Path(crops_dir).mkdir(parents=True, exist_ok=True)
        image_path = str(Path(crops_dir) / f"{uuid.uuid4().hex}.jpg")
        cropped.save(image_path, quality=92)
    new_view = View(page_path=view.page_path, region=tuple(float(v) for v in box), shown_size=shown.size,  # type: ignore[arg-type]
                    image_path=image_path)
    return shown, new_view
