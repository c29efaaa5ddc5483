"""A small HTTP server for the remote tests: honours single Range requests (Python's
http.server does not), counts requests and bytes, and can misbehave on purpose.

    with RangeServer(root) as server:       # serves files under root
        server.url("model.h5")              # http://127.0.0.1:PORT/model.h5
        server.requests, server.bytes_sent  # what the client cost
        server.latency = 0.05               # seconds added to every request
        server.mode["model.h5"] = "ignore-range" | "truncate" | 403 | 404 | "hang"
"""
import json
import os
import re
import socket
import threading
import urllib.parse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class RangeServer:
    def __init__(self, root):
        self.root, self.latency, self.mode = root, 0.0, {}
        self.requests, self.bytes_sent, self.log = 0, 0, []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):  # headers and body leave at once (no Nagle / delayed-ACK stalls)
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_HEAD(self):
                self.answer(head=True)

            def do_GET(self):
                self.answer(head=False)

            def do_POST(self):
                self.answer(head=False)

            def gcs(self):
                """Just enough of Google Cloud Storage's JSON API for gcsfs (STORAGE_EMULATOR_HOST
                pointed here): object metadata; downloads go through answer() with Range."""
                url = urllib.parse.urlparse(self.path)
                m = re.match(r"^/storage/v1/b/([^/]+)/o/(.+)$", url.path)
                if not m:
                    return None
                bucket, name = m[1], urllib.parse.unquote(m[2])
                path = os.path.join(server.root, bucket, name)
                if not os.path.isfile(path):
                    return self.json(404, {"error": {"code": 404, "message": "No such object"}})
                st = os.stat(path)
                return self.json(200, {"kind": "storage#object", "bucket": bucket, "name": name,
                                       "size": str(st.st_size), "generation": str(st.st_mtime_ns),
                                       "etag": f"{st.st_mtime_ns:x}", "updated": "2026-01-01T00:00:00Z",
                                       "contentType": "application/octet-stream"})

            def hub(self):
                """Just enough of the Hugging Face Hub's API for huggingface_hub's HfFileSystem
                (HF_ENDPOINT pointed here): repo info, paths-info, tree and resolve."""
                url = urllib.parse.urlparse(self.path)
                m = re.match(r"^/api/models/([^/]+)/([^/]+)(?:/(revision|paths-info|tree)/([^/]+)(/.*)?)?$",
                             url.path)
                if not m:
                    return None
                org, repo, what, _rev, rest = m.groups()
                base = os.path.join(server.root, org, repo)
                if not os.path.isdir(base):
                    return self.json(404, {"error": "Repository not found"})
                files = sorted(os.path.relpath(os.path.join(r, f), base) for r, _, fs in os.walk(base) for f in fs)
                entry = lambda p: {"type": "file", "path": p, "size": os.path.getsize(os.path.join(base, p)),  # noqa
                                   "oid": "%040x" % os.stat(os.path.join(base, p)).st_mtime_ns}
                if what == "paths-info":
                    length = int(self.headers.get("Content-Length") or 0)
                    form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                    wanted = form.get("paths", [])
                    if not wanted and self.headers.get("Content-Type", "").startswith("application/json"):
                        wanted = json.loads(self.rfile.read(0) or b"{}").get("paths", [])
                    return self.json(200, [entry(p) for p in wanted if p in files])
                if what == "tree":
                    prefix = (rest or "").strip("/")
                    return self.json(200, [entry(p) for p in files if p.startswith(prefix)])
                return self.json(200, {"id": f"{org}/{repo}", "sha": "0" * 40,
                                       "siblings": [{"rfilename": p} for p in files]})

            def json(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True

            def answer(self, head):
                with server.lock:
                    server.requests += 1
                    server.log.append((self.command, self.path, self.headers.get("Range")))
                if server.latency:
                    time.sleep(server.latency)
                if self.hub() or self.gcs():
                    return
                name = self.path.lstrip("/").split("?")[0]
                download = re.match(r"^download/storage/v1/b/([^/]+)/o/([^?]+)", name)
                if download:  # a GCS media download: BUCKET/OBJECT
                    name = download[1] + "/" + urllib.parse.unquote(download[2])
                hub = re.match(r"^([^/]+)/([^/]+)/resolve/[^/]+/(.+)$", name)
                if hub:  # a Hub download URL: ORG/REPO/resolve/REVISION/PATH
                    name = "/".join(hub.groups())
                mode = server.mode.get(name)
                path = os.path.join(server.root, name)
                if mode in (403, 404) or not os.path.isfile(path):
                    self.send_response(mode if mode in (403, 404) else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "hang":
                    time.sleep(30)
                size = os.path.getsize(path)
                m = RANGE.match(self.headers.get("Range") or "")
                with open(path, "rb") as fh:
                    if m and mode != "ignore-range" and not head:
                        start = int(m[1])
                        end = min(size - 1, int(m[2])) if m[2] else size - 1
                        fh.seek(start)
                        body = fh.read(end + 1 - start)
                        self.send_response(206)
                        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                    else:
                        body = b"" if head else fh.read()
                        self.send_response(200)
                self.send_header("Accept-Ranges", "none" if mode == "ignore-range" else "bytes")
                self.send_header("Content-Length", str(size if head or not m or mode == "ignore-range" else len(body)))
                self.send_header("ETag", f'"{os.stat(path).st_mtime_ns:x}"')
                if hub:
                    self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                if head:
                    return
                if mode == "truncate":
                    body = body[: len(body) // 2]
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return
                with server.lock:
                    server.bytes_sent += len(body)
                if mode == "truncate":
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def reset(self):
        with self.lock:
            self.requests, self.bytes_sent, self.log = 0, 0, []

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
