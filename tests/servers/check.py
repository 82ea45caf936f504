#!/usr/bin/env python3
"""Smoke test of the loopback test servers (stdlib only): tests/servers/start.sh first, then

    python3 tests/servers/check.py

Reads the SEALWATCH_TEST_* variables from the environment, or else from
$SEALWATCH_TEST_SERVERS_STATE/servers.env (default /tmp/sealwatch-test-servers/servers.env).
Exits non-zero if anything fails.
"""
import concurrent.futures
import glob
import http.client
import imaplib
import json
import os
import random
import shlex
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid


def load_env():
    env = dict(os.environ)
    if "SEALWATCH_TEST_CA" not in env:
        state = env.get("SEALWATCH_TEST_SERVERS_STATE", "/tmp/sealwatch-test-servers")
        path = os.path.join(state, "servers.env")
        if not os.path.exists(path):
            sys.exit("no %s: run tests/servers/start.sh first" % path)
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("export "):
                    k, _, v = line[len("export "):].partition("=")
                    env[k] = shlex.split(v)[0] if v else ""
    return env


E = load_env()
CTX = ssl.create_default_context(cafile=E["SEALWATCH_TEST_CA"])
TLS_NAME = E.get("SEALWATCH_TEST_TLS_NAME", "localhost")
TAG = uuid.uuid4().hex[:10]
results = {"ok": 0, "fail": 0}


def check(name, cond, detail=""):
    results["ok" if cond else "fail"] += 1
    print(("ok   " if cond else "FAIL ") + name + (("   [%s]" % (detail,)) if detail != "" else ""), flush=True)
    return cond


def section(name, fn):
    t = time.time()
    print("== %s" % name, flush=True)
    try:
        fn()
    except Exception as e:  # a crash fails the section, the other sections still run
        check("%s: unexpected %s: %s" % (name, type(e).__name__, e), False)
    print("   (%.2fs)" % (time.time() - t), flush=True)


# ---------------------------------------------------------------- IMAP
IMAP_HOST = E["SEALWATCH_TEST_IMAP_HOST"]
IMAP_PORT = int(E["SEALWATCH_TEST_IMAP_PORT"])
IMAPS_PORT = int(E["SEALWATCH_TEST_IMAPS_PORT"])
IMAP_PW = E["SEALWATCH_TEST_IMAP_PASSWORD"]


def report_mail(n):
    return (b"From: noreply-dmarc-support@google.com\r\n"
            b"To: dmarc@reports.test\r\n"
            b"Subject: Report domain: example.test Submitter: google.com Report-ID: " + n.encode() + b"\r\n"
            b"Message-ID: <" + n.encode() + b"@check.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: application/zip\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n")


def imap_connect(mode):
    if mode == "plain":
        return imaplib.IMAP4(IMAP_HOST, IMAP_PORT, timeout=10)
    if mode == "starttls":
        m = imaplib.IMAP4(IMAP_HOST, IMAP_PORT, timeout=10)
        # TLS name check against the cert: connect to 127.0.0.1, verify as "localhost"
        m.host = TLS_NAME
        m.starttls(ssl_context=CTX)
        return m
    return imaplib.IMAP4_SSL(TLS_NAME, IMAPS_PORT, ssl_context=CTX, timeout=10)


