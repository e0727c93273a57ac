"""A local stand-in for the Hugging Face Hub's HTTP API, enough for huggingface_hub's downloads.

It answers the four requests `snapshot_download` makes (huggingface_hub 2.4.0):

    GET  /api/models/{repo}/revision/{rev}   model info: `sha` (the commit) and `siblings`
    GET  /api/models/{repo}/tree/{commit}    recursive file listing (one page, no `Link` header)
    HEAD /{repo}/resolve/{commit}/{path}     X-Repo-Commit, ETag and Content-Length, no body
    GET  /{repo}/resolve/{commit}/{path}     the bytes, honouring `Range: bytes=N-` with a 206

Errors carry the `X-Error-Code` header that huggingface_hub turns into its exception types
(RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound). Every request is recorded, so a test
can say which files were never asked for, and a file can be cut mid-body to play a broken or
killed download.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType

    import pytest

__all__ = ["Cut", "HubStandIn", "Seen", "hub_reachable", "unreachable_url"]

Cut = Literal["truncate", "drop", "stall"]

# Files the real Hub stores with Git LFS: their ETag is the sha256 of the content, not a blob id.
_LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".onnx", ".npy", ".ot")
_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_INFO = re.compile(rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?")
_TREE = re.compile(rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)")
_RESOLVE = re.compile(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)")
_RANGE = re.compile(r"bytes=(?P<start>\d+)-(?P<end>\d*)")
_STALL_LIMIT_S = 60.0  # a stalled response gives up by itself if a test forgets to release it


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str  # the URL path, without the query
    file: str | None = None  # the repo file, for /resolve requests
    range: str | None = None  # the Range header, when the client resumed


@dataclass(slots=True)
class _Fault:
    after: int  # bytes of the body sent before the cut
    how: Cut
    times: int  # GET requests still to cut


@dataclass(frozen=True, slots=True)
class _Repo:
    files: dict[str, bytes]
    sha: str  # the one commit this repo has


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _is_lfs(path: str) -> bool:
    return path.endswith(_LFS_SUFFIXES)


def _etag(path: str, data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if _is_lfs(path) else _git_blob_id(data)


def _commit(files: dict[str, bytes]) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + _git_blob_id(files[path]).encode())
    return digest.hexdigest()


class HubStandIn:
    """Serves `{repo_id: {path: bytes}}` on 127.0.0.1; use it as a context manager.

    `with HubStandIn({"org/name": files}) as hub:` then point huggingface_hub at `hub.url`.
    """

    def __init__(
        self, repos: dict[str, dict[str, bytes]], *, gated: frozenset[str] = frozenset()
    ) -> None:
        self._repos = {
            repo_id: _Repo(dict(files), _commit(files)) for repo_id, files in repos.items()
        }
        self._gated = gated
        self._faults: dict[str, _Fault] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[Seen] = []
        self.outage: int | None = None  # when set, every request answers this HTTP status
        self.stalled = threading.Event()  # set once a "stall" cut has sent its bytes
        self._release = threading.Event()

    # lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._release.set()
        self._server.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # ends the keep-alive loops of handler threads
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join()
        self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            msg = "the stand-in is not running"
            raise RuntimeError(msg)
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # what tests ask

    def sha(self, repo_id: str) -> str:
        """The commit the repo's `main` points at."""
        return self._repos[repo_id].sha

    def requested(self, method: str = "GET") -> list[str]:
        """The repo files asked for with `method`, in order, repeats included."""
        with self._lock:
            return [seen.file for seen in self.requests if seen.method == method and seen.file]

    def api_calls(self) -> list[str]:
        """The paths of the /api/ requests, in order."""
        with self._lock:
            return [seen.path for seen in self.requests if seen.path.startswith("/api/")]

    def cut(self, path: str, after: int, *, how: Cut = "truncate", times: int = 1) -> None:
        """Break the next `times` GETs of `path` (in any repo) after `after` bytes of body.

        truncate: announce and send only `after` bytes (huggingface_hub's size check fails at once);
        drop: announce the full size, send `after` bytes, then close the connection;
        stall: send `after` bytes, set `stalled`, wait for `release()` (kill the client meanwhile).
        """
        with self._lock:
            self._faults[path] = _Fault(after, how, times)

    def release(self) -> None:
        """Let stalled responses go on."""
        self._release.set()

    # used by the handler

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault

    def _track(self, connection: socket.socket, *, is_open: bool) -> None:
        with self._lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def unreachable_url() -> str:
    """A 127.0.0.1 URL with nothing listening: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went away mid-response: what the cuts are for
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        hub: HubStandIn,
    ) -> None:
        self.hub = hub
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's pooled httpx client expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall each
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.hub._track(self.connection, is_open=True)

    def finish(self) -> None:
        self.server.hub._track(self.connection, is_open=False)
        with contextlib.suppress(OSError):  # the client went away mid-response (a kill)
            super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    # routing

    def _answer(self, *, head: bool) -> None:
        hub = self.server.hub
        path = urlsplit(self.path).path
        resolve = _RESOLVE.fullmatch(path)
        hub._record(
            Seen(
                self.command,
                unquote(path),
                unquote(resolve["file"]) if resolve else None,
                self.headers.get("Range"),
            )
        )
        if hub.outage is not None:
            self._error(hub.outage, "", "the hub is down", head=head)
        elif resolve:
            self._resolve(resolve["repo"], unquote(resolve["rev"]), unquote(resolve["file"]), head)
        elif tree := _TREE.fullmatch(path):
            self._tree(tree["repo"], unquote(tree["rev"]), head=head)
        elif info := _INFO.fullmatch(path):
            self._info(info["repo"], unquote(info["rev"] or "main"), head=head)
        else:
            self._error(404, "", "no such endpoint", head=head)

    def _find(self, repo_id: str, revision: str, *, head: bool) -> _Repo | None:
        """The repo at `revision`, or None once the error is answered."""
        hub = self.server.hub
        repo = hub._repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        if repo_id in hub._gated:
            self._error(403, "GatedRepo", "Access to this model is restricted", head=head)
            return None
        if revision not in {"main", repo.sha}:
            self._error(404, "RevisionNotFound", "Invalid rev id", head=head)
            return None
        return repo

    # endpoints

    def _info(self, repo_id: str, revision: str, *, head: bool) -> None:
        repo = self._find(repo_id, revision, head=head)
        if repo is None:
            return
        author = repo_id.split("/", maxsplit=1)[0] if "/" in repo_id else None
        body = {
            "_id": repo.sha[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": author,
            "sha": repo.sha,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(repo.files)],
        }
        self._json(body, head=head)

    def _tree(self, repo_id: str, revision: str, *, head: bool) -> None:
        repo = self._find(repo_id, revision, head=head)
        if repo is None:
            return
        entries: list[dict[str, object]] = []
        folders = {
            "/".join(parts[:i])
            for parts in (path.split("/") for path in repo.files)
            for i in range(1, len(parts))
        }
        entries.extend(
            {"type": "directory", "oid": _git_blob_id(folder.encode()), "size": 0, "path": folder}
            for folder in sorted(folders)
        )
        for path, data in sorted(repo.files.items()):
            entry: dict[str, object] = {
                "type": "file",
                "oid": _git_blob_id(data),
                "size": len(data),
                "path": path,
            }
            if _is_lfs(path):
                entry["lfs"] = {"oid": _etag(path, data), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        self._json(entries, head=head)

    def _resolve(self, repo_id: str, revision: str, file: str, head: bool) -> None:  # noqa: FBT001
        repo = self._find(repo_id, revision, head=head)
        if repo is None:
            return
        data = repo.files.get(file)
        if data is None:
            self._error(404, "EntryNotFound", "Entry not found", head=head)
            return
        etag = _etag(file, data)
        start, end = 0, len(data) - 1
        status = 200
        asked = self.headers.get("Range")
        if asked and not head:
            wanted = _RANGE.fullmatch(asked)
            if wanted is None or int(wanted["start"]) >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(wanted["start"])
            end = min(int(wanted["end"] or end), end)
            status = 206
        body = data[start : end + 1]
        fault = None if head else self.server.hub._take_fault(file)
        self.send_response(status)
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{etag}"')
        if _is_lfs(file):
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        announced = fault.after if fault is not None and fault.how == "truncate" else len(body)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if head:
            return
        if fault is None:
            self.wfile.write(body)
            return
        self._send_cut(body, fault)

    def _send_cut(self, body: bytes, fault: _Fault) -> None:
        hub = self.server.hub
        self.wfile.write(body[: fault.after])
        self.wfile.flush()
        if fault.how == "truncate":
            return
        if fault.how == "stall":
            hub.stalled.set()
            hub._release.wait(_STALL_LIMIT_S)
        self.close_connection = True
        try:
            if fault.how == "stall":
                self.wfile.write(body[fault.after :])
                self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # "drop": the body ends early
        except OSError:
            pass  # the client is already gone (killed while stalled)

    # replies

    def _json(self, value: object, *, head: bool) -> None:
        payload = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str, *, head: bool) -> None:
        payload = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)


def hub_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HF_* variable for the test, and huggingface_hub not left offline: it reads
    HF_HUB_OFFLINE once, when first imported, and the parity modules and model factories set it
    at their own import, so a session that collects one of them first froze it on."""
    import huggingface_hub.constants

    for name in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
