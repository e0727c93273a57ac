"""The app `embedserve serve` builds, for granian to serve instead of uvicorn (bench only).

The console script's own argument handling builds the app; only its last step, handing the app
to uvicorn, is caught, so both stacks serve exactly the same settings. The arguments come from
EMBEDSERVE_BENCH_ARGS (a JSON list), the rest from the usual EMBEDSERVE_* variables.

    granian --interface asgi --factory granian_app:app     (with bench/ on PYTHONPATH)
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["app"]


def app() -> Any:
    import uvicorn

    from adapters import cli

    built: list[Any] = []

    def keep(application: Any, **_: Any) -> None:
        built.append(application)

    uvicorn.run = keep  # type: ignore[assignment] # caught, not run: granian serves the app
    cli.main(["serve", *json.loads(os.environ.get("EMBEDSERVE_BENCH_ARGS", "[]"))])
    return built[0]
