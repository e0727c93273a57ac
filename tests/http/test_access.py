"""Access control in process: API keys, CORS origins and the body limit, in both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import httpx2
import ollama
import openai
import pytest
import structlog
from litestar import Litestar
from litestar.routes import HTTPRoute

from adapters.bootstrap import Settings, build_app
from adapters.cli import build_parser
from adapters.cli.options import settings_from
from adapters.http.access import LOCAL_HOSTS, OPEN_PATHS, answered_hosts, cors_config
from adapters.settings import SettingError

BASE = "http://embedserve.localhost"  # answered on loopback, as conftest says
KEYS = ("first-key-0123456789", "second-key-abcdefghij")
ALLOWED = "https://app.example"
LIMIT = 4096


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    home: Path = tmp_path_factory.mktemp("home")
    settings = Settings(
        home=home,
        offline=True,
        log_format="json",
        api_keys=KEYS,
        origins=(ALLOWED,),
        max_body_bytes=LIMIT,
    )
    return build_app(settings)


@pytest.fixture
async def http(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


def _bearer(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _oai(app: Litestar, key: str) -> openai.AsyncOpenAI:
    transport = httpx2.ASGITransport(app=app)
    http_client = httpx2.AsyncClient(transport=transport, base_url=f"{BASE}/v1")
    return openai.AsyncOpenAI(
        api_key=key, base_url=f"{BASE}/v1", http_client=http_client, max_retries=0
    )


def _oll(app: Litestar, headers: dict[str, str] | None = None) -> ollama.AsyncClient:
    return ollama.AsyncClient(
        host=BASE, transport=httpx.ASGITransport(app=app), headers=headers or {}
    )


def _protected_routes(app: Litestar) -> Iterator[tuple[str, str]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path.replace("{model_id:path}", "all-minilm")
        if path in OPEN_PATHS or path.startswith("/openapi"):
            continue
        for method in route.methods - {"OPTIONS"}:
            yield method, path


async def test_every_route_but_the_open_ones_needs_a_key(
    app: Litestar, http: httpx.AsyncClient
) -> None:
    """Each route the app serves, bar the open list, answers 401 to a request without a key."""
    routes = sorted(_protected_routes(app))
    assert ("POST", "/v1/embeddings") in routes
    assert ("POST", "/api/embed") in routes
    assert ("GET", "/api/tags") in routes
    answers = {(m, p): (await http.request(m, p)).status_code for m, p in routes}
    assert answers == dict.fromkeys(routes, 401)


async def test_openai_refusal_is_openais_envelope(http: httpx.AsyncClient) -> None:
    """No key on /v1: 401, code invalid_api_key, with WWW-Authenticate: Bearer."""
    response = await http.post("/v1/embeddings", json={"model": "all-minilm", "input": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert error["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize("headers", [{}, _bearer("wrong"), {"Authorization": "Bearer "}])
async def test_ollama_refusal_is_ollamas_envelope(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """No key, a wrong one, or Open WebUI's empty `Bearer `: 401 with {"error": "..."}."""
    response = await http.post(
        "/api/embed", json={"model": "all-minilm", "input": "x"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error"}
    assert isinstance(response.json()["error"], str)


async def test_openai_sdk_raises_authentication_error_on_a_wrong_key(app: Litestar) -> None:
    """The SDK turns the 401 into AuthenticationError and reads our code."""
    async with _oai(app, "not-a-key") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.models.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


async def test_ollama_sdk_raises_response_error_without_a_key(app: Litestar) -> None:
    """The ollama client surfaces the 401 as ResponseError with our message."""
    with pytest.raises(ollama.ResponseError) as caught:
        await _oll(app).list()
    assert caught.value.status_code == 401
    assert "API key" in caught.value.error


@pytest.mark.parametrize("key", KEYS)
async def test_either_key_lets_both_sdks_in(app: Litestar, key: str) -> None:
    """Any configured key opens both dialects: openai's api_key, ollama's headers."""
    async with _oai(app, key) as client:
        assert (await client.models.list()).data
    assert (await _oll(app, _bearer(key)).list()).models


async def test_the_bearer_scheme_is_case_insensitive(http: httpx.AsyncClient) -> None:
    """`bearer KEY` is as good as `Bearer KEY` (RFC 9110: schemes are case-insensitive)."""
    response = await http.get("/api/tags", headers={"Authorization": f"bearer {KEYS[1]}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/health"),
        ("GET", "/api/version"),
        ("HEAD", "/api/version"),
        ("GET", "/metrics"),
        ("GET", "/openapi/openapi.json"),
    ],
)
async def test_probes_and_documents_stay_open(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    """Liveness, version, metrics and the OpenAPI document answer without a key."""
    assert (await http.request(method, path)).status_code == 200


async def test_readiness_stays_open(http: httpx.AsyncClient) -> None:
    """/ready says loading (503) or ready (200), never 401."""
    assert (await http.get("/ready")).status_code in {200, 503}


async def test_the_key_is_never_logged(http: httpx.AsyncClient) -> None:
    """A refused request logs why, and neither the key it sent nor a configured one."""
    wrong = "wrong-key-that-must-not-be-logged"
    with structlog.testing.capture_logs() as logs:
        await http.get("/api/tags", headers=_bearer(wrong))
        await http.get("/api/tags", headers=_bearer())
    assert any(entry["event"] == "request_refused" for entry in logs)
    text = repr(logs)
    assert wrong not in text
    assert all(key not in text for key in KEYS)


def test_settings_never_print_the_keys() -> None:
    """Settings' repr leaves the keys out, so a logged or printed Settings cannot leak them."""
    settings = Settings(home=Path("/x"), api_keys=KEYS)
    assert all(key not in repr(settings) for key in KEYS)


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1", ALLOWED])
async def test_a_preflight_from_an_allowed_origin_gets_the_cors_headers(
    http: httpx.AsyncClient, origin: str
) -> None:
    """Ollama's default origins and --origins pass a preflight, with no key, and may send
    Authorization and the SDKs' own headers."""
    response = await http.options(
        "/v1/embeddings",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-stainless-os"} <= {
        h.strip() for h in allowed_headers.split(",")
    }


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example"])
async def test_a_preflight_from_another_origin_gets_no_cors_headers(
    http: httpx.AsyncClient, origin: str
) -> None:
    """An origin neither default nor configured gets no Access-Control-Allow-Origin."""
    response = await http.options(
        "/api/embed", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers


async def test_an_allowed_origin_can_read_answers_and_refusals(http: httpx.AsyncClient) -> None:
    """The real request carries Access-Control-Allow-Origin, on a 401 as on a 200, so the
    page's script can read why it was refused."""
    headers = {"Origin": ALLOWED}
    refused = await http.get("/api/tags", headers=headers)
    served = await http.get("/api/tags", headers=headers | _bearer())
    assert (refused.status_code, served.status_code) == (401, 200)
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert served.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(("path", "openai_envelope"), [("/api/tags", False), ("/v1/models", True)])
async def test_a_request_from_another_origin_is_403_in_the_dialect(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """As Ollama answers: a page from an origin not allowed is refused outright, key or not,
    since a simple request would otherwise still make the server work."""
    response = await http.get(path, headers={"Origin": "https://evil.example"} | _bearer())
    assert response.status_code == 403
    error = response.json()["error"]
    message = error["message"] if openai_envelope else error
    assert "--origins" in message


async def test_an_origin_naming_the_host_is_refused_like_any_other(
    http: httpx.AsyncClient,
) -> None:
    """An Origin equal to the Host the request was sent to earns no trust: a page on a domain
    rebound to this machine sends exactly that, and this server serves no pages of its own."""
    response = await http.get("/api/tags", headers={"Origin": BASE} | _bearer())
    assert response.status_code == 403
    assert "--origins" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/api/embed", False), ("/v1/embeddings", True)]
)
async def test_a_preflight_from_another_origin_is_403_in_the_dialect(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """As Ollama answers a preflight it refuses: 403, in the caller's JSON envelope, saying
    which setting allows the origin (Litestar alone answers a plain-text 400)."""
    response = await http.options(
        path, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    message = error["message"] if openai_envelope else error
    assert "'https://evil.example'" in message
    assert "--origins" in message


# The Host a request names (DNS rebinding)

REBOUND = "evil.example:11434"


def _host_app(tmp_path: Path, host: str = "127.0.0.1", allowed: tuple[str, ...] = ()) -> Litestar:
    settings = Settings(
        home=tmp_path, offline=True, log_format="json", host=host, allowed_hosts=allowed
    )
    return build_app(settings)


async def _get(app: Litestar, path: str, host: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        return await client.get(path, headers={"Host": host} | headers)


@pytest.mark.parametrize(("path", "openai_envelope"), [("/api/tags", False), ("/v1/models", True)])
async def test_a_host_not_of_this_machine_is_403_in_the_dialect(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """On a loopback address a Host that is not this machine's is refused, key or not: what a
    page on a domain rebound to 127.0.0.1 sends, as Ollama refuses it."""
    response = await http.get(path, headers={"Host": REBOUND} | _bearer())
    assert response.status_code == 403
    error = response.json()["error"]
    message = error["message"] if openai_envelope else error
    assert REBOUND in message
    assert "--allowed-hosts" in message


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:11434",
        "LocalHost:8080",
        "127.0.0.1:11434",
        "127.0.0.2",
        "[::1]:11434",
        "embedserve.localhost:11434",
    ],
)
async def test_this_machines_names_are_answered(http: httpx.AsyncClient, host: str) -> None:
    """localhost, *.localhost and loopback addresses, with any port or none."""
    response = await http.get("/api/tags", headers={"Host": host} | _bearer())
    assert response.status_code == 200


async def test_a_probe_from_a_refused_host_is_refused_too(http: httpx.AsyncClient) -> None:
    """The Host is checked before anything answers: open routes, unknown ones and preflights
    from an allowed origin alike."""
    assert (await http.get("/health", headers={"Host": REBOUND})).status_code == 403
    assert (await http.get("/no/such/route", headers={"Host": REBOUND})).status_code == 403
    preflight = await http.options(
        "/api/embed",
        headers={
            "Host": REBOUND,
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert preflight.status_code == 403


async def test_allowed_hosts_adds_names_with_wildcards(tmp_path: Path) -> None:
    """--allowed-hosts adds names, `*` a wildcard, with any port; others are still refused."""
    app = _host_app(tmp_path, allowed=("*.example.internal", "box.lan"))
    assert (await _get(app, "/api/tags", "box.lan:11434")).status_code == 200
    assert (await _get(app, "/api/tags", "a.b.example.internal")).status_code == 200
    assert (await _get(app, "/api/tags", "example.internal.evil.example")).status_code == 403
    assert (await _get(app, "/api/tags", REBOUND)).status_code == 403


async def test_a_lone_star_in_allowed_hosts_answers_any_host(tmp_path: Path) -> None:
    """`--allowed-hosts '*'` turns the check off, for a server behind a proxy that sets Host."""
    app = _host_app(tmp_path, allowed=("*",))
    assert (await _get(app, "/api/tags", REBOUND)).status_code == 200


@pytest.mark.parametrize("bound", ["0.0.0.0", "::", "192.168.1.20"])  # noqa: S104 - bound in name
async def test_any_host_is_answered_off_loopback(tmp_path: Path, bound: str) -> None:
    """Listening on all addresses or a LAN one, any Host is answered, as Ollama does: whoever
    can reach the server there can call it by its address anyway."""
    app = _host_app(tmp_path, host=bound)
    assert (await _get(app, "/api/tags", REBOUND)).status_code == 200


async def test_the_address_listened_on_is_answered(tmp_path: Path) -> None:
    """--host names a loopback address by another spelling: that spelling is answered too."""
    app = _host_app(tmp_path, host="127.0.0.1")
    assert (await _get(app, "/api/tags", "127.0.0.1")).status_code == 200
    app = _host_app(tmp_path, host="::1")
    assert (await _get(app, "/api/tags", "[::1]:11434")).status_code == 200


@pytest.mark.parametrize(
    ("bound", "extra", "expected"),
    [
        ("127.0.0.1", (), (*LOCAL_HOSTS, "127.0.0.1")),
        ("::1", ("Box.LAN",), (*LOCAL_HOSTS, "[::1]", "box.lan")),
        ("localhost", (), (*LOCAL_HOSTS, "localhost")),
        ("0.0.0.0", ("box.lan",), None),  # noqa: S104 - an address listened on, in a table
        ("10.1.2.3", (), None),
        ("127.0.0.1", ("*",), None),
    ],
)
def test_the_hosts_answered_follow_the_address_listened_on(
    bound: str, extra: tuple[str, ...], expected: tuple[str, ...] | None
) -> None:
    """Loopback: this machine's names, the address and the extra ones; elsewhere: any."""
    assert answered_hosts(bound, extra) == expected


def test_cli_reads_allowed_hosts_repeated_and_from_the_variable() -> None:
    """--allowed-hosts repeats; EMBEDSERVE_ALLOWED_HOSTS is comma-separated; a URL is refused."""
    args = build_parser().parse_args(
        ["serve", "--allowed-hosts", "box.lan", "--allowed-hosts", "*.example.internal"]
    )
    assert settings_from(args, {}).allowed_hosts == ("box.lan", "*.example.internal")
    plain = build_parser().parse_args(["serve"])
    environ = {"EMBEDSERVE_ALLOWED_HOSTS": "a.lan, B.lan"}
    assert settings_from(plain, environ).allowed_hosts == ("a.lan", "b.lan")
    with pytest.raises(SettingError, match="not a host name"):
        settings_from(plain, {"EMBEDSERVE_ALLOWED_HOSTS": "http://a.lan/"})


def test_origins_take_wildcards_and_a_lone_star() -> None:
    """`https://*.example.com` matches its subdomains only; `*` allows any origin."""
    some = cors_config(["https://*.example.com"])
    assert some.is_origin_allowed("https://a.example.com")
    assert not some.is_origin_allowed("https://example.org")
    assert not some.is_origin_allowed("https://evil.example")
    assert cors_config(["*"]).is_origin_allowed("https://evil.example")
    assert cors_config().is_origin_allowed("tauri://localhost")


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/api/embed", False), ("/v1/embeddings", True)]
)
async def test_a_body_past_the_configured_limit_is_413_in_the_dialect(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """A body over --max-body-size is refused from its Content-Length, naming the limit."""
    body = b'{"model":"all-minilm","input":"' + b"a" * LIMIT + b'"}'
    headers = {"content-type": "application/json"} | _bearer()
    response = await http.post(path, content=body, headers=headers)
    assert response.status_code == 413
    error = response.json()["error"]
    message = error["message"] if openai_envelope else error
    assert f"at most {LIMIT} bytes" in message
    if openai_envelope:
        assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/api/embed", False), ("/v1/embeddings", True)]
)
async def test_a_chunked_body_past_the_limit_is_413_in_the_dialect(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """With no Content-Length to check up front, the limit still cuts the body off."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model":"all-minilm","input":"'
        for _ in range(8):
            yield b"a" * 1024
        yield b'"}'

    headers = {"content-type": "application/json"} | _bearer()
    response = await http.post(path, content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    error = response.json()["error"]
    assert isinstance(error["message"] if openai_envelope else error, str)


async def test_a_key_is_checked_before_the_body_size(http: httpx.AsyncClient) -> None:
    """A caller without a key learns nothing else, not even the body limit."""
    body = b"x" * (LIMIT + 1)
    response = await http.post("/api/embed", content=body)
    assert response.status_code == 401


def test_cli_reads_keys_from_flags_and_a_file(tmp_path: Path) -> None:
    """--api-key repeats, --api-key-file adds one key a line, skipping comments and blanks."""
    key_file = tmp_path / "keys"
    key_file.write_text("# ops team\nfile-key\n\n  other-key  \n", encoding="utf-8")
    args = build_parser().parse_args(
        ["serve", "--api-key", "a", "--api-key", "b", "--api-key-file", str(key_file)]
    )
    assert settings_from(args, {}).api_keys == (
        "a",
        "b",
        "file-key",
        "other-key",
    )


@pytest.mark.parametrize(("given", "expected"), [("16MiB", 16 * 1024 * 1024), ("1KB", 1000)])
def test_cli_reads_a_body_size_with_units(given: str, expected: int) -> None:
    """--max-body-size takes bytes or units: MiB are powers of 1024, KB of 1000."""
    args = build_parser().parse_args(["serve", "--max-body-size", given])
    assert settings_from(args, {}).max_body_bytes == expected
