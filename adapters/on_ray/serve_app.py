"""The server as a Ray Serve application: each replica builds the app with the composition root
`embedserve serve` uses (adapters/bootstrap.py), and Ray Serve's proxy spreads requests over them.

For Ray's own tools (`serve run`, `serve deploy`, KubeRay), `build` is the application builder:

    serve run adapters.on_ray.serve_app:build engine=onnxruntime home=/models
    serve deploy deploy/ray/serve.yaml

Its args are embedserve's settings, named by their flags without the dashes (`keep-alive: 5m`,
as `embedserve serve --help` lists them) or as adapters/settings.py declares them, with values
as written on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

from litestar import Litestar
from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from adapters.bootstrap import build_server
from adapters.on_ray.cluster import threads_as_assigned
from adapters.on_ray.scaling import DEFAULT_MAX_ONGOING_REQUESTS, Scaling
from adapters.settings import OPTIONS, SettingError, Settings, read_settings
from application.front_door import FrontDoor

__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "EmbedServe",
    "application",
    "autoscaling_stats",
    "build",
    "settings_of",
]

APP_NAME = "embedserve"
DEPLOYMENT_NAME = "EmbedServe"


@serve.deployment(name=DEPLOYMENT_NAME, max_ongoing_requests=DEFAULT_MAX_ONGOING_REQUESTS)
@serve.ingress()
class EmbedServe:
    """One replica: the whole server (both dialects, rerank, keys, CORS, limits, /metrics)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = threads_as_assigned(settings)
        self._door: FrontDoor | None = None

    def __serve_build_asgi_app__(self) -> Litestar:
        """Called by Ray once per replica, after __init__; Ray then runs the app's lifespan."""
        server = build_server(self._settings)
        self._door = server.door
        return server.app

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Ray Serve's hook: what a custom autoscaling policy reads of each replica."""
        return autoscaling_stats(self._door)


def autoscaling_stats(door: FrontDoor | None) -> dict[str, float]:
    """Inputs queued or being embedded in a replica, over every loaded model (a request of 32
    texts counts 32), and the models loaded; nothing before its app is built."""
    resident = () if door is None else door.resident()
    return {
        "queue_depth": float(sum(m.queue_depth for m in resident)),
        "models_loaded": float(len(resident)),
    }


def application(settings: Settings, scaling: Scaling | None = None) -> Application:
    """The Serve application, replicas as `scaling` says (default: the deployment's own options,
    which a Serve config file may override)."""
    # serve.deployment's stubs hand back the class it decorates; it returns a Deployment
    deployment = cast("Deployment", EmbedServe)
    if scaling is not None:
        deployment = deployment.options(**scaling.deployment_options())
    return deployment.bind(settings)


def _names() -> dict[str, str]:
    """Each setting by its declared name (`keep_alive_s`) and by its flag without the dashes
    (`keep-alive`), the spelling `--help` and a config file's reader know."""
    names = {name: name for name in OPTIONS}
    names |= {o.flag.removeprefix("--"): n for n, o in OPTIONS.items() if o.flag is not None}
    return names


def _spelled_for_users(key: str, name: str) -> bool:
    """The flag's spelling, or the declared name of a setting without a flag."""
    flag = OPTIONS[name].flag
    return flag is None or flag == f"--{key}"


def settings_of(args: Mapping[str, object], environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from a Serve config's args: setting names (declared, or flags without the
    dashes), values written as on the command line (a list for a repeatable one); the rest from
    EMBEDSERVE_* variables where the application is built, else the defaults.

    Raises SettingError naming an unknown setting or a value that cannot be read."""
    names = _names()
    given: dict[str, object] = {}
    for key, value in args.items():
        name = names.get(key)
        if name is None:
            known = ", ".join(sorted(k for k, n in names.items() if _spelled_for_users(k, n)))
            raise SettingError(f"unknown setting {key!r} (known: {known})")
        option = OPTIONS[name]
        try:
            if isinstance(value, list | tuple):
                items = [option.parse(_written(item)) for item in value]
                given[name] = tuple(items) if option.many else items[-1]
            else:
                given[name] = option.read(_written(value))
        except ValueError as exc:
            raise SettingError(f"{key}: {exc}") from None
    return read_settings(given, environ)


def _written(value: object) -> str:
    """YAML reads `true` and `8000` as a bool and an int: back to how a user writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build(args: dict[str, object]) -> Application:
    """The application builder for `serve run` / `serve deploy` (import path
    `adapters.on_ray.serve_app:build`)."""
    return application(settings_of(args))
