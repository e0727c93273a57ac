"""CLIP on the numpy engine against transformers' CLIPModel, in process and through both APIs.

Each case is a small random CLIPModel written by transformers (tests/model_factory_clip.py):
texts against `get_text_features` after transformers' CLIPTokenizer (padding, truncation at
77), images against `get_image_features` after transformers' PIL image processor
(`CLIPImageProcessorPil`, the CLIPImageProcessor transformers runs without torchvision) on
generated pictures: PNG and JPEG, odd sizes, RGBA, LA, greyscale, palette with transparency.
Through HTTP, the generated folder sits where the hub store keeps downloads, the server runs
offline, and texts and images travel together in one request as data URLs.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import httpx2
import numpy as np
import ollama
import openai
import pytest

from adapters.bootstrap import Settings, build_app
from adapters.engines.numpy_ref import NumpyEngine
from adapters.tokenizers.by_family import load_tokenizer
from application.batching import pad
from application.catalogue import CATALOGUE
from domain.errors import InvalidInput, ModelUnavailable
from tests.corpus import VARIED_TEXTS
from tests.model_factory_clip import (
    EosConvention,
    reference_clip,
    reference_image_processor,
    reference_tokenizer,
    write_clip_model,
)
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.tolerances import MAX_ABS_DIFF

if TYPE_CHECKING:
    from pathlib import Path

    from domain.ports import Encoder, ImageEncoder, Tokenizer

SPEC = next(s for s in CATALOGUE if s.name == "clip-vit-base-patch32")
TEXTS = [
    *VARIED_TEXTS,
    "<|endoftext|> in the middle <|startoftext|>",  # special tokens typed as text
    "A   Photo\tOF a\n\nDOG",  # CLIP folds whitespace runs and case
]


@dataclass(frozen=True)
class Picture:
    id: str
    width: int
    height: int
    mode: str
    format: str


PICTURES = [
    Picture("png-rgb-wide", 50, 37, "RGB", "PNG"),
    Picture("png-rgba-tall", 13, 90, "RGBA", "PNG"),
    Picture("jpeg-grey", 64, 64, "L", "JPEG"),
    Picture("jpeg-rgb-odd", 31, 29, "RGB", "JPEG"),
    Picture("png-palette-transparent", 45, 45, "P", "PNG"),
    Picture("png-grey-alpha-large", 300, 120, "LA", "PNG"),
    Picture("png-smaller-than-crop", 7, 5, "RGB", "PNG"),
]


def picture_bytes(picture: Picture, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "P": 3}[picture.mode]
    pixels = rng.integers(0, 256, (picture.height, picture.width, bands), dtype=np.uint8)
    pixels[: picture.height // 2] //= 3  # some structure, so crops and resizes matter
    if picture.mode == "P":
        image = Image.fromarray(pixels, "RGB").convert("P")
        image.info["transparency"] = 0
    elif bands == 1:
        image = Image.fromarray(pixels[:, :, 0], "L")
    else:
        image = Image.fromarray(pixels, picture.mode)
    out = io.BytesIO()
    image.save(out, picture.format)
    return out.getvalue()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- references -------------------------------------------------------------------------------


def reference_text(folder: Path, texts: list[str]) -> tuple[np.ndarray, list[list[int]]]:
    import torch

    tokens = reference_tokenizer(folder)(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out: Any = reference_clip(folder).get_text_features(**tokens)
    ids = [
        [i for i, m in zip(row, mask, strict=True) if m]
        for row, mask in zip(
            tokens["input_ids"].tolist(), tokens["attention_mask"].tolist(), strict=True
        )
    ]
    return getattr(out, "pooler_output", out).numpy(), ids


def reference_pixels(folder: Path, images: list[bytes]) -> np.ndarray:
    from PIL import Image

    processor = reference_image_processor(folder)
    opened: list[Image.Image] = [Image.open(io.BytesIO(data)) for data in images]
    pixels: np.ndarray = processor(opened, return_tensors="np")["pixel_values"]
    return pixels


def reference_images(folder: Path, images: list[bytes]) -> np.ndarray:
    import torch

    pixels = torch.from_numpy(reference_pixels(folder, images))
    with torch.no_grad():
        out: Any = reference_clip(folder).get_image_features(pixel_values=pixels)
    vectors: np.ndarray = getattr(out, "pooler_output", out).numpy()
    return vectors


# --- ours, in process ---------------------------------------------------------------------------


def load_ours(folder: Path) -> tuple[Tokenizer, Encoder]:
    tokenizer, encoder = load_tokenizer(SPEC, folder), NumpyEngine().load(SPEC, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    assert not isinstance(encoder, ModelUnavailable), encoder
    return tokenizer, encoder


def ours_text(folder: Path, texts: list[str]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    tokenizer, encoder = load_ours(folder)
    encoded = tokenizer.encode(texts)
    out = np.empty((len(texts), encoder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), 32):  # several padded batches, as the server runs them
        ids, mask = pad([e.ids for e in encoded[start : start + 32]])
        out[start : start + 32] = encoder.embed(ids, mask)
    return out, [e.ids for e in encoded]


def image_tower(folder: Path) -> ImageEncoder:
    _, encoder = load_ours(folder)
    assert encoder.images is not None
    return encoder.images


def prepared(tower: ImageEncoder, images: list[bytes]) -> np.ndarray:
    out = [tower.prepare(data) for data in images]
    assert all(isinstance(p, np.ndarray) for p in out), out
    return np.stack(out)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["first", "legacy"])
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both end-of-text conventions: the id named in config.json, and the largest id."""
    eos: EosConvention = request.param
    return write_clip_model(tmp_path_factory.mktemp(f"clip-{eos}"), eos=eos, shortest_edge=40)


