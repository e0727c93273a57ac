"""Deploying the Serve application on the cluster this process has joined, and taking it down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray import serve
from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

from adapters.on_ray.scaling import Scaling
from adapters.on_ray.serve_app import APP_NAME, application
from adapters.settings import Settings

__all__ = ["deployed"]


def _serve_running() -> bool:
    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


@contextmanager
def deployed(settings: Settings, scaling: Scaling, proxy_location: str) -> Iterator[str]:
    """The application deployed, its replicas running: yields the endpoint. On leaving, the
    application is deleted; Serve itself (its controller and proxies) is shut down too when
    this call started it, and left to the others on a cluster where it already ran."""
    started = not _serve_running()
    # On a cluster where Serve runs already, its proxies keep the options they started with.
    serve.start(
        proxy_location=proxy_location,
        http_options={"host": settings.host, "port": settings.port},
    )
    try:
        serve.run(application(settings, scaling), name=APP_NAME, route_prefix="/")
        yield _endpoint()
    finally:
        if started:
            serve.shutdown()  # type: ignore[no-untyped-call]
        else:
            serve.delete(APP_NAME)


def _endpoint() -> str:
    """Where the proxies listen, as Serve reports it (not what was asked, which an existing
    Serve instance may have ignored)."""
    client = serve.context._get_global_client()  # noqa: SLF001 - no public accessor
    if client is None:  # serve.run just deployed through it
        msg = "Serve is not running"
        raise RuntimeError(msg)
    http = client.http_config
    host = f"[{http.host}]" if ":" in http.host else http.host
    return f"http://{host}:{http.port}"