def imap_mode(mode):
    user = "check-%s-%s@example.test" % (mode, TAG)
    m = imap_connect(mode)
    check("imap %s: login as new user %s" % (mode, user), m.login(user, IMAP_PW)[0] == "OK")
    check("imap %s: empty INBOX" % mode, m.select("INBOX") == ("OK", [b"0"]))
    box, dest = "DMARC/example.test", "Processed/2024.06"
    check("imap %s: create %s (dots and / in names)" % (mode, box), m.create(box)[0] == "OK")
    check("imap %s: create %s" % (mode, dest), m.create(dest)[0] == "OK")
    msgs = [report_mail("%s-%d" % (TAG, i)) for i in range(3)]
    for body in msgs:
        assert m.append(box, None, None, body)[0] == "OK"
    typ, d = m.select(box)
    check("imap %s: append 3 + select" % mode, typ == "OK" and d == [b"3"], d)
    typ, d = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    bodies = [x[1] for x in d if isinstance(x, tuple)]
    check("imap %s: fetch byte-exact" % mode, typ == "OK" and bodies == msgs)
    typ, d = m.uid("STORE", "1", "+FLAGS", "(\\Seen $SealwatchDone)")
    check("imap %s: store \\Seen + keyword" % mode, typ == "OK" and b"$SealwatchDone" in d[0], d)
    typ, d = m.uid("MOVE", "2", dest)
    check("imap %s: uid move" % mode, typ == "OK", d)
    typ, _ = m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    typ2, d = m.expunge()
    check("imap %s: expunge" % mode, typ == "OK" and typ2 == "OK" and d != [None], d)
    typ, d = m.select(box)
    check("imap %s: 1 message left" % mode, d == [b"1"], d)
    typ, d = m.uid("FETCH", "1:*", "(FLAGS)")
    check("imap %s: flags persisted" % mode, b"\\Seen" in d[0] and b"$SealwatchDone" in d[0], d)
    typ, d = m.select(dest, readonly=True)
    check("imap %s: moved message in %s" % (mode, dest), d == [b"1"], d)
    m.logout()


def imap_misc():
    try:
        imaplib.IMAP4(IMAP_HOST, IMAP_PORT, timeout=10).login("check-%s@example.test" % TAG, "wrong")
        check("imap: wrong password rejected", False)
    except imaplib.IMAP4.error as e:
        check("imap: wrong password rejected", "AUTHENTICATIONFAILED" in str(e), e)
    m = imap_connect("plain")
    check("imap: fixed user test/testpass", m.login("test", "testpass")[0] == "OK")
    m.logout()

    # 40 concurrent sessions of one user (Dovecot's default limit is 10 per user+IP)
    user = "check-many-%s@example.test" % TAG

    def one(i):
        c = imap_connect("imaps" if i % 2 else "plain")
        c.login(user, IMAP_PW)
        c.select("INBOX")
        return c
    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        conns = list(ex.map(one, range(40)))
    check("imap: 40 concurrent sessions of one user", len(conns) == 40)
    for c in conns:
        c.logout()

    # seeding with doveadm save (as tests do), then reading it over IMAP
    user = "check-seed-%s@example.test" % TAG
    dove = shlex.split(E["SEALWATCH_TEST_DOVEADM"])
    body = report_mail("seed-" + TAG)
    r = subprocess.run(dove + ["mailbox", "create", "-u", user, "Reports/dmarc"], capture_output=True)
    check("doveadm mailbox create", r.returncode == 0, r.stderr.decode().strip())
    t = time.time()
    for box in ("INBOX", "Reports/dmarc"):
        r = subprocess.run(dove + ["save", "-u", user, "-m", box], input=body, capture_output=True)
        check("doveadm save -m %s" % box, r.returncode == 0, r.stderr.decode().strip())
    saved = time.time() - t
    m = imap_connect("plain")
    m.login(user, IMAP_PW)
    for box in ("INBOX", "Reports/dmarc"):
        typ, d = m.select(box)
        typ, f = m.fetch("1", "(BODY.PEEK[])")
        check("imap: sees doveadm-seeded %s byte-exact" % box, d == [b"1"] and f[0][1] == body, d)
    m.logout()
    root = E["SEALWATCH_TEST_MAILDIR_ROOT"]
    d = os.path.join(root, user, "Maildir", "Reports", "dmarc")   # LAYOUT=fs: a real subdirectory
    files = os.listdir(os.path.join(d, "new")) + os.listdir(os.path.join(d, "cur"))
    check("maildir: message file under $SEALWATCH_TEST_MAILDIR_ROOT/<user>/Maildir/Reports/dmarc", len(files) == 1)
    print("   (doveadm save: %.0f ms each)" % (saved * 500), flush=True)


# ---------------------------------------------------------------- SMTP
SMTP_HOST = E["SEALWATCH_TEST_SMTP_HOST"]
SMTP_PORT = int(E["SEALWATCH_TEST_SMTP_PORT"])
SMTPS_PORT = int(E["SEALWATCH_TEST_SMTPS_PORT"])
SPOOL = E["SEALWATCH_TEST_SMTP_SPOOL"]