def assert_close(ours: np.ndarray, reference: np.ndarray) -> None:
    diff = scaled_abs_diff(ours, reference)
    assert diff.max() < MAX_ABS_DIFF, f"worst row {int(diff.max(axis=1).argmax())}: {diff.max()}"
    cosine = (
        (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > 1 - MAX_ABS_DIFF


def test_token_ids_match_transformers(folder: Path) -> None:
    _, reference_ids = reference_text(folder, TEXTS)
    _, ours = ours_text(folder, TEXTS)
    mismatched = [
        n for n, (a, b) in enumerate(zip(ours, reference_ids, strict=True)) if list(a) != b
    ]
    assert not mismatched, [TEXTS[n] for n in mismatched[:3]]
    assert max(len(ids) for ids in ours) == 77  # some texts are cut at CLIP's context


def test_text_embeddings_match_transformers(folder: Path) -> None:
    reference, _ = reference_text(folder, TEXTS)
    ours, _ = ours_text(folder, TEXTS)
    assert_close(ours, reference)


def test_exact_gelu_towers_match_transformers(tmp_path: Path) -> None:
    folder = write_clip_model(tmp_path, hidden_act="gelu", seed=3)
    images = [picture_bytes(p) for p in PICTURES[:3]]
    assert_close(ours_text(folder, TEXTS[:40])[0], reference_text(folder, TEXTS[:40])[0])
    assert_close(
        image_tower(folder).embed(prepared(image_tower(folder), images)),
        reference_images(folder, images),
    )


@pytest.mark.parametrize("picture", PICTURES, ids=lambda p: p.id)
def test_pixels_equal_the_image_processor(folder: Path, picture: Picture) -> None:
    """Decoding, RGB, resize, crop, rescale and normalise as transformers does: exactly."""
    data = [picture_bytes(picture)]
    np.testing.assert_array_equal(
        prepared(image_tower(folder), data), reference_pixels(folder, data)
    )


def test_image_embeddings_match_transformers(folder: Path) -> None:
    images = [picture_bytes(p, seed=n) for n, p in enumerate(PICTURES)]
    tower = image_tower(folder)
    assert_close(tower.embed(prepared(tower, images)), reference_images(folder, images))


def test_a_checkpoint_without_vision_tower_serves_text_only(tmp_path: Path) -> None:
    folder = write_clip_model(tmp_path, text_only=True)
    _, encoder = load_ours(folder)
    assert encoder.images is None
    assert_close(ours_text(folder, TEXTS[:20])[0], reference_text(folder, TEXTS[:20])[0])


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"not an image at all", "does not hold an image"),
        (picture_bytes(PICTURES[0])[:300], "could not be decoded"),  # a PNG cut short
    ],
    ids=["no-image", "cut-png"],
)
def test_undecodable_bytes_are_invalid_input(folder: Path, data: bytes, needle: str) -> None:
    result = image_tower(folder).prepare(data)
    assert isinstance(result, InvalidInput)
    assert needle in result.message


