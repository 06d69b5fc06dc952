#!/usr/bin/env python3
"""e2e_helper.py - small loopback-only peers for tests/e2e/e2e.sh (standard library only).

Servers print one line "ready PORT" on stdout once every socket is bound, then run until killed:
  blackhole PORT              UDP and TCP on 127.0.0.1:PORT; accepts, reads and never answers (a dead resolver)
  origin reset|stall|garbage PORT
                              TCP on 127.0.0.1 and ::1: reset = accept and close with RST (SO_LINGER 0);
                              stall = accept, read and never answer; garbage = accept and send non-TLS bytes
  http10 PORT CERTCHAIN KEY   TLS on 127.0.0.1 and ::1: an HTTP/1.0 origin; reads a request head, answers
                              "HTTP/1.0 200 OK" with a body delimited by its close
  wsecho PORT CERTCHAIN KEY   TLS on 127.0.0.1 and ::1: a WebSocket echo server (python3-websockets)
  eofecho PORT CERTCHAIN KEY  TLS on 127.0.0.1 and ::1: reads until the client's EOF (close_notify or FIN), then
                              answers "LENGTH SHA256\n" and closes - it only works through a proxy that passes a
                              half-close on and keeps the other direction open

Clients print one JSON object on stdout:
  ws HOST PORT URL [--early]  a WebSocket client through the proxy in absolute-form: the upgrade request (with
                              --early, the first frame in the same write, before the 101), then a text frame,
                              reading the echo of each; reports the status line, Sec-WebSocket-Accept check, echoes
  raw HOST PORT [--send FILE] [--dribble SECONDS] [--half-close] [--out FILE] [--strip-head] [--timeout S]
                              connect, send FILE (byte by byte with --dribble), optionally shut down the write
                              side, read until EOF; reports local port, bytes, eof/reset/timeout, elapsed seconds;
                              --out writes what was received (--strip-head: only what follows the first CRLFCRLF)
  pipeline HOST PORT --req METHOD URL [--req ...] [--pipelined] [--timeout S]
                              several proxy requests on one connection (absolute-form), all written at once with
                              --pipelined, else one after the other; parses each response (Content-Length,
                              chunked, HEAD, 1xx/204/304) and reports status, length and body sha256 of each,
                              and whether the proxy kept the connection open
"""
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time


def ready(port):
    sys.stdout.write("ready %d\n" % port)
    sys.stdout.flush()


def listen_both(port):
    socks = []
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        s.listen(64)
        socks.append(s)
    return socks


