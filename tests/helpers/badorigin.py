#!/usr/bin/env python3
"""An HTTP origin that answers range requests wrongly on purpose, to test that aheadfs
verifies every answer. Serves one file. Each request reads the mode
from MODEFILE, so a test can switch it while a mount is up:

  good    206 with the asked range
  shift   206 with the range one block (64 KiB) further on, labelled as such
  total   206 with the asked bytes but another total size in Content-Range
  short   206, Content-Length of the whole range, half the bytes, then the connection closes
  etag    206 with the asked bytes under another ETag (If-Range ignored)
  nohead  501 Not Implemented to HEAD (GETs as good)

Prints "port=N" once listening; exits after --max-seconds.
usage: badorigin.py FILE MODEFILE [--max-seconds S]"""
import http.server
import os
import re
import sys
import threading

SHIFT = 65536


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def headers_common(self, etag='"v1"'):
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT")
        self.send_header("Accept-Ranges", "bytes")

    def mode(self):
        with open(self.server.modefile) as f:
            return f.read().strip()

    def do_HEAD(self):
        if self.mode() == "nohead":
            self.send_response(501)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.headers_common()
        self.send_header("Content-Length", str(self.server.size))
        self.end_headers()

    def do_GET(self):
        size = self.server.size
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if not m:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first, last = int(m.group(1)), min(int(m.group(2)), size - 1)
        mode = self.mode()
        shown_first, shown_last, total, etag = first, last, size, '"v1"'
        if mode == "shift":
            d = SHIFT if last + SHIFT < size else -SHIFT
            shown_first, shown_last = first + d, last + d
        elif mode == "total":
            total = size + SHIFT
        elif mode == "etag":
            etag = '"v2"'
        with open(self.server.path, "rb") as f:
            f.seek(shown_first)
            body = f.read(shown_last - shown_first + 1)
        self.send_response(206)
        self.headers_common(etag)
        self.send_header("Content-Range", f"bytes {shown_first}-{shown_last}/{total}")
        self.send_header("Content-Length", str(len(body)))
        if mode == "short":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(body)


def main():
    args = sys.argv[1:]
    limit = 300.0
    if "--max-seconds" in args:
        i = args.index("--max-seconds")
        limit = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.path, server.modefile = args
    server.size = os.path.getsize(server.path)
    threading.Timer(limit, server.shutdown).start()
    print(f"port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
