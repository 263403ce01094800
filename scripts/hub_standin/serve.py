"""A loopback stand-in for the Hugging Face Hub: serves a folder of fake repositories over HTTP.

It lets CI rehearse the notebooks' full mode offline: `huggingface_hub`, `transformers`, `datasets` and `unsloth`
run unchanged once `HF_ENDPOINT=http://127.0.0.1:PORT` points at it. It is not a hub: each repository has one
revision (`main`), nothing can be written, there is no auth and no Xet, and only the routes those libraries were
seen calling exist: file downloads (`/{repo}/resolve/...`, `/datasets/{repo}/resolve/...`, HEAD, GET, ranges) and
`/api/{models,datasets}/{repo}` with `/revision/{rev}`, `/tree/{rev}/{path}` and `/paths-info/{rev}`. Every
request is logged; an unknown route answers 404 with the hub's error headers and is logged as `UNKNOWN ROUTE`, so a
client that needs something new fails loudly instead of silently falling back.

Layout of ROOT (one folder per repository, files as they would be in the repository):
    ROOT/models/<owner>/<name>/<files...>
    ROOT/datasets/<owner>/<name>/<files...>

A repository's commit sha is a hash of its file names and contents, so clients' caches stay valid across server
restarts while the content is unchanged, and are invalidated when it changes.

    python scripts/hub_standin/serve.py ROOT [--port 0] [--port-file F] [--log F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, unquote, urlsplit

# The hub stores these through Git LFS; clients then see a sha256 ETag and `lfs` metadata, as with real repos.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".parquet", ".arrow", ".model", ".npz", ".zip")
LFS_MIN_BYTES = 10 * 1024 * 1024
SKIPPED_DIRS = {".git", ".cache", "__pycache__"}  # VCS and local-download bookkeeping, never repository content
CHUNK = 1024 * 1024


def send_range(wfile, path: Path, start: int, end: int) -> None:
    """Write bytes `start` to `end` (inclusive) of a file to a response, CHUNK bytes at a time."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start + 1
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            wfile.write(chunk)
            left -= len(chunk)


@dataclass(frozen=True)
class RepoFile:
    """One file of a repository, with the hashes the hub reports for it."""

    path: str
    size: int
    blob_id: str  # git blob sha1, the hub's `oid`
    sha256: str
    lfs: bool


@dataclass(frozen=True)
class Repo:
    """A scanned repository: its files, commit sha and modification time."""

    repo_id: str
    folder: Path
    files: dict[str, RepoFile]
    dirs: frozenset[str]  # every folder inside the repository, without its root
    sha: str
    last_modified: str


_hash_cache: dict[tuple[str, int, int], tuple[str, str]] = {}
_hash_lock = threading.Lock()


def file_hashes(path: Path, size: int, mtime_ns: int) -> tuple[str, str]:
    """Return (git blob sha1, sha256) of a file, cached by path, size and mtime so large files are read once."""
    key = (str(path), size, mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    blob, sha = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            blob.update(chunk)
            sha.update(chunk)
    with _hash_lock:
        _hash_cache[key] = (blob.hexdigest(), sha.hexdigest())
    return _hash_cache[key]


def scan_repo(folder: Path, repo_id: str) -> Repo:
    """Index a repository folder; rescanned per request so content built while serving is seen (hashes are cached)."""
    files, newest = {}, 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in filenames:
            full = Path(dirpath, name)
            st = full.stat()
            rel = full.relative_to(folder).as_posix()
            blob_id, sha256 = file_hashes(full, st.st_size, st.st_mtime_ns)
            lfs = rel.endswith(LFS_SUFFIXES) or st.st_size >= LFS_MIN_BYTES
            files[rel] = RepoFile(rel, st.st_size, blob_id, sha256, lfs)
            newest = max(newest, st.st_mtime_ns)
    digest = hashlib.sha1()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel].sha256}\n".encode())
    dirs = {rel.rsplit("/", n)[0] for rel in files for n in range(1, rel.count("/") + 1)}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(newest / 1e9))
    return Repo(repo_id, folder, dict(sorted(files.items())), frozenset(dirs), digest.hexdigest(), stamp)