def serve_blackhole(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", port))
    t.listen(64)
    ready(port)
    held = []
    while True:
        r, _, _ = select.select([u, t] + held, [], [])
        for s in r:
            if s is u:
                u.recvfrom(65535)           # a query: never answered
            elif s is t:
                c, _ = t.accept()
                held.append(c)
            else:
                try:
                    data = s.recv(65535)
                except OSError:
                    data = b""
                if not data:
                    held.remove(s)
                    s.close()


def serve_origin(mode, port):
    lsocks = listen_both(port)
    ready(port)
    held = []
    while True:
        r, _, _ = select.select(lsocks + held, [], [])
        for s in r:
            if s in lsocks:
                c, _ = s.accept()
                if mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                elif mode == "garbage":
                    try:
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, this is not TLS\r\n" * 8)
                    except OSError:
                        pass
                    held.append(c)
                else:
                    held.append(c)
            else:
                try:
                    data = s.recv(65535)
                except OSError:
                    data = b""
                if not data:
                    held.remove(s)
                    s.close()


def eofecho_conn(ctx, c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        h, n = hashlib.sha256(), 0
        while True:
            try:
                d = s.recv(65536)
            except ssl.SSLZeroReturnError:
                d = b""
            if not d:
                break
            h.update(d)
            n += len(d)
        s.sendall(("%d %s\n" % (n, h.hexdigest())).encode())
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        s.close()
    except (OSError, ssl.SSLError):
        c.close()


def serve_eofecho(port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsocks = listen_both(port)
    ready(port)
    while True:
        r, _, _ = select.select(lsocks, [], [])
        for ls in r:
            c, _ = ls.accept()
            threading.Thread(target=eofecho_conn, args=(ctx, c), daemon=True).start()


def connect(host, port, timeout):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def client_raw(args):
    host, port = args[0], int(args[1])
    send, dribble, half, out, strip, timeout = None, 0.0, False, None, False, 10.0
    i = 2
    while i < len(args):
        a = args[i]
        if a == "--send":
            send = open(args[i + 1], "rb").read()
            i += 1
        elif a == "--dribble":
            dribble = float(args[i + 1])
            i += 1
        elif a == "--half-close":
            half = True
        elif a == "--strip-head":
            strip = True
        elif a == "--out":
            out = args[i + 1]
            i += 1
        elif a == "--timeout":
            timeout = float(args[i + 1])
            i += 1
        else:
            raise SystemExit("raw: unknown option " + a)
        i += 1
    res = {"connected": False, "sent": 0, "bytes": 0, "eof": False, "reset": False, "timeout": False,
           "send_error": None, "elapsed": 0.0, "closed_after_sent": None}
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = connect(host, port, timeout)
    res["connected"] = True
    res["local_port"] = s.getsockname()[1]
    got = bytearray()

    def pump(block):
        # read what is there (block: wait until EOF/deadline); returns False once the peer is done
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                res["timeout"] = True
                return False
            r, _, _ = select.select([s], [], [], left if block else 0)
            if not r:
                if block:
                    continue
                return True
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                res["reset"] = True
                return False
            except OSError:
                res["reset"] = True
                return False
            if not d:
                res["eof"] = True
                return False
            got.extend(d)

    alive = True
    if send:
        try:
            if dribble > 0:
                for k in range(len(send)):
                    s.sendall(send[k:k + 1])
                    res["sent"] += 1
                    alive = pump(False)
                    if not alive:
                        res["closed_after_sent"] = res["sent"]
                        break
                    time.sleep(dribble)
            else:
                s.sendall(send)
                res["sent"] = len(send)
        except (BrokenPipeError, ConnectionResetError) as e:
            res["send_error"] = type(e).__name__
            alive = False
    if alive and half:
        s.shutdown(socket.SHUT_WR)
    if alive:
        pump(True)
    else:
        # drain anything left after an early close
        try:
            s.settimeout(0.5)
            while True:
                d = s.recv(65536)
                if not d:
                    res["eof"] = True
                    break
                got.extend(d)
        except OSError:
            pass
    res["elapsed"] = round(time.monotonic() - t0, 3)
    res["bytes"] = len(got)
    res["head"] = bytes(got[:200]).decode("latin-1")
    if out:
        body = got
        if strip:
            k = got.find(b"\r\n\r\n")
            body = got[k + 4:] if k >= 0 else b""
        with open(out, "wb") as f:
            f.write(body)
    s.close()
    print(json.dumps(res))


class Reader:
    def __init__(self, sock, deadline):
        self.s, self.buf, self.deadline, self.eof = sock, bytearray(), deadline, False

    def fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.s.settimeout(left)
        d = self.s.recv(65536)
        if not d:
            self.eof = True
            raise EOFError("connection closed")
        self.buf.extend(d)

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n")
        ln = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def rest(self):
        try:
            while True:
                self.fill()
        except EOFError:
            pass
        d = bytes(self.buf)
        self.buf.clear()
        return d


def read_response(rd, method):
    status_line = rd.line()
    parts = status_line.split(b" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        ln = rd.line()
        if not ln:
            break
        k, _, v = ln.partition(b":")
        headers.setdefault(k.strip().lower().decode(), []).append(v.strip().decode("latin-1"))
    te = ",".join(headers.get("transfer-encoding", [])).lower()
    body = b""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif "chunked" in te:
        chunks = []
        while True:
            size = int(rd.line().split(b";")[0], 16)
            if size == 0:
                while rd.line():
                    pass
                break
            chunks.append(rd.exact(size))
            rd.exact(2)
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = rd.exact(int(headers["content-length"][0]))
    else:
        body = rd.rest()
    conn = ",".join(headers.get("connection", [])).lower()
    return {"status": status, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "body_head": body[:60].decode("latin-1"), "chunked": "chunked" in te,
            "content_length": headers.get("content-length", [None])[0],
            "proxy_status": headers.get("proxy-status", [None])[0], "connection": conn}


def client_pipeline(args):
    host, port = args[0], int(args[1])
    reqs, pipelined, timeout = [], False, 15.0
    i = 2
    while i < len(args):
        a = args[i]
        if a == "--req":
            reqs.append((args[i + 1], args[i + 2]))
            i += 2
        elif a == "--pipelined":
            pipelined = True
        elif a == "--timeout":
            timeout = float(args[i + 1])
            i += 1
        else:
            raise SystemExit("pipeline: unknown option " + a)
        i += 1
    deadline = time.monotonic() + timeout
    s = connect(host, port, timeout)
    rd = Reader(s, deadline)
    wire = []
    for method, url in reqs:
        hostpart = url.split("/")[2]
        wire.append(("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: e2e-pipeline\r\n\r\n" % (method, url, hostpart))
                    .encode())
    out = {"responses": [], "error": None, "open_after": None, "local_port": s.getsockname()[1]}
    try:
        if pipelined:
            s.sendall(b"".join(wire))
        for k, (method, url) in enumerate(reqs):
            if not pipelined:
                s.sendall(wire[k])
            out["responses"].append(read_response(rd, method))
        # still open? a closed connection reads EOF at once; an open one times out
        s.settimeout(0.2)
        try:
            d = s.recv(1)
            out["open_after"] = bool(d)
        except socket.timeout:
            out["open_after"] = True
        except OSError:
            out["open_after"] = False
    except Exception as e:  # noqa: BLE001 - reported to the caller
        out["error"] = "%s: %s" % (type(e).__name__, e)
    s.close()
    print(json.dumps(out))


def http10_conn(ctx, c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Origin: http10\r\n\r\nhttp10-origin body\n")
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        s.close()
    except (OSError, ssl.SSLError):
        c.close()


def serve_http10(port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsocks = listen_both(port)
    ready(port)
    while True:
        r, _, _ = select.select(lsocks, [], [])
        for ls in r:
            c, _ = ls.accept()
            threading.Thread(target=http10_conn, args=(ctx, c), daemon=True).start()


def serve_wsecho(port, cert, key):
    import asyncio
    import websockets

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    async def run():
        async with websockets.serve(echo, "127.0.0.1", port, ssl=ctx):
            ready(port)
            await asyncio.Future()

    asyncio.run(run())


def ws_frame(text):
    """A masked client text frame (RFC 6455 section 5.2)."""
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read_frame(s, buf):
    """Read one unmasked server frame; returns (text, rest)."""
    while len(buf) < 2:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        while len(buf) < 4:
            buf += s.recv(65536)
        n = struct.unpack(">H", buf[2:4])[0]
        off = 4
    while len(buf) < off + n:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    return buf[off:off + n].decode(), buf[off + n:]


def client_ws(args):
    import base64
    host, port, url = args[0], int(args[1]), args[2]
    early = "--early" in args
    key = base64.b64encode(os.urandom(16)).decode()
    hostport = url.split("/")[2]
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (url, hostport, key)).encode()
    s = connect(host, port, 10)
    res = {"local_port": s.getsockname()[1], "status": "", "accept_ok": False, "echoes": []}
    s.sendall(req + (ws_frame("early-frame") if early else b""))
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    res["status"] = lines[0]
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    for line in lines[1:]:
        if line.lower().startswith("sec-websocket-accept:"):
            res["accept_ok"] = line.split(":", 1)[1].strip() == want
    if lines[0].startswith("HTTP/1.1 101"):
        if early:
            text, buf = ws_read_frame(s, buf)
            res["echoes"].append(text)
        s.sendall(ws_frame("hello through daneproxy"))
        text, buf = ws_read_frame(s, buf)
        res["echoes"].append(text)
    s.close()
    print(json.dumps(res))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "blackhole":
        serve_blackhole(int(args[0]))
    elif cmd == "origin":
        serve_origin(args[0], int(args[1]))
    elif cmd == "eofecho":
        serve_eofecho(int(args[0]), args[1], args[2])
    elif cmd == "http10":
        serve_http10(int(args[0]), args[1], args[2])
    elif cmd == "wsecho":
        serve_wsecho(int(args[0]), args[1], args[2])
    elif cmd == "ws":
        client_ws(args)
    elif cmd == "raw":
        client_raw(args)
    elif cmd == "pipeline":
        client_pipeline(args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
