"""The Serve config file and the KubeRay example in deploy/ray/ are not run here, but they are
read as Ray reads them: valid against Serve's own schema, their import path resolving to the
application builder, their args known settings, and their deployment the one the builder
makes."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from adapters.on_ray.serve_app import APP_NAME, DEPLOYMENT_NAME, build, settings_of
from adapters.settings import SettingError

_DEPLOY = Path(__file__).parents[2] / "deploy" / "ray"


def _serve_configs() -> dict[str, dict[str, Any]]:
    serve = yaml.safe_load((_DEPLOY / "serve.yaml").read_text(encoding="utf-8"))
    service = yaml.safe_load((_DEPLOY / "rayservice.yaml").read_text(encoding="utf-8"))
    assert service["kind"] == "RayService"
    return {
        "serve.yaml": serve,
        "rayservice.yaml": yaml.safe_load(service["spec"]["serveConfigV2"]),
    }


@pytest.mark.parametrize("name", ["serve.yaml", "rayservice.yaml"])
def test_the_config_is_a_valid_serve_config(name: str) -> None:
    """Serve's own schema accepts it, with one application named embedserve on route /."""
    schema = ServeDeploySchema.model_validate(_serve_configs()[name])
    [app] = schema.applications
    assert (app.name, app.route_prefix) == (APP_NAME, "/")


@pytest.mark.parametrize("name", ["serve.yaml", "rayservice.yaml"])
def test_its_import_path_is_the_builder_and_its_args_are_settings(name: str) -> None:
    """import_path resolves to adapters.on_ray.serve_app:build; every arg is a setting whose
    value reads; the deployment it configures is the one the builder binds."""
    [app] = _serve_configs()[name]["applications"]
    module, attribute = app["import_path"].split(":")
    assert getattr(importlib.import_module(module), attribute) is build
    settings_of(app["args"], environ={})  # raises on an unknown name or an unreadable value
    assert [d["name"] for d in app["deployments"]] == [DEPLOYMENT_NAME]
    assert build(app["args"]).__class__.__name__ == "Application"


def test_an_unknown_arg_is_refused_by_name() -> None:
    """A misspelt setting fails the build with its name, rather than being ignored."""
    with pytest.raises(SettingError, match="'keep_alive_seconds'"):
        settings_of({"keep_alive_seconds": "5m"}, environ={})