def smtp_all():
    rcpt = "digest-%s@example.test" % TAG
    body = ("From: sealwatch@example.test\r\nTo: %s\r\nSubject: weekly digest %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            ".leading dot survives\r\nend\r\n" % (rcpt, TAG)).encode()
    user, pw = E["SEALWATCH_TEST_SMTP_USER"], E["SEALWATCH_TEST_SMTP_PASSWORD"]

    s = smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=10)
    s.sendmail("sealwatch@example.test", [rcpt], body)
    s.quit()
    check("smtp plain: sent", True)

    s = smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=10)
    s._host = TLS_NAME    # verify the certificate as "localhost"
    s.starttls(context=CTX)
    s.login(user, pw)
    s.sendmail("sealwatch@example.test", [rcpt], body)
    s.quit()
    check("smtp starttls + auth: sent", True)

    s = smtplib.SMTP_SSL(TLS_NAME, SMTPS_PORT, context=CTX, timeout=10)
    s.login(user, pw)
    s.sendmail("sealwatch@example.test", [rcpt], body)
    s.quit()
    check("smtp implicit tls + auth: sent", True)

    s = smtplib.SMTP_SSL(TLS_NAME, SMTPS_PORT, context=CTX, timeout=10)
    try:
        s.login(user, "wrong")
        check("smtp: wrong AUTH rejected", False)
    except smtplib.SMTPAuthenticationError as e:
        check("smtp: wrong AUTH rejected with 535", e.smtp_code == 535, e.smtp_code)
    try:
        s.sendmail("sealwatch@example.test", ["reject-%s@example.test" % TAG], body)
        check("smtp: reject- recipient refused", False)
    except smtplib.SMTPRecipientsRefused as e:
        code = list(e.recipients.values())[0][0]
        check("smtp: reject- recipient refused with 550", code == 550, code)
    try:
        s.sendmail("sealwatch@example.test", ["tempfail-%s@example.test" % TAG], body)
        check("smtp: tempfail- recipient deferred", False)
    except smtplib.SMTPRecipientsRefused as e:
        code = list(e.recipients.values())[0][0]
        check("smtp: tempfail- recipient deferred with 451", code == 451, code)
    s.quit()

    d = os.path.join(SPOOL, "by-rcpt", rcpt)
    files = sorted(glob.glob(os.path.join(d, "*.eml")))
    check("smtp: 3 messages in %s" % d, len(files) == 3, len(files))
    check("smtp: raw bytes exact", all(open(f, "rb").read() == body for f in files))
    metas = [json.load(open(f[:-4] + ".json")) for f in files]
    got = [(m["tls_mode"], m["tls"] is not None, m["auth_user"], m["rcpt_tos"]) for m in metas]
    want = [(None, False, None, [rcpt]), ("starttls", True, user, [rcpt]), ("implicit", True, user, [rcpt])]
    check("smtp: envelope json (tls mode, auth user, rcpts)", got == want, got)
    check("smtp: also in spool/messages", all(os.path.exists(os.path.join(SPOOL, "messages", os.path.basename(f)))
                                              for f in files))


