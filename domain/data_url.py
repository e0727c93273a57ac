"""Images inside text inputs: an item that is a `data:image/...;base64,...` URL is an image.

Both APIs carry inputs as strings, so an image travels as a data URL (RFC 2397) in `input`,
the way OpenAI-style clients already send images elsewhere. Only the image media types count:
any other string, `data:text/plain,...` included, is text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from domain.errors import InvalidInput

__all__ = ["ImageData", "parse_image_data_url"]

_PREFIX = "data:image/"
# media type, then parameters; the last one must be `base64`
_HEADER = re.compile(r"data:(image/[\w.+-]+)((?:;[\w.+-]+(?:=[^;,]*)?)*),", re.ASCII)


@dataclass(frozen=True, slots=True)
class ImageData:
    media_type: str  # what the sender says; the decoder trusts the bytes, not this
    data: bytes


def parse_image_data_url(item: str, index: int) -> ImageData | InvalidInput | None:
    """The image an input item carries; None when the item is text."""
    if item[: len(_PREFIX)].lower() != _PREFIX:
        return None
    header = _HEADER.match(item[:512].lower())
    if header is None:
        return InvalidInput(f"input {index} is not a valid image data URL")
    if not header.group(2).endswith(";base64"):
        return InvalidInput(f"input {index}: image data URLs must be base64-encoded (;base64,)")
    payload = "".join(item[header.end() :].split())  # MIME encoders wrap lines at 76 chars
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return InvalidInput(f"input {index}: the image data URL's base64 payload is malformed")
    if not data:
        return InvalidInput(f"input {index}: the image data URL holds no bytes")
    return ImageData(header.group(1), data)
