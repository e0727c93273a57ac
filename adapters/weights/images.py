"""Image files to CLIP's pixel input, as transformers' CLIPImageProcessor prepares them.

The steps and their order are those of transformers' PIL backend (`CLIPImageProcessorPil`,
which transformers runs when torchvision is absent): transparency composited onto white, RGB;
the shortest side resized to `size.shortest_edge` (the long side truncated to an int) with
PIL's resampling filter; a centre crop (zero-padded where the image is smaller); pixels times
`rescale_factor` in float64, then float32; per-channel (x - mean) / std. All of it reads
preprocessor_config.json, with CLIP's published values where a key is absent.

Images are decoded as data: Pillow refuses what it cannot read, and images larger than
`MAX_PIXELS` are refused before their pixels are decoded (a small PNG can claim a huge canvas).
EXIF orientation is not applied, as transformers does not apply it.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from domain.errors import InvalidInput
from domain.ops import Array

__all__ = ["MAX_PIXELS", "ClipImageProcessor", "read_clip_image_processor"]

MAX_PIXELS = 50_000_000  # ~7000x7000: beyond any photo a client means to embed at 224x224

# transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = 3


@dataclass(frozen=True, slots=True)
class ClipImageProcessor:
    shortest_edge: int | None  # resize the short side to this, keeping the aspect ratio
    resize_to: tuple[int, int] | None  # or resize to exactly (height, width)
    resample: Image.Resampling
    crop: tuple[int, int] | None  # (height, width); None: no centre crop
    rescale_factor: float | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    def prepare(self, data: bytes) -> Array | InvalidInput:
        image = _decode(data)
        if isinstance(image, InvalidInput):
            return image
        image = _to_rgb(image)
        size = self._target_size(image.height, image.width)
        if size is not None:
            image = image.resize((size[1], size[0]), resample=self.resample)
        pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)  # [C,H,W]
        if self.crop is not None:
            pixels = _center_crop(pixels, self.crop)
        values = pixels.astype(np.float32)
        if self.rescale_factor is not None:
            values = (pixels.astype(np.float64) * self.rescale_factor).astype(np.float32)
        if self.mean is not None and self.std is not None:
            mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
            std = np.asarray(self.std, dtype=np.float32)[:, None, None]
            values = (values - mean) / std
        return np.ascontiguousarray(values, dtype=np.float32)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every prepared image, where the settings fix it."""
        return self.crop or self.resize_to

    def _target_size(self, height: int, width: int) -> tuple[int, int] | None:
        if self.resize_to is not None:
            return self.resize_to
        if self.shortest_edge is None:
            return None
        edge = self.shortest_edge
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(edge * long / short)
        return (new_long, edge) if width <= height else (edge, new_long)


def _decode(data: bytes) -> Image.Image | InvalidInput:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                return InvalidInput(
                    f"the image is {image.width}x{image.height} pixels; "
                    f"at most {MAX_PIXELS} pixels are accepted"
                )
            image.load()
    except UnidentifiedImageError:
        return InvalidInput("the data URL does not hold an image this server can decode")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        return InvalidInput(f"the image could not be decoded: {exc}")
    except Image.DecompressionBombWarning as exc:
        return InvalidInput(f"the image could not be decoded: {exc}")
    if image.width < 1 or image.height < 1:
        return InvalidInput("the image has no pixels")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """transformers' convert_to_rgb: transparency goes onto white, not black."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _center_crop(pixels: np.ndarray[Any, Any], crop: tuple[int, int]) -> np.ndarray[Any, Any]:
    """transformers' center_crop: an image smaller than the crop is zero-padded around it."""
    _, height, width = pixels.shape
    crop_h, crop_w = crop
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if top >= 0 and left >= 0:
        return pixels[:, top : top + crop_h, left : left + crop_w]
    new_h, new_w = max(crop_h, height), max(crop_w, width)
    padded = np.zeros((pixels.shape[0], new_h, new_w), dtype=pixels.dtype)
    pad_top, pad_left = math.ceil((new_h - height) / 2), math.ceil((new_w - width) / 2)
    padded[:, pad_top : pad_top + height, pad_left : pad_left + width] = pixels
    top, left = top + pad_top, left + pad_left
    return padded[
        :, max(0, top) : min(new_h, top + crop_h), max(0, left) : min(new_w, left + crop_w)
    ]


def _size(raw: object, *, square: bool) -> dict[str, int]:
    """A size setting as transformers normalises it: an int is a shortest edge or a square."""
    if isinstance(raw, int):
        return {"height": raw, "width": raw} if square else {"shortest_edge": raw}
    if isinstance(raw, dict):
        return {str(k): int(v) for k, v in raw.items() if v is not None}
    msg = f"preprocessor_config.json has a size setting {raw!r} this server cannot read"
    raise ValueError(msg)


def read_clip_image_processor(folder: Path, image_size: int) -> ClipImageProcessor:
    """preprocessor_config.json's settings, CLIP's defaults where a key (or the file) is absent."""
    path = folder / "preprocessor_config.json"
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    size = _size(raw.get("size", image_size), square=False) if raw.get("do_resize", True) else {}
    crop = (
        _size(raw.get("crop_size", image_size), square=True)
        if raw.get("do_center_crop", True)
        else None
    )
    normalize = raw.get("do_normalize", True)
    processor = ClipImageProcessor(
        shortest_edge=size.get("shortest_edge"),
        resize_to=(size["height"], size["width"]) if "height" in size and "width" in size else None,
        resample=Image.Resampling(int(raw.get("resample", _BICUBIC))),
        crop=None if crop is None else (crop["height"], crop["width"]),
        rescale_factor=(
            float(raw.get("rescale_factor", 1 / 255)) if raw.get("do_rescale", True) else None
        ),
        mean=tuple(raw.get("image_mean", _CLIP_MEAN)) if normalize else None,
        std=tuple(raw.get("image_std", _CLIP_STD)) if normalize else None,
    )
    if processor.output_size != (image_size, image_size):
        msg = (
            f"preprocessor_config.json prepares {processor.output_size} images; "
            f"the vision tower reads {image_size}x{image_size}"
        )
        raise ValueError(msg)
    return processor
