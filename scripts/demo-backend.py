#!/usr/bin/python3
"""A tiny demo backend for `make run`: answers any GET with a small page
saying which backend answered, and /healthz with "ok".

    scripts/demo-backend.py NAME PORT       (listens on 127.0.0.1:PORT)

Standard library only; HTTP/1.1 with keep-alive so surety's upstream
connection reuse is visible (the page shows the connection's client port)."""

import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(name, port):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "surety-demo/1"

        def _send(self, status, ctype, body, head_only=False):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _answer(self, head_only):
            if self.path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n", head_only)
                return
            accept = self.headers.get("Accept", "")
            rid = self.headers.get("X-Request-Id", "-")
            xff = self.headers.get("X-Forwarded-For", "-")
            if "text/html" in accept:
                body = ("<!doctype html>\n<html><head><meta charset=utf-8><title>%s</title></head>"
                        "<body><h1>Answered by backend %s</h1>"
                        "<p>127.0.0.1:%d, path <code>%s</code></p>"
                        "<p>X-Request-Id <code>%s</code>, X-Forwarded-For <code>%s</code>, "
                        "upstream connection from port %d</p></body></html>\n"
                        % (html.escape(name), html.escape(name), port, html.escape(self.path),
                           html.escape(rid), html.escape(xff), self.client_address[1]))
                self._send(200, "text/html; charset=utf-8", body.encode(), head_only)
            else:
                body = ("backend %s (127.0.0.1:%d) answered %s %s\n"
                        "x-request-id: %s\nx-forwarded-for: %s\nupstream connection port: %d\n"
                        % (name, port, self.command, self.path, rid, xff,
                           self.client_address[1]))
                self._send(200, "text/plain; charset=utf-8", body.encode(), head_only)

        def do_GET(self):
            self._answer(False)

        def do_HEAD(self):
            self._answer(True)

        def log_message(self, fmt, *args):
            sys.stderr.write("[%s] %s\n" % (name, fmt % args))

    return Handler


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: %s NAME PORT" % sys.argv[0])
    name, port = sys.argv[1], int(sys.argv[2])
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), make_handler(name, port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