def test_a_huge_canvas_is_refused_before_decoding(folder: Path) -> None:
    """A few kilobytes of PNG can claim 8000 x 8000 pixels."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, "PNG")
    result = image_tower(folder).prepare(out.getvalue())
    assert isinstance(result, InvalidInput)
    assert "at most" in result.message


# --- through both APIs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    home = tmp_path_factory.mktemp("home")
    folder = write_clip_model(home / "Embeddings" / SPEC.repo_id, seed=7, shortest_edge=40)
    return folder, build_app(Settings(home=home, offline=True, log_format="json"))


def _mixed_inputs() -> tuple[list[str], list[int], list[bytes]]:
    """Texts with images between them, in one request."""
    images = [picture_bytes(p, seed=n) for n, p in enumerate(PICTURES)]
    texts = TEXTS[:25]
    items: list[str] = []
    image_rows: list[int] = []
    for n, text in enumerate(texts):
        items.append(text)
        if n % 4 == 1 and images[len(image_rows) :]:
            image_rows.append(len(items))
            items.append(data_url(images[len(image_rows) - 1]))
    return items, image_rows, images[: len(image_rows)]


def _expected(folder: Path) -> tuple[list[str], np.ndarray]:
    items, image_rows, images = _mixed_inputs()
    text_rows = [n for n in range(len(items)) if n not in image_rows]
    expected = np.empty((len(items), 24), dtype=np.float32)
    expected[text_rows] = reference_text(folder, [items[n] for n in text_rows])[0]
    expected[image_rows] = reference_images(folder, images)
    return items, expected


async def test_openai_api_embeds_texts_and_images_together(served: tuple[Path, Any]) -> None:
    folder, app = served
    items, expected = _expected(folder)
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://localhost/v1"
    )
    async with openai.AsyncOpenAI(
        api_key="x", base_url="http://localhost/v1", http_client=http
    ) as client:
        floats = await client.embeddings.create(model=SPEC.name, input=items)
        packed = await client.embeddings.create(
            model=SPEC.name, input=items, encoding_format="base64"
        )
        raw = await client.embeddings.create(
            model=SPEC.name, input=items, extra_body={"normalize": False}
        )
    normalised = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert_close(np.array([d.embedding for d in floats.data], dtype=np.float32), normalised)
    # asked for explicitly, base64 comes back as the SDK got it: little-endian float32 bytes
    rows = [np.frombuffer(base64.b64decode(str(d.embedding)), "<f4") for d in packed.data]
    assert_close(np.stack(rows), normalised)
    # `"normalize": false`: CLIP's own projections, as transformers computes them
    assert_close(np.array([d.embedding for d in raw.data], dtype=np.float32), expected)
    assert floats.usage.prompt_tokens > 0


async def test_ollama_api_embeds_texts_and_images_together(served: tuple[Path, Any]) -> None:
    folder, app = served
    items, expected = _expected(folder)
    client = ollama.AsyncClient(host="http://localhost", transport=httpx.ASGITransport(app=app))
    result = await client.embed(model=SPEC.name, input=items)
    normalised = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert_close(np.array(result.embeddings, dtype=np.float32), normalised)


async def test_an_undecodable_image_is_a_400_in_both_dialects(served: tuple[Path, Any]) -> None:
    _, app = served
    bad = data_url(b"GIF89a but not really")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    ) as http:
        v1 = await http.post("/v1/embeddings", json={"model": SPEC.name, "input": ["x", bad]})
        api = await http.post("/api/embed", json={"model": SPEC.name, "input": ["x", bad]})
    assert v1.status_code == 400, v1.text
    assert "input 1" in v1.json()["error"]["message"]
    assert api.status_code == 400, api.text
    assert "input 1" in api.json()["error"]