class HubError(Exception):
    """An error answered the way the hub answers it: status, `X-Error-Code`, `X-Error-Message`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def tree_entry(repo: Repo, path: str, expand: bool) -> dict:
    """A file or folder as the tree and paths-info endpoints describe it (a folder's oid hashes the blobs under it)."""
    if f := repo.files.get(path):
        entry: dict = {"type": "file", "oid": f.blob_id, "size": f.size, "path": path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
    else:
        under = "".join(f.blob_id for p, f in repo.files.items() if p.startswith(path + "/"))
        entry = {"type": "directory", "oid": hashlib.sha1(under.encode()).hexdigest(), "size": 0, "path": path}
    if expand:
        entry["lastCommit"] = {"id": repo.sha, "title": "hub stand-in snapshot", "date": repo.last_modified}
    return entry


class HubHandler(BaseHTTPRequestHandler):
    """Routes the hub's download and read-only API calls onto the ROOT folder."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients make many small requests
    server: StandinServer

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        # Split before unquoting: revisions and tree paths arrive with '/' encoded as %2F inside one segment.
        seg = [unquote(s) for s in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._status: int | str = "?"
        self._code = ""  # one handler serves every request of a keep-alive connection: reset per request
        try:
            if seg[0] == "api" and len(seg) >= 4 and seg[1] in ("models", "datasets"):
                self._api(seg[1][:-1], f"{seg[2]}/{seg[3]}", seg[4:], query, body)
            elif len(seg) >= 5 and seg[0] == "datasets" and seg[3] == "resolve":
                self._resolve("dataset", f"{seg[1]}/{seg[2]}", seg[4], "/".join(seg[5:]))
            elif len(seg) >= 4 and seg[2] == "resolve":
                self._resolve("model", f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
            elif seg == ["api", "agent-harnesses"]:  # huggingface_hub's daily user-agent registry: "no agents known"
                self._json({"standardEnvVars": [], "harnesses": {}})
            else:
                raise HubError(404, "RouteNotFound", f"hub stand-in has no route for {self.command} {url.path}")
        except HubError as e:
            self._error(e)
        except ConnectionError:  # a client that read what it needed of a range and hung up
            self._status = "client closed"
        except Exception as e:  # a bug here must reach the log and the client, not vanish into stderr
            if self._status == "?":
                self._error(HubError(500, "StandinError", f"{type(e).__name__}: {e}"))
            self._status = f"{self._status} then {type(e).__name__}: {e}"
        unknown = "  UNKNOWN ROUTE" if self._status == 404 and self._code == "RouteNotFound" else ""
        self.server.log(f"{self.command} {self.path} -> {self._status}{unknown}")

    do_GET = do_HEAD = do_POST = _dispatch  # the names BaseHTTPRequestHandler looks up

    def _repo(self, kind: str, repo_id: str, revision: str) -> Repo:
        folder = self.server.root / f"{kind}s" / repo_id
        parts = repo_id.split("/")  # a segment could hold an encoded '/' or '..': neither names a repository
        if len(parts) != 2 or any(p.startswith(".") or not p for p in parts) or not folder.is_dir():
            raise HubError(404, "RepoNotFound", "Repository not found")
        repo = scan_repo(folder, repo_id)
        if revision not in ("main", repo.sha):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo

    def _api(self, kind: str, repo_id: str, rest: list[str], query: dict, body: bytes) -> None:
        expand = query.get("expand", ["False"])[0].lower() == "true"
        if not rest or (rest[0] == "revision" and len(rest) == 2):
            repo = self._repo(kind, repo_id, rest[1] if rest else "main")
            return self._json(self._info(kind, repo, blobs="blobs" in query))
        if rest[0] == "tree" and len(rest) >= 2:
            repo = self._repo(kind, repo_id, rest[1])
            path = "/".join(rest[2:]).strip("/")
            recursive = query.get("recursive", ["False"])[0].lower() == "true"
            return self._json(self._tree(repo, path, recursive, expand))
        if rest[0] == "paths-info" and len(rest) == 2 and self.command == "POST":
            repo = self._repo(kind, repo_id, rest[1])
            form = parse_qs(body.decode())
            expand = form.get("expand", ["False"])[0].lower() == "true"
            paths = [p.strip("/") for p in form.get("paths", [])]
            return self._json([tree_entry(repo, p, expand) for p in paths if p in repo.files or p in repo.dirs])
        raise HubError(404, "RouteNotFound", f"hub stand-in has no route for {self.command} {self.path}")

    def _info(self, kind: str, repo: Repo, blobs: bool) -> dict:
        siblings = []
        for f in repo.files.values():
            sib: dict = {"rfilename": f.path}
            if blobs:
                sib.update(size=f.size, blobId=f.blob_id)
                if f.lfs:
                    sib["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
            siblings.append(sib)
        info = {"_id": repo.sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": repo.sha,
                "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "createdAt": repo.last_modified, "lastModified": repo.last_modified, "siblings": siblings,
                "usedStorage": sum(f.size for f in repo.files.values())}
        if kind == "model":
            info["modelId"] = repo.repo_id
        return info

    def _tree(self, repo: Repo, path: str, recursive: bool, expand: bool) -> list[dict]:
        if path and path not in repo.dirs:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on \"main\"", {"X-Repo-Commit": repo.sha})
        prefix = path + "/" if path else ""
        paths = sorted(p for p in (*repo.dirs, *repo.files)
                       if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):]))
        return [tree_entry(repo, p, expand) for p in paths]

    def _resolve(self, kind: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(kind, repo_id, revision)
        f = repo.files.get(path)
        if f is None:
            # With the commit, as the hub does, so hf_hub_download can cache the miss for that commit.
            raise HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": repo.sha})
        start, end = 0, f.size - 1
        status = 200
        spec = self.headers.get("Range")
        if spec:
            start, end = self._range(spec, f.size)
            status = 206
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", f'"{f.sha256 if f.lfs else f.blob_id}"')  # what the hub sends for each kind
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if self.command == "GET":
            send_range(self.wfile, repo.folder / path, start, end)

    @staticmethod
    def _range(spec: str, size: int) -> tuple[int, int]:
        """Parse one `bytes=a-b`, `bytes=a-` or `bytes=-n` range into inclusive offsets (416 if unsatisfiable)."""
        first, _, last = spec.removeprefix("bytes=").split(",")[0].strip().partition("-")
        try:
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start, end = max(size - int(last), 0), size - 1
        except ValueError:
            start, end = size, size  # unparseable: answered like an unsatisfiable range
        if start >= size or start > end:
            raise HubError(416, "RangeNotSatisfiable", f"{spec} is past the end", {"Content-Range": f"bytes */{size}"})
        return start, end

    def _json(self, payload: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, e: HubError) -> None:
        self._code = e.code
        headers = {"X-Error-Code": e.code, "X-Error-Message": e.message, **e.headers}
        self._json({"error": e.message}, e.status, headers)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the stdlib's per-request stderr lines; `_dispatch` writes one line per request instead."""

    def log_error(self, format: str, *args: object) -> None:
        self.server.log("server error: " + format % args)


class StandinServer(ThreadingHTTPServer):
    """The HTTP server: knows its ROOT folder and where request lines go."""

    daemon_threads = True
    # serve_modelscope.py reuses this server with ModelScope's routes: its handler and the variable clients read.
    handler_class: type[BaseHTTPRequestHandler] = HubHandler
    endpoint_variable = "HF_ENDPOINT"

    def __init__(self, root: Path, port: int = 0, log_to: TextIO | None = None):
        super().__init__(("127.0.0.1", port), self.handler_class)
        self.root = Path(root).resolve()
        self._log_to = log_to or sys.stderr
        self._log_lock = threading.Lock()
        # Hash everything before answering: a client's first HEAD must not wait (etag timeout: 10 s) on a big file.
        started = time.time()
        folders = [f for f in sorted(self.root.glob("*s/*/*")) if f.is_dir() and f.parts[-3] in ("models", "datasets")]
        for folder in folders:
            scan_repo(folder, f"{folder.parts[-2]}/{folder.parts[-1]}")
        self.log(f"indexed {len(folders)} repositories under {self.root} in {time.time() - started:.1f} s")

    @property
    def endpoint(self) -> str:
        """The value for HF_ENDPOINT (MODELSCOPE_ENDPOINT for the ModelScope flavour)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def log(self, line: str) -> None:
        """Write one timestamped line to the log."""
        with self._log_lock:
            self._log_to.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self._log_to.flush()


@contextmanager
def serving(root: str | Path, log_to: TextIO | None = None,
            server_class: type[StandinServer] = StandinServer) -> Iterator[str]:
    """Serve ROOT on a free loopback port from a background thread; yield the endpoint URL."""
    server = server_class(Path(root), 0, log_to)
    thread = threading.Thread(target=server.serve_forever, name="hub-standin", daemon=True)
    thread.start()
    try:
        yield server.endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None, server_class: type[StandinServer] = StandinServer,
         description: str = __doc__.splitlines()[0]) -> None:
    """Command line: serve ROOT until killed, printing the HF_ENDPOINT (or MODELSCOPE_ENDPOINT) line first."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path, help="folder holding models/<owner>/<name> and datasets/<owner>/<name>")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--log", type=Path, help="append request lines here instead of stderr")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a folder")
    log_to = open(args.log, "a", encoding="utf-8") if args.log else None  # open as long as the server runs
    server = server_class(args.root, args.port, log_to)
    if args.port_file:
        # Written then renamed, so a script polling for the file never reads half a number.
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(server.server_address[1]))
        tmp.replace(args.port_file)
    print(f"{server.endpoint_variable}={server.endpoint}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
