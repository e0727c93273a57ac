"""The app in process, built by the real composition root, driven by the official SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import httpx2
import ollama
import openai
import pytest
from litestar import Litestar

from adapters.bootstrap import Settings, build_app

# A name of this machine (*.localhost): an app that listens on a loopback address, as the server
# does by default, answers to it and refuses other names (DNS rebinding).
BASE = "http://embedserve.localhost"
MAX_BODY = 16 << 20  # apps built by hand take the server's default body limit
HOST = "127.0.0.1"  # and listen where the server does by default


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    """Offline, so a catalogue model that is not on disk can never reach for the network."""
    home: Path = tmp_path_factory.mktemp("home")
    return build_app(Settings(home=home, offline=True, log_format="json"))


def _transport(app: Litestar) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app)


@pytest.fixture
async def http(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=_transport(app), base_url=BASE) as client:
        yield client


@pytest.fixture
async def oai(app: Litestar) -> AsyncIterator[openai.AsyncOpenAI]:
    """No retries: a test must see the first answer, and 5xx retries would only slow it."""
    # openai-python 3.x runs on httpx2, a fork of httpx with the same API
    http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=f"{BASE}/v1")
    client = openai.AsyncOpenAI(
        api_key="any", base_url=f"{BASE}/v1", http_client=http_client, max_retries=0
    )
    async with client:
        yield client


@pytest.fixture
def oll(app: Litestar) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=BASE, transport=_transport(app))