# ---------------------------------------------------------------- DNS
def dns_query(name, qtype, tcp=False):
    host, port = E["SEALWATCH_TEST_DNS"].rsplit(":", 1)
    qid = random.randint(0, 0xFFFF)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", {"A": 1, "NS": 2, "SOA": 6, "MX": 15, "TXT": 16}[qtype], 1)
    if tcp:
        with socket.create_connection((host, int(port)), timeout=3) as s:
            s.sendall(struct.pack(">H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    break
                buf += chunk
            r = buf[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(q, (host, int(port)))
            r, _ = s.recvfrom(65535)
    rid, flags, qd, an = struct.unpack(">HHHH", r[:8])
    assert rid == qid
    pos = 12

    def skip_name(p):
        while True:
            ln = r[p]
            if ln == 0:
                return p + 1
            if ln & 0xC0 == 0xC0:
                return p + 2
            p += ln + 1
    for _ in range(qd):
        pos = skip_name(pos) + 4
    answers = []
    for _ in range(an):
        pos = skip_name(pos)
        typ, _cls, _ttl, rdlen = struct.unpack(">HHIH", r[pos:pos + 10])
        rdata = r[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        if typ == 16:   # TXT: concatenated character-strings
            out, i = b"", 0
            while i < len(rdata):
                out += rdata[i + 1:i + 1 + rdata[i]]
                i += 1 + rdata[i]
            answers.append(out.decode())
        elif typ == 1:
            answers.append(socket.inet_ntoa(rdata))
        else:
            answers.append(rdata)
    return flags & 0xF, answers   # rcode: 0 NOERROR, 3 NXDOMAIN, 5 REFUSED


def dns_all():
    for tcp in (False, True):
        p = "tcp" if tcp else "udp"
        rc, a = dns_query("example.test", "SOA", tcp)
        check("dns %s: SOA example.test" % p, rc == 0 and len(a) == 1, (rc, len(a)))
        rc, a = dns_query("_dmarc.example.test", "TXT", tcp)
        check("dns %s: TXT _dmarc.example.test" % p, rc == 0 and a and a[0].startswith("v=DMARC1;"), a)
        rc, a = dns_query("mta-sts.example.test", "A", tcp)
        check("dns %s: A mta-sts.example.test" % p, rc == 0 and a == ["127.0.0.1"], a)
    rc, a = dns_query("nope-%s.example.test" % TAG, "TXT")
    check("dns: NXDOMAIN inside the zone", rc == 3, rc)
    rc, a = dns_query("example.org", "A")
    check("dns: REFUSED outside the served zones", rc == 5, rc)
    host, port = E["SEALWATCH_TEST_DNS"].rsplit(":", 1)
    try:
        out = subprocess.run(["dig", "+short", "-p", port, "@" + host, "TXT", "_smtp._tls.example.test"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        check("dns: dig TXT _smtp._tls.example.test", out.startswith('"v=TLSRPTv1;'), out)
    except FileNotFoundError:
        print("   (dig not installed: skipped)")


# ---------------------------------------------------------------- HTTPS
def https_get(host, path):
    raw = socket.create_connection(("127.0.0.1", int(E["SEALWATCH_TEST_HTTPS_PORT"])), timeout=5)
    conn = http.client.HTTPConnection(host)
    conn.sock = CTX.wrap_socket(raw, server_hostname=host)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def https_all():
    resp, data = https_get("mta-sts.example.test", "/.well-known/mta-sts.txt")
    check("https: mta-sts.example.test policy 200 text/plain",
          resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/plain"), resp.status)
    check("https: policy body", data.startswith(b"version: STSv1\n"), data[:30])
    resp, _ = https_get("mta-sts.example.test", "/.well-known/nothing-here")
    check("https: 404 for a missing file", resp.status == 404, resp.status)
    host = "check-%s.reports.test" % TAG   # the wildcard SAN covers one label only
    d = os.path.join(E["SEALWATCH_TEST_HTTPS_WEBROOT"], host, ".well-known")
    os.makedirs(d)
    try:
        with open(os.path.join(d, "mta-sts.txt"), "w") as f:
            f.write("version: STSv1\nmode: testing\nmx: *.reports.test\nmax_age: 60\n")
        resp, data = https_get(host, "/.well-known/mta-sts.txt")
        check("https: run-time fixture under $SEALWATCH_TEST_HTTPS_WEBROOT", resp.status == 200 and b"testing" in data)
    finally:
        for f in (os.path.join(d, "mta-sts.txt"),):
            os.remove(f)
        os.rmdir(d)
        os.rmdir(os.path.dirname(d))
    try:
        https_get("mta-sts.unlisted.invalid", "/")
        check("https: certificate not valid for a name outside the SANs", False)
    except ssl.SSLCertVerificationError:
        check("https: certificate not valid for a name outside the SANs", True)


t0 = time.time()
for mode in ("plain", "starttls", "imaps"):
    section("IMAP %s" % mode, lambda mode=mode: imap_mode(mode))
section("IMAP misc", imap_misc)
section("SMTP", smtp_all)
section("DNS", dns_all)
section("HTTPS", https_all)
print("total %.1fs" % (time.time() - t0))
print("check.py: %d passed, %d failed" % (results["ok"], results["fail"]))
sys.exit(1 if results["fail"] else 0)
