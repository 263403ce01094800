"""A loopback stand-in for ModelScope's hub: the endpoints ModelScope's SDK calls to download a model repository.

With ``GEMMA_HUB=modelscope`` the curriculum downloads models through ``modelscope.snapshot_download`` (and
``model_file_download``), which reach the endpoint in ``MODELSCOPE_ENDPOINT``. Pointed at this server, the real SDK
runs unchanged and the loaders get a local folder, as they would from modelscope.cn. Only the routes the SDK was
read and seen calling exist (SOURCES.md names the SDK version and functions), all under ``/api/v1``:

- ``GET models/{owner}/{name}/revisions``: the branches (``master`` only) and tags (none), as ``RevisionMap``;
- ``GET models/{owner}/{name}/repo/files?Revision=&Recursive=[&Root=]``: the file list (``Path``, ``Name``,
  ``Type`` blob or tree, ``Size``, ``Sha256``, ``IsLFS``, ``Revision``);
- ``GET|HEAD models/{owner}/{name}/repo?Revision=&FilePath=``: one file's bytes, with ranges;
- ``GET models/{owner}/{name}``: the repository's summary (the SDK asks when a ``Root`` listing misses);
- ``GET repos/internalAccelerationInfo``: answered "no Alibaba Cloud region", as outside its data centres.

JSON answers carry ModelScope's envelope (``Code``, ``Data``, ``Message``, ``RequestId``, ``Success``). What is
served comes from the Hub stand-in's folders (``ROOT/models/<owner>/<name>``, built by build.py under the Hugging
Face ids) through ``gemma_helpers.sources.MODEL_TWINS``: a ModelScope id is served from the folder of the first twin
in the table that was built, and an id the table does not map is "not found", whatever folders exist. So a test
that passes here also shows the table maps what the curriculum loads. Every request is logged, unknown routes as
``UNKNOWN ROUTE``, as serve.py does. It is not ModelScope: one revision, no auth, no redirects to a CDN, no
datasets, nothing can be written.

    python scripts/hub_standin/serve_modelscope.py ROOT [--port 0] [--port-file F] [--log F]
    MODELSCOPE_ENDPOINT=http://127.0.0.1:PORT GEMMA_HUB=modelscope python ...
"""

from __future__ import annotations

import calendar
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make gemma_helpers and the Hub stand-in importable
    sys.path.insert(0, str(REPO))

from gemma_helpers.sources import MODEL_TWINS  # noqa: E402
from scripts.hub_standin import serve  # noqa: E402

API = "api/v1"


def folders(root: Path) -> dict[str, tuple[str, Path]]:
    """{ModelScope id: (the twin's hub id, its folder)} for every ModelScope id of the table whose twin was built."""
    served: dict[str, tuple[str, Path]] = {}
    for twin in MODEL_TWINS.values():
        folder = Path(root) / "models" / twin.hub_id
        if twin.modelscope_id and twin.modelscope_id not in served and folder.is_dir():
            served[twin.modelscope_id] = (twin.hub_id, folder)
    return served


def _epoch(repo: serve.Repo) -> int:
    """The repository's modification time in epoch seconds, as ModelScope dates revisions and commits."""
    return calendar.timegm(time.strptime(repo.last_modified[:19], "%Y-%m-%dT%H:%M:%S"))


class NotFound(Exception):
    """An answer other than 200, in ModelScope's envelope."""

    def __init__(self, status: int, message: str, route_unknown: bool = False):
        super().__init__(message)
        self.status, self.message, self.route_unknown = status, message, route_unknown


