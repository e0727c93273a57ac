"""What each replica reports to Ray Serve for a custom autoscaling policy, read from the same
application a replica builds (here in process: the hook only reads it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.bootstrap import build_front_door
from adapters.on_ray.serve_app import autoscaling_stats
from adapters.settings import Settings
from domain.requests import EmbeddingRequest

_TEXTS = 48
_LONG = "a sentence long enough to keep a forward pass busy for a while " * 20


async def test_queue_depth_counts_the_inputs_in_flight_and_falls_back_to_zero(
    tmp_path: Path,
) -> None:
    door = build_front_door(Settings(home=tmp_path, engine="numpy", offline=True))
    assert autoscaling_stats(None) == {"queue_depth": 0.0, "models_loaded": 0.0}
    assert autoscaling_stats(door) == {"queue_depth": 0.0, "models_loaded": 0.0}
    await door.embed(EmbeddingRequest(model="all-MiniLM-L6-v2", inputs=["warm"]))

    request = EmbeddingRequest(model="all-MiniLM-L6-v2", inputs=[_LONG] * _TEXTS)
    embedding = asyncio.create_task(door.embed(request))
    seen: set[float] = set()
    while not embedding.done():
        seen.add(autoscaling_stats(door)["queue_depth"])
        await asyncio.sleep(0.005)
    await embedding

    assert float(_TEXTS) in seen  # the whole request, while it waits or runs
    assert autoscaling_stats(door) == {"queue_depth": 0.0, "models_loaded": 1.0}
    await door.stop()
