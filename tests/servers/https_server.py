#!/usr/bin/env python3
"""Static HTTPS server for sealwatch tests (stdlib only), e.g. for MTA-STS policies.

GET https://HOST/PATH serves the first existing file of
    WEBROOT1/HOST/PATH, WEBROOT2/HOST/PATH, ..., WEBROOT1/_default/PATH, ...
where HOST is the Host header without port, lower-cased. So with --webroot tests/servers/https/www
https://mta-sts.example.test/.well-known/mta-sts.txt is
tests/servers/https/www/mta-sts.example.test/.well-known/mta-sts.txt.
Directories are never listed (404). .txt is served as text/plain. Requests are logged to stderr.
"""
import argparse
import http.server
import os
import posixpath
import signal
import socketserver
import ssl
import sys
import threading
import urllib.parse


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sealwatch-test-https"
    sys_version = ""
    webroots = []
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                          **{".txt": "text/plain; charset=utf-8"})

    def translate_path(self, path):
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        rel = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        parts = [p for p in posixpath.normpath(rel).split("/") if p not in ("", ".", "..")]
        hosts = [host] if host and "/" not in host and not host.startswith(".") else []
        for h in hosts + ["_default"]:
            for root in self.webroots:
                cand = os.path.join(root, h, *parts)
                if os.path.isfile(cand):
                    return cand
        return os.path.join(self.webroots[0], "_missing_", *parts)

    def list_directory(self, path):
        self.send_error(404, "Not Found")
        return None

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404, "Not Found")
            return None
        return super().send_head()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def finish_request(self, request, client_address):
        # handshake in the worker thread: a stalled client never blocks accept()
        request.settimeout(15)
        request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # readiness probes and clients that reject the certificate: one line, no traceback
        print("connection from %s:%s failed: %r" % (client_address[0], client_address[1],
                                                    sys.exc_info()[1]), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webroot", action="append", required=True, help="repeatable; searched in order")
    ap.add_argument("--listen", action="append", default=[], help="host:port (repeatable)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--pidfile")
    a = ap.parse_args()

    Handler.webroots = [os.path.abspath(w) for w in a.webroot]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    servers = []
    for listen in a.listen or ["127.0.0.1:8443"]:
        host, _, port = listen.rpartition(":")
        srv = Server((host or "127.0.0.1", int(port)), Handler)
        srv.tls = ctx
        servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    if a.pidfile:   # written once listening: start.sh waits for it
        with open(a.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.pidfile + ".tmp", a.pidfile)
    print("https on %s serving %s" % (", ".join(a.listen), ", ".join(Handler.webroots)), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for srv in servers:
        srv.shutdown()


if __name__ == "__main__":
    main()