class ModelScopeHandler(BaseHTTPRequestHandler):
    """Routes the SDK's read-only model calls onto the Hub stand-in's folders."""

    protocol_version = "HTTP/1.1"
    server: ModelScopeServer

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        seg = [unquote(s) for s in url.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._status: int | str = "?"
        unknown = ""
        try:
            if seg[:2] != API.split("/"):
                raise NotFound(404, f"ModelScope stand-in has no route for {self.command} {url.path}", True)
            rest = seg[2:]
            if rest == ["repos", "internalAccelerationInfo"]:
                self._json({"InternalRegionQueryAddress": ""})
            elif len(rest) >= 3 and rest[0] == "models":
                self._model(f"{rest[1]}/{rest[2]}", rest[3:], query)
            else:
                raise NotFound(404, f"ModelScope stand-in has no route for {self.command} {url.path}", True)
        except NotFound as e:
            unknown = "  UNKNOWN ROUTE" if e.route_unknown else ""
            self._json(None, e.status, e.message)
        except ConnectionError:
            self._status = "client closed"
        except Exception as e:  # a bug here must reach the log and the client
            if self._status == "?":
                self._json(None, 500, f"{type(e).__name__}: {e}")
            self._status = f"{self._status} then {type(e).__name__}: {e}"
        self.server.log(f"{self.command} {self.path} -> {self._status}{unknown}")

    do_GET = do_HEAD = do_POST = _dispatch

    def _model(self, model_id: str, rest: list[str], query: dict[str, str]) -> None:
        if self.command == "POST":
            raise NotFound(405, "the ModelScope stand-in is read-only", True)
        found = self.server.folders.get(model_id)
        if found is None:
            raise NotFound(404, f"model {model_id} not found: the stand-in serves only the ModelScope ids "
                                "gemma_helpers.sources.MODEL_TWINS maps to a model the Hub stand-in built")
        hub_id, folder = found
        repo = serve.scan_repo(folder, model_id)
        if rest == []:
            return self._json({"Name": model_id.split("/")[1], "Path": model_id.split("/")[0], "Revision": "master",
                               "Description": f"stand-in for {model_id}, served from the Hub stand-in's {hub_id}"})
        if rest == ["revisions"]:
            master = {"Revision": "master", "CreatedAt": _epoch(repo), "CommitId": repo.sha, "Message": "stand-in"}
            return self._json({"RevisionMap": {"Branches": [master], "Tags": []}})
        revision = query.get("Revision", "master")
        if revision not in ("master", repo.sha):
            raise NotFound(404, f"The model: {model_id} has no revision: {revision}")
        if rest == ["repo", "files"]:
            return self._json({"Files": self._files(repo, query)})
        if rest == ["repo"] and "FilePath" in query:
            return self._file(repo, query["FilePath"].strip("/"))
        raise NotFound(404, f"ModelScope stand-in has no route for {self.command} {self.path}", True)

    def _files(self, repo: serve.Repo, query: dict[str, str]) -> list[dict]:
        root = query.get("Root", "").strip("/")
        if root and root not in repo.dirs:
            raise NotFound(404, f"{root} does not exist in {repo.repo_id}")
        recursive = query.get("Recursive", "False").lower() == "true"
        prefix = root + "/" if root else ""
        stamp = _epoch(repo)
        entries = []
        for path in sorted((*repo.dirs, *repo.files)):
            if not path.startswith(prefix) or (not recursive and "/" in path[len(prefix):]):
                continue
            f = repo.files.get(path)
            entry = {"Name": path.rsplit("/", 1)[-1], "Path": path, "Revision": repo.sha, "CommittedDate": stamp,
                     "Type": "blob" if f else "tree", "Size": f.size if f else 0}
            if f:
                entry.update(Sha256=f.sha256, IsLFS=f.lfs, Mode="33188")
            entries.append(entry)
        return entries

    def _file(self, repo: serve.Repo, path: str) -> None:
        f = repo.files.get(path)
        if f is None:
            raise NotFound(404, f"file {path} not found in {repo.repo_id}")
        start, end, status = 0, f.size - 1, 200
        if spec := self.headers.get("Range"):
            try:
                start, end = serve.HubHandler._range(spec, f.size)
            except serve.HubError:
                self._status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{f.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if self.command == "GET":
            serve.send_range(self.wfile, repo.folder / path, start, end)

    def _json(self, data: object, status: int = 200, message: str = "success") -> None:
        body = {"Code": 200 if status == 200 else status, "Data": data, "Message": message,
                "RequestId": uuid.uuid4().hex, "Success": status == 200}
        payload = json.dumps(body).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the stdlib's per-request stderr lines; `_dispatch` writes one line per request instead."""

    def log_error(self, format: str, *args: object) -> None:
        self.server.log("server error: " + format % args)


class ModelScopeServer(serve.StandinServer):
    """The Hub stand-in's server with ModelScope's routes, serving the ModelScope ids the table maps."""

    handler_class = ModelScopeHandler
    endpoint_variable = "MODELSCOPE_ENDPOINT"

    def __init__(self, root: Path, port: int = 0, log_to=None):
        super().__init__(root, port, log_to)
        self.folders = folders(self.root)
        for ms_id, (hub_id, _) in sorted(self.folders.items()):
            self.log(f"serves {ms_id} from the Hub stand-in's {hub_id}")


def serving(root: str | Path, log_to=None):
    """Serve ROOT's mapped models on a free loopback port from a background thread; yield MODELSCOPE_ENDPOINT."""
    return serve.serving(root, log_to, ModelScopeServer)


if __name__ == "__main__":
    serve.main(server_class=ModelScopeServer, description=__doc__.splitlines()[0])
