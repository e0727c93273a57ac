"""Smoke: the server is there and answers both dialects' liveness calls."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.dialect("ollama")
def test_root_says_ollama_is_running(http: httpx.Client) -> None:
    """GET / answers 200 "Ollama is running", the probe Ollama clients use."""
    response = http.get("/")
    assert (response.status_code, response.text) == (200, "Ollama is running")
