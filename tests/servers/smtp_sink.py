#!/usr/bin/env python3
"""SMTP sink for sealwatch tests: a real ESMTP server (aiosmtpd) that accepts every message and
stores it for the test to read back.

Spool layout (ID = <unix time ns>-<sequence>, so names sort by arrival):

    SPOOL/messages/ID.eml            the DATA bytes exactly as received (dot-unstuffed, CRLF kept)
    SPOOL/messages/ID.json           envelope: mail_from, rcpt_tos, options, helo, tls, auth_user, ...
    SPOOL/by-rcpt/RCPT/ID.eml|json   hard links per envelope recipient (lower-cased), so a test that
                                     sends to a unique address only looks at its own mail

The .json is renamed into place before the .eml: once ID.eml exists, ID.json does too.

Listeners: --listen (plain; offers STARTTLS when --cert is given) and --smtps-listen (implicit
TLS). AUTH PLAIN/LOGIN is offered everywhere but never required; with --auth user:pass only those
credentials are accepted (535 otherwise). Recipients whose local part starts with "reject-" get
550, with "tempfail-" 451, to exercise a client's error handling.

Needs aiosmtpd (Debian 12: python3-aiosmtpd, 1.4).
"""
import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, spool):
        self.spool = spool
        self.seq = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("reject-"):
            return "550 5.1.1 <%s>: recipient rejected (test sink)" % address
        if local.startswith("tempfail-"):
            return "451 4.3.0 <%s>: temporary failure (test sink)" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        mid = "%d-%06d" % (time.time_ns(), next(self.seq))
        ssl_obj = server.transport.get_extra_info("ssl_object") if server.transport else None
        meta = {
            "id": mid,
            "mail_from": envelope.mail_from,
            "mail_options": list(envelope.mail_options),
            "rcpt_tos": list(envelope.rcpt_tos),
            "rcpt_options": list(envelope.rcpt_options),
            "helo": session.host_name,
            "peer": list(session.peer[:2]) if session.peer else None,
            "port": server.transport.get_extra_info("sockname")[1] if server.transport else None,
            "tls": ssl_obj.version() if ssl_obj is not None else None,
            "tls_mode": getattr(server, "sink_tls_mode", None) if ssl_obj is not None else None,
            "auth_user": _auth_user(session),
            "size": len(raw),
            "received_at": time.time(),
        }
        if meta["tls_mode"] is None and ssl_obj is not None:
            meta["tls_mode"] = "starttls"
        tmp = os.path.join(self.spool, "tmp")
        msgs = os.path.join(self.spool, "messages")
        os.makedirs(tmp, exist_ok=True)       # again for every message: tests may wipe the spool
        os.makedirs(msgs, exist_ok=True)
        t_eml, t_json = os.path.join(tmp, mid + ".eml"), os.path.join(tmp, mid + ".json")
        with open(t_eml, "wb") as f:
            f.write(raw)
        with open(t_json, "w") as f:
            json.dump(meta, f, indent=1)
        eml, js = os.path.join(msgs, mid + ".eml"), os.path.join(msgs, mid + ".json")
        os.rename(t_json, js)
        os.rename(t_eml, eml)
        for rcpt in sorted({r.lower() for r in envelope.rcpt_tos}):
            d = os.path.join(self.spool, "by-rcpt", rcpt.replace("/", "_").lstrip(".") or "_")
            os.makedirs(d, exist_ok=True)
            os.link(js, os.path.join(d, mid + ".json"))
            os.link(eml, os.path.join(d, mid + ".eml"))
        print("%s from=<%s> to=%s size=%d tls=%s auth=%s" % (
            mid, envelope.mail_from, ",".join(envelope.rcpt_tos), len(raw), meta["tls"],
            meta["auth_user"]), flush=True)
        return "250 2.0.0 OK queued as %s" % mid


def _auth_user(session):
    data = getattr(session, "auth_data", None)
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


def authenticator(creds):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = not creds or creds.get(user) == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return check


def host_port(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(a):
    creds = dict(c.split(":", 1) for c in a.auth)
    sink = Sink(a.spool)
    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    loop = asyncio.get_running_loop()

    def factory(starttls_ctx, mode):
        def make():
            smtp = SMTP(
                sink,
                hostname=a.hostname,        # no getfqdn() DNS lookup
                ident="sealwatch test sink",
                tls_context=starttls_ctx,
                require_starttls=False,
                auth_required=False,
                auth_require_tls=False,     # implicit TLS is invisible to aiosmtpd's check
                authenticator=authenticator(creds),
                data_size_limit=64 * 1024 * 1024,
                enable_SMTPUTF8=True,
                loop=loop,
            )
            smtp.sink_tls_mode = mode
            return smtp
        return make

    servers = [await loop.create_server(factory(tls, None), *host_port(a.listen), reuse_address=True)]
    if a.smtps_listen:
        if tls is None:
            sys.exit("--smtps-listen needs --cert/--key")
        servers.append(await loop.create_server(factory(None, "implicit"), *host_port(a.smtps_listen),
                                                ssl=tls, reuse_address=True))
    if a.pidfile:   # written once listening: start.sh waits for it
        with open(a.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.pidfile + ".tmp", a.pidfile)
    print("smtp sink on %s (STARTTLS: %s), smtps on %s, spool %s" % (
        a.listen, "yes" if tls else "no", a.smtps_listen or "-", a.spool), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    print("smtp sink stopped", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spool", required=True)
    ap.add_argument("--listen", default="127.0.0.1:2525")
    ap.add_argument("--smtps-listen")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth", action="append", default=[], help="user:pass (repeatable)")
    ap.add_argument("--hostname", default="sink.example.test")
    ap.add_argument("--pidfile")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.makedirs(a.spool, exist_ok=True)
    asyncio.run(serve(a))


if __name__ == "__main__":
    main()
