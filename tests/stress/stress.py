#!/usr/bin/env python3
"""stress.py - the network fuzzer and the soak test of daneproxy (standard library only).

tests/stress/stress.sh starts the origins and the proxy, writes an environment file (JSON) and runs one of:

  stress.py fuzz ENV.json [--seed N|random] [--cases N] [--per-round N] [--workers N] [--replay R:C]
                          [--case-file FILE] [--max-isolate N] [--max-failed-rounds N] [--ignore ORACLE,...]
      Mutated request heads, bodies (Content-Length and chunked), CONNECT + ClientHello sequences (real
      ClientHellos from Python's ssl over memory BIOs, then rewritten, split across records and TCP segments,
      truncated), pipelined requests on one connection, a hostile origin, port-mapped routes, and aborts at
      random points (close, RST via SO_LINGER 0, half-close). Cases run in rounds, several at a time; after each
      round every proxy-side connection must be gone and the proxy's file descriptors (/proc/PID/fd, not counting
      its resolver's TCP connections) back at the baseline within a deadline, the proxy alive and serving, and
      every log line valid JSON. Throughout, the oracles in ORACLES: answers are HTTP, nothing follows an answer
      to HEAD, no unsolicited 101, no handshake for a ClientHello that must be refused, and the origin never sees
      a smuggled request or the head of a request the proxy refused itself. Case C of round R is generated from
      the string "SEED/R/C" alone, so --replay R:C runs it again, alone, on a fresh proxy. A round that leaks is
      replayed case by case to find the culprit, which is then shrunk; the minimal case is printed (and written
      as JSON for --case-file).

  stress.py soak ENV.json [--rounds N] [--ops N] [--workers N] [--seed N] [--skip KIND,...]
      Rounds of mixed operations with their expected outcomes (SOAK_OPS: GETs, keep-alive bursts, POST bodies
      both framings, CONNECT + TLS verified against the local CA, routes, refusals: TLSA mismatch, bogus DNSSEC,
      a port outside the allow-list; clients that abort mid-body, mid-response and mid-handshake). After each
      round the descriptors must be back at the baseline; the proxy's RSS must stay within a tolerance of its
      value after the first round (not asserted for sanitizer builds: see RSS_* below).

  stress.py hostile PORT CERT KEY
      The hostile TLS origin: the path of each request names a way to answer badly (HOSTILE_MODES).

Both print one line per round and end with "stress: PASS" or "stress: FAIL" (exit 0 / 1; 2 for bad usage).
"""
import argparse
import json
import os
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# ------------------------------------------------------------------ the proxy process, seen from /proc


class Proxy:
    """Proxy - the daemon's pid, its listener port and what its descriptors are, from /proc."""

    def __init__(self, env):
        self.pid = env["pid"]
        self.port = env["proxy_port"]
        self.listen_ports = {self.port} | set(env.get("routes", {}).values())
        self.dns_port = env["dns_port"]
        self.origin_ports = set(env["origin_ports"])

    def alive(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                s = f.read()
        except OSError:
            return False
        return s[s.rindex(")") + 2] != "Z"

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        return int(ln.split()[1])
        except OSError:
            pass
        return -1

    def cpu_s(self):
        """cpu_s - user + system CPU seconds the proxy used so far."""
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                s = f.read()
        except OSError:
            return 0.0
        f = s[s.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def _tcp(self):
        """_tcp - inode -> (local port, remote port, state) of the TCP sockets in the proxy's namespace."""
        out = {}
        for name in ("tcp", "tcp6"):
            try:
                with open("/proc/%d/net/%s" % (self.pid, name)) as f:
                    next(f)
                    for ln in f:
                        p = ln.split()
                        if len(p) < 10:
                            continue
                        out[p[9]] = (int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16), p[3])
            except OSError:
                pass
        return out

    def snapshot(self):
        """snapshot - counts of the descriptors: all, resolver (TCP to the DNS port), clients, origins, other.
        "counted" (all but the resolver's, whose connections getdns keeps for its own idle timeout) is what
        must return to the baseline."""
        d = "/proc/%d/fd" % self.pid
        try:
            names = os.listdir(d)
        except OSError:
            return None
        tcp = None
        snap = {"total": 0, "dns": 0, "clients": 0, "origins": 0, "other_sockets": 0, "files": 0}
        for n in names:
            try:
                link = os.readlink(d + "/" + n)
            except OSError:
                continue
            snap["total"] += 1
            if not link.startswith("socket:["):
                snap["files"] += 1
                continue
            if tcp is None:
                tcp = self._tcp()
            t = tcp.get(link[8:-1])
            if t is None:
                snap["other_sockets"] += 1
            elif t[1] == self.dns_port:
                snap["dns"] += 1
            elif t[0] in self.listen_ports and t[2] != "0A":
                snap["clients"] += 1
            elif t[1] in self.origin_ports:
                snap["origins"] += 1
            else:
                snap["other_sockets"] += 1
        snap["counted"] = snap["total"] - snap["dns"]
        return snap

    def settle(self, base, deadline_s, stable_s):
        """settle - poll (every 20 ms) until the counted descriptors and the open client and origin connections
        are back to base (a snapshot; None: any number of descriptors, no connection open). Gives up after
        deadline_s, or earlier once nothing has changed for stable_s. Returns (ok, snapshot, seconds waited)."""
        base = base or {"counted": 1 << 30, "clients": 0, "origins": 0}
        t0 = time.monotonic()
        last, last_change = None, t0
        while True:
            snap = self.snapshot()
            now = time.monotonic()
            if snap is None:
                return False, None, now - t0
            if snap["counted"] <= base["counted"] and snap["clients"] <= base["clients"] and \
                    snap["origins"] <= base["origins"]:
                return True, snap, now - t0
            key = (snap["counted"], snap["clients"], snap["origins"])
            if key != last:
                last, last_change = key, now
            if now - t0 >= deadline_s or now - last_change >= stable_s:
                return False, snap, now - t0
            time.sleep(0.02)


def fmt_snap(s):
    if s is None:
        return "(proxy gone)"
    return "fds %d (counted %d: clients %d, origins %d, other sockets %d, files %d; resolver %d)" % (
        s["total"], s["counted"], s["clients"], s["origins"], s["other_sockets"], s["files"], s["dns"])


class LogWatch:
    """LogWatch - the proxy's JSON log, read as it grows: every line must be valid UTF-8 JSON (finding 9)."""

    def __init__(self, path):
        self.path, self.pos, self.lines, self.bad = path, 0, 0, []
        self.by_port = {}

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.pos += end + 1
        for raw in data[:end].split(b"\n"):
            self.lines += 1
            try:
                j = json.loads(raw.decode("utf-8"))
                port = str(j.get("client", "")).rsplit(":", 1)[-1]
                self.by_port[port] = j
            except (UnicodeDecodeError, ValueError) as e:
                self.bad.append((raw[:300], str(e)))


# ------------------------------------------------------------------ one client connection


class Closed(Exception):
    pass


def make_client_ctx(cafile=None):
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


NOVERIFY_CTX = make_client_ctx()


class Conn:
    """Conn - a client connection to the proxy: raw bytes, and TLS on top once a CONNECT tunnel is up."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lport = self.s.getsockname()[1]
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.tls = None
        self.closed = False

    # raw socket
    def send_raw(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.reset = True
            raise Closed(type(e).__name__) from None
        except OSError as e:
            raise Closed(str(e)) from None

    def recv_raw(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out") from None
        except ConnectionResetError:
            self.reset = True
            d = b""
        if not d:
            self.eof = True
        return d

    # plaintext (through TLS when it is on)
    def send(self, data):
        if self.tls is None:
            self.send_raw(data)
            return
        obj, _inc, out = self.tls
        obj.write(data)
        self.send_raw(out.read())

    def fill(self, deadline):
        """fill - add some bytes to buf; False at EOF (or a TLS error)."""
        if self.tls is None:
            d = self.recv_raw(deadline)
            self.buf.extend(d)
            return bool(d)
        obj, inc, out = self.tls
        while True:
            try:
                d = obj.read(65536)
                if not d:
                    self.eof = True
                    return False
                self.buf.extend(d)
                return True
            except ssl.SSLWantReadError:
                o = out.read()
                if o:
                    self.send_raw(o)
                d = self.recv_raw(deadline)
                if d:
                    inc.write(d)
                else:
                    inc.write_eof()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                return False
            except ssl.SSLError:
                self.eof = True
                return False

    def line(self, deadline):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return ln.rstrip(b"\r\n")
            if len(self.buf) > (1 << 20):
                raise Closed("a line longer than 1 MB")
            if not self.fill(deadline):
                raise Closed("EOF")

    def exact(self, n, deadline):
        while len(self.buf) < n:
            if not self.fill(deadline):
                raise Closed("EOF")
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def read_response(self, method, deadline, connect=False):
        """read_response - one HTTP response: {"status", "headers", "body", "own"}; raises on timeout, EOF
        or a malformed head (ValueError; the caller reports it)."""
        while True:
            status_line = self.line(deadline)
            m = re.match(rb"HTTP/1\.[01] ([1-5][0-9][0-9])( |$)", status_line)
            if not m:
                raise ValueError("malformed status line %r" % status_line[:80])
            status = int(m.group(1))
            headers = {}
            while True:
                ln = self.line(deadline)
                if not ln:
                    break
                k, sep, v = ln.partition(b":")
                if not sep:
                    raise ValueError("malformed header line %r" % ln[:80])
                headers.setdefault(k.strip().lower().decode("latin-1"), []).append(v.strip().decode("latin-1"))
            if 100 <= status < 200 and status != 101:
                continue
            break
        te = ",".join(headers.get("transfer-encoding", [])).lower()
        body = b""
        if method == "HEAD" or status in (204, 304) or (connect and status == 200) or status == 101:
            pass
        elif "chunked" in te:
            parts = []
            while True:
                size = int(self.line(deadline).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.line(deadline):
                        pass
                    break
                parts.append(self.exact(size, deadline))
                self.exact(2, deadline)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = self.exact(int(headers["content-length"][0]), deadline)
        else:
            while self.fill(deadline):
                pass
            body = bytes(self.buf)
            self.buf.clear()
        ps = headers.get("proxy-status", [""])[0]
        own = body.startswith(b"daneproxy:") or ps.startswith("daneproxy")
        return {"status": status, "headers": headers, "body": body, "own": own}

    def drain(self, deadline, keep=False):
        """drain - read until EOF or the deadline; the bytes (keep: also left in buf)."""
        try:
            while self.fill(deadline):
                pass
        except (TimeoutError, Closed):
            pass
        got = bytes(self.buf)
        if not keep:
            self.buf.clear()
        return got

    def start_tls(self, host, deadline, split=None, ctx=None, sni=True):
        """start_tls - a TLS handshake inside the tunnel; split: record sizes for the ClientHello (its bytes are
        unchanged, only re-framed, so the handshake still completes)."""
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = (ctx or NOVERIFY_CTX).wrap_bio(inc, out, server_hostname=host if sni else None)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        first = out.read()
        if split:
            for seg in refragment(first, split[0], split[1]):
                self.send_raw(seg)
        else:
            self.send_raw(first)
        self.tls = (obj, inc, out)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                o = out.read()
                if o:
                    self.send_raw(o)
                d = self.recv_raw(deadline)
                if not d:
                    raise Closed("EOF during the TLS handshake")
                inc.write(d)
        o = out.read()
        if o:
            self.send_raw(o)
        return obj

    def abort(self, how):
        if self.closed:
            return
        try:
            if how == "rst":
                self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif how == "half":
                try:
                    self.s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                self.drain(time.monotonic() + HALF_CLOSE_WAIT)
        finally:
            self.s.close()
            self.closed = True


HALF_CLOSE_WAIT = 1.0     # after a half-close, how long to read for the proxy's answer and FIN (set from env)

# ------------------------------------------------------------------ TLS records and ClientHellos


def client_hello(host, alpn=True):
    """client_hello - a real ClientHello (bytes of its records) for host, from Python's ssl over memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def records(data):
    """records - split TLS record bytes into (type, version, fragment) tuples (a truncated tail is dropped)."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack(">H", data[i + 3:i + 5])[0]
        out.append((data[i], data[i + 1:i + 3], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def refragment(data, sizes, segments):
    """refragment - the handshake bytes of data's records re-framed into records of the given sizes (the last
    size repeats), then cut into TCP segments of the given sizes; returns the segments."""
    recs = records(data)
    if not recs:
        return [data]
    typ, ver = recs[0][0], recs[0][1]
    payload = b"".join(r[2] for r in recs)
    framed, i, k = [], 0, 0
    while i < len(payload):
        n = max(1, sizes[min(k, len(sizes) - 1)])
        frag = payload[i:i + n]
        framed.append(bytes([typ]) + ver + struct.pack(">H", len(frag)) + frag)
        i += n
        k += 1
    wire = b"".join(framed)
    segs, i, k = [], 0, 0
    while i < len(wire):
        n = max(1, segments[min(k, len(segments) - 1)]) if segments else len(wire)
        segs.append(wire[i:i + n])
        i += n
        k += 1
    return segs


def hello_parts(data):
    """hello_parts - (prefix up to the extensions, [(type, data)...]) of a ClientHello's handshake body."""
    hs = b"".join(r[2] for r in records(data))
    body = hs[4:4 + int.from_bytes(hs[1:4], "big")]
    i = 2 + 32
    i += 1 + body[i]                                   # session id
    i += 2 + int.from_bytes(body[i:i + 2], "big")      # cipher suites
    i += 1 + body[i]                                   # compression
    prefix = body[:i]
    ext_end = i + 2 + int.from_bytes(body[i:i + 2], "big")
    i += 2
    exts = []
    while i + 4 <= ext_end:
        t = int.from_bytes(body[i:i + 2], "big")
        n = int.from_bytes(body[i + 2:i + 4], "big")
        exts.append((t, body[i + 4:i + 4 + n]))
        i += 4 + n
    return prefix, exts


def hello_build(prefix, exts, record_size=16384):
    """hello_build - a ClientHello from its parts, lengths recomputed, in records of at most record_size."""
    e = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body = prefix + struct.pack(">H", len(e)) + e
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    out = b""
    for i in range(0, len(hs), record_size):
        frag = hs[i:i + record_size]
        out += b"\x16\x03\x01" + struct.pack(">H", len(frag)) + frag
    return out


def sni_ext(names):
    """sni_ext - server_name extension data for a list of (type, name bytes)."""
    lst = b"".join(bytes([t]) + struct.pack(">H", len(n)) + n for t, n in names)
    return struct.pack(">H", len(lst)) + lst


# ------------------------------------------------------------------ case generation (the fuzzer)

INTERESTING = [b"\r\n", b"\r\n ", b"\n", b"\r", b"\x00", b" ", b"\t", b":", b";", b",", b'"', b"\x7f", b"\xff",
               b"\xc3\xa9", b"%00", b"..", b"@", b"#", b"?", b"/", b"[::1]", b":0", b":65536", b":99999999999",
               b"https://", b"http://", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.9", b"chunked", b"xchunked",
               b"identity", b"-1", b"0x10", b"18446744073709551616", b"ffffffffffffffffff", b"\r\n\r\n",
               b"Content-Length: 5\r\n", b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n",
               b"Transfer-Encoding: chunked, identity\r\n", b"Transfer-Encoding: xchunked\r\n",
               b"Transfer-Encoding:\r\n chunked\r\n", b"Connection: close\r\n", b"Connection: keep-alive\r\n",
               b"Connection: content-length\r\n", b"Connection: transfer-encoding, host\r\n",
               b"Expect: 100-continue\r\n", b"Upgrade: websocket\r\nConnection: upgrade\r\n", b"Host: evil.test\r\n",
               b"Host:\r\n", b"Proxy-Connection: keep-alive\r\n", b"Trailer: X\r\n", b"TE: trailers\r\n"]
METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"TRACE", b"CONNECT", b"PRI", b"get",
           b"G\x00T", b"", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"M-SEARCH", b"PATCH"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.9", b"HTTP/0.9", b"HTTP/1.10", b"http/1.1", b"HTTP/1",
            b"", b"HTTP/1.1 x", b"HTTP/11.1"]


class Gen:
    """Gen - the generator of one case, from the case's own random stream; env gives the targets."""

    def __init__(self, rng, env, token):
        self.r = rng
        self.env = env
        self.token = token
        self.nreq = 0
        self.steps = []
        self.kind = None
        self.tainted = False       # a mutated or ambiguously framed request went out on this connection
        self.nresp = 0
        self.listener = None       # a route listener's name (env "routes"), else the HTTP proxy listener
        self.must_refuse = []      # tokens of requests whose head alone must be refused

    # names and targets
    def ok(self):
        return self.env["fuzz_ok"]

    def hostile(self):
        return self.env["fuzz_hostile"]

    def tok(self):
        self.nreq += 1
        return "%sq%d" % (self.token, self.nreq)

    def target_authority(self):
        r = self.r.random()
        host, port = self.ok().rsplit(":", 1)
        if r < 0.55:
            return self.ok()
        if r < 0.62:
            return self.hostile()
        choices = [host.upper() + ":" + port, host + ".:" + port, host + "..:" + port, "ee.dane.test:" + port,
                   "nx.dane.test:" + port, "www.expired.dane.test:" + port, "www.dane.test:22",
                   "www.dane.test:" + str(self.env["dead_port"]), "127.0.0.1:" + port, "[::1]:" + port, host,
                   "www.dane.test:0", "www.dane.test:65536", "a" * 70 + ".dane.test:" + port,
                   ("x." * 130) + "test:" + port, "www.dane.test:" + port + "@evil.test", "%77ww.dane.test:" + port,
                   "notlsa.dane.test:" + port, "www.insecure.dane.test:" + port, "_tcp.dane.test:" + port]
        return self.r.choice(choices)

    def path(self, method):
        if method == "POST" or method == "PUT":
            return "/echo"
        return self.r.choice(["/hello", "/hello", "/chunked/small.txt", "/small.txt", "/204", "/big.bin",
                              "/missing", "/hello/../hello", "/%2e%2e/hello", "/" + "a" * self.r.choice([10, 3000])])

    def request(self, method="GET", authority=None, path=None, version="HTTP/1.1", headers=None, body=None,
                framing=None, token=None):
        """request - (head bytes, body bytes, token) of an absolute-form request."""
        authority = authority or self.ok()
        token = token or self.tok()
        path = path or self.path(method)
        sep = "&" if "?" in path else "?"
        url = "https://%s%s%sc=%s" % (authority, path, sep, token)
        h = ["Host: %s" % authority.rsplit("@", 1)[-1], "User-Agent: daneproxy-stress"]
        if headers:
            h.extend(headers)
        if body is not None:
            if framing == "chunked":
                h.append("Transfer-Encoding: chunked")
                body = chunked(self.r, body)
            else:
                h.append("Content-Length: %d" % len(body))
        head = ("%s %s %s\r\n%s\r\n\r\n" % (method, url, version, "\r\n".join(h))).encode("latin-1")
        return head, body or b"", token

    # mutations
    def mutate_head(self, head, n):
        self.tainted = True
        r = self.r
        for _ in range(n):
            op = r.randrange(12)
            if len(head) < 2:
                head += b"\r\n\r\n"
            if op == 0:
                i = r.randrange(len(head))
                head = head[:i] + bytes([r.randrange(256)]) + head[i + 1:]
            elif op == 1:
                i = r.randrange(len(head))
                head = head[:i] + r.choice(INTERESTING) + head[i:]
            elif op == 2:
                i = r.randrange(len(head))
                head = head[:i] + head[i + r.randint(1, 8):]
            elif op == 3:
                lines = head.split(b"\r\n")
                if len(lines) > 2:
                    k = r.randrange(1, len(lines) - 1)
                    lines.insert(k, lines[k])
                head = b"\r\n".join(lines)
            elif op == 4:
                lines = head.split(b"\r\n")
                if len(lines) > 3:
                    a, b = r.randrange(1, len(lines) - 2), r.randrange(1, len(lines) - 2)
                    lines[a], lines[b] = lines[b], lines[a]
                head = b"\r\n".join(lines)
            elif op == 5:
                sp = head.split(b" ", 1)
                head = r.choice(METHODS) + b" " + (sp[1] if len(sp) > 1 else b"")
            elif op == 6:
                first, _, rest = head.partition(b"\r\n")
                p = first.rsplit(b" ", 1)
                head = p[0] + b" " + r.choice(VERSIONS) + b"\r\n" + rest
            elif op == 7:
                head = head.replace(b"\r\n", b"\n") if r.random() < 0.7 else head.replace(b"\r\n", b"\r")
            elif op == 8:
                k = head.rfind(b"\r\n\r\n")
                if k > 0:
                    extra = r.choice([b"X-Pad: " + b"a" * r.choice([100, 4000, 8200, 17000]),
                                      b"\r\n".join(b"X-R%d: v" % i for i in range(r.choice([50, 300, 1000]))),
                                      b"Content-Length: 1\r\nContent-Length: 2",
                                      b"Transfer-Encoding: chunked\r\nContent-Length: 3",
                                      b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                                      b"Content-Length : 4", b" Content-Length: 4", b"Content-Length: +4",
                                      b"Content-Length: 4, 4", b"X: \x01\x02", b"X\x00: y", b": empty-name",
                                      b"Connection: Content-Length", b"Connection: Host, Transfer-Encoding",
                                      b"Te: chunked"])
                    head = head[:k] + b"\r\n" + extra + head[k:]
            elif op == 9:
                head = head[:r.randrange(len(head))]                # truncated: never ends
            elif op == 10:
                first, _, rest = head.partition(b"\r\n")
                p = first.split(b" ")
                if len(p) >= 2:
                    p[1] = r.choice([b"/", b"*", b"www.dane.test:443", b"http://www.dane.test/",
                                     b"https://www.dane.test:" + str(self.env["ok_port"]).encode() + b"/hello",
                                     b"https://user:pw@" + self.ok().encode() + b"/hello",
                                     b"https://" + self.ok().encode() + b"/" + b"a" * r.choice([8000, 9000, 40000]),
                                     b"https:///hello", b"https://:443/", b"https://[::1/", b"HTTPS://" +
                                     self.ok().upper().encode() + b"/hello", b"https://" + self.ok().encode() + b"#f"])
                head = b" ".join(p) + b"\r\n" + rest
            else:
                head = head.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\n\r\n", 1) if r.random() < 0.5 else \
                    head.replace(b": ", b":\r\n ", 1)
        return head

    def cut_and_abort(self, abort=None, p_cut=0.2):
        """cut_and_abort - end the case: maybe (p_cut) cut the bytes sent at a random point, then the abort mode."""
        r = self.r
        if r.random() < p_cut:
            total = sum(len(s["data"]) for s in self.steps if s["op"] == "send")
            if total > 0:
                cut = r.randrange(total)
                out, n = [], 0
                for s in self.steps:
                    if s["op"] == "send":
                        if n + len(s["data"]) > cut:
                            out.append({"op": "send", "data": s["data"][:cut - n]})
                            break
                        n += len(s["data"])
                    out.append(s)
                self.steps = [s for s in out if s["op"] != "send" or s["data"]]
                self.steps = [s for s in self.steps if s["op"] in ("send", "pause")]
                if r.random() < 0.5:
                    self.steps.append({"op": "drain", "t": 0.05})
        how = abort or r.choice(["close", "close", "rst", "half"])
        self.steps.append({"op": "abort", "how": how})

    def send(self, data, split=None):
        """send - data, maybe cut into a few TCP segments with short pauses."""
        r = self.r
        if not data:
            return
        if split is None:
            split = r.random() < 0.25
        if not split or len(data) < 2:
            self.steps.append({"op": "send", "data": data})
            return
        k = r.randint(2, 5)
        cuts = sorted(set(r.randrange(1, len(data)) for _ in range(k)))
        prev = 0
        for c in cuts + [len(data)]:
            self.steps.append({"op": "send", "data": data[prev:c]})
            if c < len(data):
                self.steps.append({"op": "pause", "ms": r.choice([0, 1, 5, 20])})
            prev = c

    def resp(self, method="GET", t=None, token=None, headonly=False, connect=False, head=None):
        """resp - read one response; head: the request head as sent, whose method (a mutation may have changed
        it) decides whether a body follows."""
        if head is not None:
            method = "HEAD" if head.startswith(b"HEAD ") else "CONNECT" if head.startswith(b"CONNECT ") else "GET"
            connect = method == "CONNECT"
        step = self.resp_step(method, t or self.env["t_mut"], token, headonly, connect)
        if head is not None:
            # whether the request asked to switch protocols (else a 101 must never reach the client)
            step["upgrade_asked"] = bool(re.search(rb"\nupgrade[ \t]*:", head, re.I))
        self.steps.append(step)

    def resp_step(self, method, t, token, headonly, connect):
        """resp_step - strict unless an earlier request on the connection was mutated or ambiguously framed
        (then which answer belongs to which request, and so its framing, is a guess); the first answer on a
        connection is always strict: it must be HTTP whatever was sent."""
        self.nresp += 1
        strict = self.nresp == 1 or not self.tainted
        if self.tainted:
            t = min(t, self.env["t_mut"])     # an answer may never be due: do not wait long for it
        return {"op": "resp", "method": method, "t": t, "token": token, "headonly": headonly, "connect": connect,
                "strict": strict}

    # case kinds
    def gen_head(self):
        """A single request with a mutated head (maybe a body after it)."""
        r = self.r
        method = r.choice(["GET", "GET", "HEAD", "POST", "OPTIONS"])
        body = None
        if method == "POST":
            body = os.urandom(r.choice([0, 5, 100, 3000]))
        head, b, token = self.request(method, authority=self.target_authority(), body=body,
                                      framing=r.choice([None, "chunked"]))
        head = self.mutate_head(head, r.choice([1, 1, 2, 3, 5]))
        self.send(head)
        if b and r.random() < 0.8:
            self.send(b)
        self.resp(method, token=token, headonly=not b, head=head)
        if r.random() < 0.3:
            h2, _, t2 = self.request("GET")
            self.send(h2)
            self.resp("GET", token=t2)
        self.cut_and_abort(abort=r.choice(["close", "close", "rst", "half"]))

    def gen_body(self):
        """A request whose body framing is the test: Content-Length and chunked, honest and not; smuggling."""
        r = self.r
        auth = self.ok() if r.random() < 0.85 else self.hostile()
        host = auth
        token = self.tok()
        smug = "GET /SMUGGLED?c=%sS HTTP/1.1\r\nHost: %s\r\n\r\n" % (token, host)
        kind = r.randrange(9)
        headers = []
        if kind not in (0, 1):
            self.tainted = True
        if kind == 0:      # exact Content-Length, random size
            body = os.urandom(r.choice([1, 10, 1000, 40000, 300000]))
            head, b, _ = self.request("POST", auth, "/echo", body=body, token=token)
        elif kind == 1:    # honest chunked with extensions and trailers
            body = os.urandom(r.choice([1, 100, 5000, 70000]))
            b = chunked(r, body, ext=r.random() < 0.3, trailers=r.random() < 0.3)
            head, _, _ = self.request("POST", auth, "/echo", headers=["Transfer-Encoding: chunked"], token=token)
        elif kind == 2:    # Connection names a framing header, the body holds a second request (finding 3)
            b = smug.encode()
            hdr = r.choice(["content-length", "transfer-encoding", "Content-Length, close", "host",
                            "keep-alive, content-length"])
            head, _, _ = self.request("POST", auth, "/echo", token=token,
                                      headers=["Connection: %s" % hdr, "Content-Length: %d" % len(b)])
        elif kind == 3:    # CL and TE both, or two CLs, the body holding a second request
            b = b"0\r\n\r\n" + smug.encode() if r.random() < 0.5 else smug.encode()
            # must_refuse: framing an origin could read differently; the proxy refuses it from the head, so the
            # origin never sees this request (issue 9 finding 4); CL with TE is left to the proxy's judgement
            headers, must_refuse = r.choice([
                (["Content-Length: %d" % len(b), "Transfer-Encoding: chunked"], False),
                (["Transfer-Encoding: chunked", "Content-Length: %d" % len(b)], False),
                (["Content-Length: 5", "Content-Length: %d" % len(b)], True),
                (["Transfer-Encoding: xchunked", "Content-Length: %d" % len(b)], True),
                (["Transfer-Encoding: chunked, identity"], True), (["Transfer-Encoding: identity, chunked"], True),
                (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], True),
                (["Transfer-Encoding:\r\n chunked"], True), (["Transfer-Encoding: \x0bchunked"], True)])
            if must_refuse:
                self.must_refuse.append(token)
            head, _, _ = self.request("POST", auth, "/echo", headers=headers, token=token)
        elif kind == 4:    # bad chunk sizes
            bad = r.choice([b"ffffffffffffffffffff\r\n", b"-1\r\n", b"0x5\r\n", b"5 5\r\n", b"\r\n", b"5\r\nabc\r\n",
                            b"5;" + b"e" * 5000 + b"\r\nhello\r\n", b"1\r\nx\r\n0\r\n" + b"T: v\r\n" * 2000,
                            b"8000000000000000\r\n", b"5\nhello\n0\n\n", b"2\r\nabcd\r\n0\r\n\r\n"])
            b = b"3\r\nabc\r\n" + bad + smug.encode()
            head, _, _ = self.request("POST", auth, "/echo", headers=["Transfer-Encoding: chunked"], token=token)
        elif kind == 5:    # Content-Length larger than what comes (the client stops or goes away mid-body)
            n = r.choice([10, 100000, 10000000])
            head, _, _ = self.request("POST", auth, "/echo", headers=["Content-Length: %d" % n], token=token)
            b = os.urandom(r.randrange(0, min(n, 20000)))
        elif kind == 6:    # Content-Length smaller than what follows: the rest is a pipelined second request
            body = os.urandom(r.choice([0, 3, 50]))
            head, b, _ = self.request("POST", auth, "/echo", body=body, token=token)
            h2, b2, t2 = self.request("GET")
            b = b + h2 + b2
            self.send(head + b)
            self.resp("POST", t=self.env["t_ok"])
            self.resp("GET", t=self.env["t_ok"], token=t2)
            self.cut_and_abort()
            return
        elif kind == 7:    # GET with a body
            body = os.urandom(r.choice([1, 20, 5000]))
            head, b, _ = self.request("GET", auth, "/hello", body=body, framing=r.choice([None, "chunked"]),
                                      token=token)
        else:              # Expect: 100-continue, body sent after the interim response or not at all
            body = os.urandom(r.choice([10, 2000]))
            head, b, _ = self.request("POST", auth, "/echo", headers=["Expect: 100-continue"], body=body,
                                      token=token)
        if r.random() < 0.3:
            head = self.mutate_head(head, 1)
            self.must_refuse = []      # mutated: what the head says is no longer known
        self.send(head)
        if r.random() < 0.2:
            self.steps.append({"op": "pause", "ms": r.choice([5, 50])})
        self.send(b)
        self.resp("POST", t=self.env["t_ok"] if kind in (0, 1) else self.env["t_mut"], head=head)
        if r.random() < 0.4:
            h2, _, t2 = self.request("GET")
            self.send(h2)
            self.resp("GET", token=t2)
        self.cut_and_abort()

    def connect_head(self, authority=None, extra=""):
        authority = authority or self.ok()
        return ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority, extra)).encode("latin-1")

    def mutated_hello(self, host):
        """mutated_hello - a real ClientHello for host, rewritten: SNI variants, framing, truncation, flips.
        Returns (bytes, refuse): refuse when a correct proxy must not answer it with a handshake (issue 9 finding 8:
        an SNI that is not a valid host name, or names another host than the CONNECT target; a malformed hello;
        no hello at all)."""
        r = self.r
        hello = client_hello(host)
        prefix, exts = hello_parts(hello)
        op = r.randrange(12)
        hb = host.encode()
        refuse = False
        if op in (0, 10, 11):      # SNI rewrites weigh three times as much
            names, refuse = r.choice([([(0, hb.upper())], False), ([(0, hb + b".")], False),
                                      ([(0, hb + b"\x00.evil.test")], True),
                                      ([(0, hb.replace(b"www", b"w\xc3\xa9w"))], True),
                                      ([(0, b"other.dane.test")], True), ([(0, b"")], True), ([(0, b"a" * 300)], True),
                                      ([(0, hb), (0, b"other.dane.test")], False), ([(1, hb)], False),
                                      ([(0, b"\xff\xfe" + hb)], True), ([(0, hb + b"\n")], True),
                                      ([(0, b"127.0.0.1")], True), ([(0, hb + b"..")], True)])
            exts = [(t, sni_ext(names) if t == 0 else d) for t, d in exts]
            out = hello_build(prefix, exts)
        elif op == 1:      # no SNI at all
            out = hello_build(prefix, [(t, d) for t, d in exts if t != 0])
        elif op == 2:      # two server_name extensions (RFC 8446 4.2: never twice), the second for another host
            out = hello_build(prefix, exts + [(0, sni_ext([(0, b"other.dane.test")]))])
            refuse = True
        elif op == 3:      # padded to 16.6 KB (finding 14)
            out = hello_build(prefix, exts + [(21, b"\x00" * r.choice([3000, 16500, 17000, 40000]))])
        elif op == 4:      # split over several records
            out = b"".join(refragment(hello, [r.choice([1, 5, 40, 100])], None))
        elif op == 5:      # truncated
            out = hello[:r.randrange(1, len(hello))]
        elif op == 6:      # flipped bytes
            b = bytearray(hello)
            for _ in range(r.randint(1, 6)):
                b[r.randrange(len(b))] = r.randrange(256)
            out = bytes(b)
        elif op == 7:      # lying lengths in the SNI extension
            bad = sni_ext([(0, hb)])
            bad = bad[:1] + bytes([(bad[1] + r.choice([1, 50, 255])) & 255]) + bad[2:]
            out = hello_build(prefix, [(t, bad if t == 0 else d) for t, d in exts])
            refuse = True
        elif op == 8:      # not a ClientHello: an alert, application data, SSLv2, HTTP
            out = r.choice([b"\x15\x03\x03\x00\x02\x02\x28", b"\x17\x03\x03\x00\x05hello",
                            b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10" + b"\x00" * 37,
                            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\x01" * 100,
                            b"\x16\x03\x01\x00\x00", b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"])
            refuse = True
        else:              # a record with the wrong outer type first, then the hello
            out = b"\x14\x03\x03\x00\x01\x01" + hello
        return out, refuse

    def gen_connect(self):
        """CONNECT, then a ClientHello: full handshakes (framing varied) and requests inside, or mutated hellos."""
        r = self.r
        auth = self.ok()
        host = auth.rsplit(":", 1)[0]
        kind = r.randrange(8)
        if kind == 0:      # a CONNECT head with an odd authority
            a = r.choice(["www.dane.test", "www.dane.test:22", "WWW.DANE.TEST:" + auth.rsplit(":", 1)[1],
                          host + ".:" + auth.rsplit(":", 1)[1], host + "..:" + auth.rsplit(":", 1)[1],
                          "nx.dane.test:" + auth.rsplit(":", 1)[1], "www.expired.dane.test:" + auth.rsplit(":", 1)[1],
                          "127.0.0.1:" + auth.rsplit(":", 1)[1], "[::1]:" + auth.rsplit(":", 1)[1],
                          "www.dane.test:" + str(self.env["dead_port"]), self.hostile(), "https://" + auth + "/",
                          "u@" + auth, auth + "/x", "www.dane.test:0", ":" + auth.rsplit(":", 1)[1]])
            head = self.connect_head(a)
            if r.random() < 0.4:
                head = self.mutate_head(head, 1)
            self.send(head)
            self.resp("CONNECT", connect=True, head=head)
            if r.random() < 0.5:
                self.steps.append({"op": "tls", "host": a.rsplit(":", 1)[0], "split": None})
                self.send_request_in_tunnel()
            self.cut_and_abort()
            return
        head = self.connect_head(auth)
        if kind == 1:      # the hello pipelined with the CONNECT head (before the 200)
            self.send(head + client_hello(host))
            self.resp("CONNECT", t=self.env["t_ok"], connect=True)
            self.steps.append({"op": "drain", "t": 0.2})
            self.cut_and_abort()
            return
        self.send(head)
        self.resp("CONNECT", t=self.env["t_ok"], connect=True)
        if kind in (2, 3, 4):   # a full handshake, hello re-framed; requests inside
            split = None
            if r.random() < 0.6:
                split = ([r.choice([1, 2, 10, 50, 100, 512])], r.choice([None, [1], [3], [7, 100], [200]]))
            self.steps.append({"op": "tls", "host": host if r.random() < 0.9 else host.upper(), "split": split})
            self.send_request_in_tunnel()
            if r.random() < 0.3:
                self.send_request_in_tunnel()
            self.cut_and_abort()
            return
        if kind == 5:      # nothing, or a trickle, after the 200
            if r.random() < 0.5:
                h = client_hello(host)
                self.send(h[:r.randrange(1, 20)])
            self.cut_and_abort(abort=r.choice(["close", "rst", "half"]))
            return
        out, refuse = self.mutated_hello(host)
        self.send(out)
        self.steps.append({"op": "drain", "t": self.env["t_mut"], "no_handshake": refuse})
        self.cut_and_abort()

    def send_request_in_tunnel(self):
        r = self.r
        token = self.tok()
        host = self.ok()
        if r.random() < 0.7:
            req = ("GET /hello?c=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (token, host)).encode()
            method = "GET"
        else:
            body = os.urandom(r.choice([10, 5000, 100000]))
            req = ("POST /echo?c=%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" %
                   (token, host, len(body))).encode() + body
            method = "POST"
        self.send(req)
        self.resp(method, t=self.env["t_ok"])

    def gen_sequence(self):
        """Several requests on one connection, one at a time or pipelined, maybe ending in a CONNECT."""
        r = self.r
        t_ok = self.env["t_ok"]
        ops = [r.choice(["get", "get", "post", "head", "chunked", "other", "bad", "connect", "connect"])
               for _ in range(r.randint(2, 5))]
        if r.random() < 0.4 and ops[0] != "connect":
            ops[-1] = "connect"     # GET then CONNECT on one connection (finding 1 was found like this)
        wire, resps, tunnel = [], [], False
        for op in ops:
            if op == "connect":
                wire.append(self.connect_head())
                resps.append(self.resp_step("CONNECT", t_ok, None, False, True))
                tunnel = True
                break                # after CONNECT the connection is a tunnel
            method = "GET"
            if op == "get":
                head, b, t = self.request("GET", path="/hello")
            elif op == "head":
                method = "HEAD"
                head, b, t = self.request("HEAD", path="/small.txt")
            elif op == "chunked":
                head, b, t = self.request("GET", path="/chunked/small.txt")
            elif op == "post":
                method = "POST"
                head, b, t = self.request("POST", body=os.urandom(r.choice([0, 10, 3000])),
                                          framing=r.choice([None, "chunked"]))
            elif op == "other":
                head, b, t = self.request("GET", authority=r.choice(["ee.dane.test", "notlsa.dane.test"]) + ":" +
                                          str(self.env["ok_port"]), path="/hello")
            else:
                head, b, t = self.request("GET", path="/hello")
                head = self.mutate_head(head, 1)
            if op == "bad":
                method = "HEAD" if head.startswith(b"HEAD ") else "GET"
            wire.append(head + b)
            resps.append(self.resp_step(method, t_ok if op != "bad" else self.env["t_mut"], t, False, False))
        if r.random() < 0.35:       # pipelined: everything written at once, then the answers in order
            self.send(b"".join(wire))
            self.steps.extend(resps)
        else:
            for w, rs in zip(wire, resps):
                self.send(w)
                self.steps.append(rs)
        if tunnel and r.random() < 0.7:
            self.steps.append({"op": "tls", "host": self.ok().rsplit(":", 1)[0], "split": None})
            self.send_request_in_tunnel()
        self.cut_and_abort(p_cut=0.1)

    def gen_hostile(self):
        """Requests to the hostile origin (a Python TLS peer whose answers are broken on purpose)."""
        r = self.r
        mode = r.choice(HOSTILE_MODES)
        method = r.choice(["GET", "GET", "HEAD", "POST"])
        body = os.urandom(r.choice([0, 10, 5000])) if method == "POST" else None
        extra = ["Upgrade: x", "Connection: upgrade"] if mode == "upgrade" and r.random() < 0.5 else None
        head, b, _token = self.request(method, self.hostile(), "/%s" % mode, body=body, headers=extra)
        self.send(head + b)
        self.resp(method, t=self.env["t_mut"] * 2, head=head)
        if r.random() < 0.5:
            h2, b2, _ = self.request("GET", self.hostile(), "/%s" % r.choice(HOSTILE_MODES))
            self.send(h2 + b2)
            self.resp("GET", t=self.env["t_mut"], head=h2)
        self.cut_and_abort()

    def gen_route(self):
        """Raw bytes through a port-mapped route: requests in origin-form (to nginx, to the hostile origin),
        garbage, and a route whose target fails DNS (the proxy must close, having read nothing)."""
        r = self.r
        self.listener = r.choice(["ok", "ok", "ok", "hostile", "refused"])
        host = self.ok() if self.listener != "hostile" else self.hostile()
        for k in range(r.choice([1, 1, 2, 3])):
            path = "/hello" if self.listener != "hostile" else "/" + r.choice(HOSTILE_MODES)
            method = r.choice(["GET", "GET", "HEAD", "POST"])
            body = os.urandom(r.choice([0, 10, 3000, 70000])) if method == "POST" else b""
            req = ("%s %s?c=%s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
                method, path, self.tok(), host, "Content-Length: %d\r\n" % len(body) if body else "")).encode()
            if r.random() < 0.2:
                req = self.mutate_head(req, 1)
            self.send(req + body)
            self.resp(method, t=self.env["t_ok"] if self.listener == "ok" else self.env["t_mut"], head=req)
        if r.random() < 0.15:
            self.send(os.urandom(r.choice([1, 100, 20000])))
            self.steps.append({"op": "drain", "t": self.env["t_mut"]})
        for st in self.steps:
            if st["op"] == "resp":
                st["strict"] = False    # a route relays the origin's bytes as they are: no HTTP oracle applies
        self.cut_and_abort()

    def generate(self):
        k = self.r.random()
        if self.env.get("routes") and k >= 0.9:
            self.kind = "route"
            self.gen_route()
            return {"id": self.token, "kind": self.kind, "listener": self.listener, "steps": self.steps}
        k = k / 0.9 if self.env.get("routes") else k
        if k < 0.25:
            self.kind = "head"
            self.gen_head()
        elif k < 0.45:
            self.kind = "body"
            self.gen_body()
        elif k < 0.70:
            self.kind = "connect"
            self.gen_connect()
        elif k < 0.90:
            self.kind = "sequence"
            self.gen_sequence()
        else:
            self.kind = "hostile"
            self.gen_hostile()
        return {"id": self.token, "kind": self.kind, "steps": self.steps, "must_refuse": self.must_refuse}


HOSTILE_MODES = ["ok", "close-mid-head", "close-mid-body", "rst", "garbage", "bad-cl", "bad-chunk", "huge-head",
                 "no-length", "extra-after", "interim", "upgrade", "slow-head", "two-cl", "silence"]


def chunked(r, body, ext=False, trailers=False):
    out, i = [], 0
    while i < len(body):
        n = r.choice([1, 7, 100, 4096, 16384, 65536])
        part = body[i:i + n]
        out.append(b"%x%s\r\n%s\r\n" % (len(part), b";x=y" if ext else b"", part))
        i += n
    out.append(b"0\r\n" + (b"X-Trailer: 1\r\n" if trailers else b"") + b"\r\n")
    return b"".join(out)


def generate(env, seed, rnd, idx):
    token = "f%sr%dc%d" % (seed, rnd, idx)
    rng = random.Random("%s/%d/%d" % (seed, rnd, idx))
    return Gen(rng, env, token).generate()


# ------------------------------------------------------------------ case execution


def run_case(env, case):
    """run_case - execute a case on a new client connection; returns what happened (never raises)."""
    res = {"id": case["id"], "lport": None, "statuses": [], "refused_headonly": [], "notes": [], "bad": [],
           "t0": time.monotonic()}
    try:
        c = Conn(env["routes"][case["listener"]] if case.get("listener") else env["proxy_port"])
    except OSError as e:
        res["notes"].append("connect: %s" % e)
        res["connect_failed"] = True
        return res
    res["lport"] = c.lport
    try:
        for st in case["steps"]:
            op = st["op"]
            if op == "send":
                c.send(st["data"])
            elif op == "pause":
                time.sleep(st["ms"] / 1000.0)
            elif op == "resp":
                try:
                    rsp = c.read_response(st["method"], time.monotonic() + st["t"], connect=st.get("connect"))
                except ValueError as e:
                    if st.get("strict", True):
                        res["bad"].append("the proxy's answer is not HTTP: %s" % e)
                    res["notes"].append("malformed response: %s" % e)
                    break
                res["statuses"].append(rsp["status"])
                if rsp["status"] == 101 and st.get("upgrade_asked") is False and st.get("strict", True):
                    res["bad"].append("a 101 reached the client for a request that asked for no upgrade: the proxy "
                                      "relays the origin's bytes raw from here, and the client's next requests on "
                                      "this connection (meant for any origin) go to this origin")
                    break
                if st["method"] == "HEAD" and st.get("strict", True) and rsp["status"] != 101:
                    # no content may follow the head of an answer to HEAD (RFC 9110 section 9.3.2); the proxy's own
                    # answers close the connection, so wait for that; else look at what is already here
                    extra = c.drain(time.monotonic() + min(st["t"], 0.5), keep=True) if rsp["own"] else bytes(c.buf)
                    if extra and not extra.startswith(b"HTTP/1."):
                        res["bad"].append("the %s %d answer to HEAD carries content (RFC 9110 9.3.2 forbids it; a "
                                          "client reads it as the next response): %r"
                                          % ("proxy's own" if rsp["own"] else "relayed", rsp["status"], extra[:60]))
                        break
                if st.get("token") and st.get("headonly") and rsp["own"] and 400 <= rsp["status"] < 500:
                    res["refused_headonly"].append(st["token"])
                if (st.get("connect") and rsp["status"] != 200) or rsp["status"] == 101:
                    break            # refused; or after 101 the bytes are another protocol's
            elif op == "drain":
                got = c.drain(time.monotonic() + st["t"])
                if st.get("no_handshake") and got[:1] == b"\x16":
                    res["bad"].append("the proxy answered a ClientHello it must refuse (bad SNI, malformed, or no "
                                      "hello) with a handshake record (issue 9 finding 8): %r" % got[:16])
            elif op == "tls":
                sp = st.get("split")
                c.start_tls(st["host"], time.monotonic() + env["t_ok"], split=sp)
            elif op == "abort":
                res["rst"] = st["how"] == "rst"
                c.abort(st["how"])
    except (TimeoutError, Closed, ssl.SSLError, OSError, ValueError) as e:
        res["notes"].append("%s: %s" % (type(e).__name__, e))
    finally:
        if not c.closed:
            last = case["steps"][-1]
            how = last["how"] if last["op"] == "abort" and last["how"] != "half" else "close"
            res["rst"] = how == "rst"
            c.abort(how)
        res["elapsed"] = time.monotonic() - res["t0"]
    return res


def env_ports(env):
    return {"ok": env["ok_port"], "hostile": int(env["fuzz_hostile"].rsplit(":", 1)[1]), "dead": env["dead_port"]}


def case_json(case, env):
    """case_json - a case as JSON (bytes as latin-1 text, so every byte value survives), with the run's ports."""
    def conv(s):
        s = dict(s)
        if "data" in s:
            s["data"] = s["data"].decode("latin-1")
        return s
    return json.dumps({"id": case["id"], "kind": case["kind"], "listener": case.get("listener"),
                       "ports": env_ports(env), "steps": [conv(s) for s in case["steps"]]})


def case_from_json(text, env):
    """case_from_json - a case written by case_json, its ports moved to this run's origins."""
    j = json.loads(text)
    now = env_ports(env)
    moves = [(b":%d" % old, b":%d" % now[k]) for k, old in j.get("ports", {}).items() if k in now and old != now[k]]
    for s in j["steps"]:
        if "data" in s:
            d = s["data"].encode("latin-1")
            for a, b in moves:
                d = re.sub(re.escape(a) + rb"(?![0-9])", b, d)
            s["data"] = d
    return j


def case_text(case, limit=400):
    """case_text - a readable one-step-per-line form of a case (long payloads elided in the middle)."""
    out = []
    for s in case["steps"]:
        if s["op"] == "send":
            d = s["data"]
            shown = repr(d if len(d) <= limit else d[:limit // 2] + b"..." + d[-limit // 4:])
            out.append("  send %d bytes %s" % (len(d), shown))
        else:
            out.append("  " + " ".join("%s=%s" % (k, v) for k, v in s.items()))
    return "\n".join(out)


# ------------------------------------------------------------------ the fuzzer's rounds

def known_finding(case):
    """known_finding - which issue 9 finding a failing case most likely reproduces (a hint for the reader)."""
    sends = b"".join(s["data"] for s in case["steps"] if s["op"] == "send")
    ops = [s["op"] for s in case["steps"]]
    first_connect = sends.find(b"CONNECT ")
    if first_connect > 0 and re.search(rb"^(GET|POST|HEAD) https://", sends[:first_connect], re.M):
        return "issue 9 finding 1 (a request kept the origin open, then CONNECT on the same connection)"
    m = re.search(rb"\r\nContent-Length: *([0-9]+)\r\n(?:.*?\r\n)?\r\n", sends, re.S)
    if m and len(sends) - m.end() < int(m.group(1)):
        return "issue 9 finding 2 (the client went away mid-body: Content-Length %s, %d body bytes sent)" % (
            m.group(1).decode(), len(sends) - m.end())
    if re.search(rb"\r\nTransfer-Encoding: *chunked\r\n", sends) and not sends.endswith(b"0\r\n\r\n") and \
            "resp" not in ops:
        return "issue 9 finding 2 (the client went away mid-body: chunked body unfinished)"
    return "not one of issue 9's findings as far as this tool can tell"


REPORT_EACH = 3
ORACLES = ("head-body", "bad-hello-accepted", "unsolicited-101", "not-http", "smuggling", "refused-forwarded", "log-json", "unlogged")


class Fuzzer:
    def __init__(self, env, args):
        self.env = env
        self.args = args
        self.ignore = set(x for x in getattr(args, "ignore", "").split(",") if x)
        self.ignored = {}
        self.by_oracle = {}
        self.proxy = Proxy(env)
        self.log = LogWatch(env["log"])
        self.failures = []
        self.tokens = {}               # request token -> case id
        self.cases = {}                # case id -> case
        self.refused_headonly = set()  # tokens the proxy refused itself, from the head alone
        self.must_refuse = set()       # tokens of requests whose framing must be refused from the head
        self.reported_tokens = set()
        self.isolations = 0
        self.minimized = 0
        self.conns = 0
        self.ports = {}                # client port -> case id (or "canary"/"warm-up") of every connection made
        self.reset_ports = set()       # ... of those, the ones the client ended with a RST
        self.bad_log_seen = 0
        self.log.poll()
        self.lines_before = self.log.lines
        self.times = {}

    def fail(self, what, oracle=None):
        """fail - report a failure; of each oracle's failures only the first REPORT_EACH are printed."""
        if oracle in self.ignore:
            self.ignored[oracle] = self.ignored.get(oracle, 0) + 1
            return
        self.failures.append(what)
        n = self.by_oracle[oracle] = self.by_oracle.get(oracle, 0) + 1
        if oracle is None or n <= REPORT_EACH:
            print("FAIL " + what.replace("\n", "\n     "), flush=True)

    def settle(self, target, quick=False):
        e = self.env
        if quick:
            return self.proxy.settle(target, e["settle_deadline"], e["settle_stable_min"])
        return self.proxy.settle(target, e["settle_deadline"], e["settle_stable"])

    def conn_made(self, port, what, reset=False):
        """conn_made - count a client connection (its log line is due). One the client reset at once may have
        been gone before the proxy's accept() could ask for its address: those are dropped without a log line,
        so they are not held against the proxy."""
        if port is not None:
            self.conns += 1
            self.ports[port] = what
            if reset:
                self.reset_ports.add(port)

    def canary(self):
        """canary - a plain request still gets its answer from the origin."""
        try:
            c = Conn(self.env["proxy_port"])
            self.conn_made(c.lport, "canary")
            host = self.env["fuzz_ok"]
            c.send(("GET https://%s/hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (host, host)).encode())
            rsp = c.read_response("GET", time.monotonic() + self.env["t_ok"] * 2)
            c.abort("close")
            if rsp["status"] != 200 or b"stress-origin" not in rsp["body"]:
                return "status %d, body %r" % (rsp["status"], rsp["body"][:100])
            return None
        except (OSError, Closed, TimeoutError, ValueError, ssl.SSLError) as e:
            return "%s: %s" % (type(e).__name__, e)

    def index(self, case):
        self.cases[case["id"]] = case
        self.must_refuse.update(case.get("must_refuse", []))
        for s in case["steps"]:
            if s["op"] == "send":
                for m in re.finditer(rb"c=(f[0-9a-z]+q[0-9]+)", s["data"]):
                    self.tokens[m.group(1).decode()] = case["id"]

    def check_origin(self):
        """check_origin - the origin's access log: no smuggled request, no head of a request the proxy refused."""
        try:
            with open(self.env["access_log"], "rb") as f:
                text = f.read()
        except OSError:
            return
        for m in re.finditer(rb'"[A-Z]+ /SMUGGLED\?c=(f[0-9a-z]+q[0-9]+)S', text):
            t = m.group(1).decode()
            if t in self.reported_tokens:
                continue
            self.reported_tokens.add(t)
            case = self.cases.get(self.tokens.get(t, ""), None)
            self.fail("request smuggling: the origin received the request hidden in the body of request %s "
                      "(issue 9 findings 3/4)\n%s" % (t, self.replay_text(case)), "smuggling")
        for m in re.finditer(rb"c=(f[0-9a-z]+q[0-9]+)[ &]", text):
            t = m.group(1).decode()
            if t in self.must_refuse and t not in self.reported_tokens:
                self.reported_tokens.add(t)
                case = self.cases.get(self.tokens.get(t, ""), None)
                self.fail("the origin received request %s, whose framing (Transfer-Encoding other than one "
                          "'chunked', or two Content-Lengths) must be refused from its head (issue 9 finding 4)\n%s"
                          % (t, self.replay_text(case)), "refused-forwarded")
            if t in self.refused_headonly and t not in self.reported_tokens:
                self.reported_tokens.add(t)
                case = self.cases.get(self.tokens.get(t, ""), None)
                self.fail("the proxy refused request %s itself (4xx) from its head alone, yet the origin received "
                          "that head (issue 9 finding 4: validate before a byte goes upstream)\n%s"
                          % (t, self.replay_text(case)), "refused-forwarded")

    def check_log(self):
        self.log.poll()
        while self.bad_log_seen < len(self.log.bad):
            raw, why = self.log.bad[self.bad_log_seen]
            self.bad_log_seen += 1
            if self.bad_log_seen <= 3:
                self.fail("a log line is not valid UTF-8 JSON (issue 9 finding 9): %s: %r" % (why, raw), "log-json")

    def replay_text(self, case):
        if case is None:
            return "(case unknown)"
        rc = case["id"][1:].split("r", 1)[1].split("c")
        return ("case %s (%s), replay alone with: %s fuzz --seed %s --replay %s:%s\n%s" %
                (case["id"], case["kind"], self.env["replay_cmd"], self.args.seed, rc[0], rc[1], case_text(case)))

    def run_batch(self, cases, workers):
        results = []
        with ThreadPoolExecutor(max_workers=workers) as ex:
            for res in ex.map(lambda cs: run_case(self.env, cs), cases):
                results.append(res)
                self.conn_made(res["lport"], res["id"], res.get("rst", False))
        return results

    def leaks_alone(self, case):
        """leaks_alone - run one case alone; (before, after) snapshots if it left descriptors behind, else None."""
        before = self.proxy.snapshot()
        if before is None:
            return None
        res = run_case(self.env, case)
        self.conn_made(res["lport"], case["id"], res.get("rst", False))
        ok, snap, _ = self.settle(before, quick=True)
        if ok or snap is None:
            return None
        return before, snap

    def minimize(self, case):
        """minimize - shrink a leaking case while it still leaks alone (abort simplified, steps removed,
        header lines and bodies dropped); bounded by minimize_budget seconds."""
        t_end = time.monotonic() + self.env["minimize_budget"]
        cur, changed, tries = case, True, 0
        while changed and time.monotonic() < t_end:
            changed = False
            for cand in shrink_candidates(cur):
                if time.monotonic() >= t_end or not self.proxy.alive():
                    break
                tries += 1
                if self.leaks_alone(cand) is not None:
                    cur, changed = cand, True
                    break
        return cur, tries

    def isolate(self, cases):
        """isolate - replay a leaking round's cases one by one, alone; minimize the first culprit."""
        for case in cases:
            got = self.leaks_alone(case)
            if got is None:
                if not self.proxy.alive():
                    return "the proxy died while isolating"
                continue
            before, snap = got
            mini, tries = self.minimize(case)
            mini = dict(mini, id=case["id"])
            path = os.path.join(self.env["workdir"], "minimal-%s.json" % case["id"])
            with open(path, "w") as f:
                f.write(case_json(mini, self.env))
            return ("case %s (%s) leaks when run alone: %+d descriptor(s), %+d client and %+d origin "
                    "connection(s) stay open\n%s\n"
                    "minimal case after %d tries (%d step(s); run it alone with: %s fuzz --case-file %s):\n%s\n"
                    "likely: %s" % (case["id"], case["kind"], snap["counted"] - before["counted"],
                                    snap["clients"] - before["clients"], snap["origins"] - before["origins"],
                                    self.replay_text(case), tries, len(mini["steps"]), self.env["replay_cmd"],
                                    path, case_text(mini), known_finding(mini)))
        return ("no case of the round leaks when run alone (a race between concurrent cases?); replay the whole "
                "run with: %s fuzz --seed %s --cases %d --per-round %d --workers %d" %
                (self.env["replay_cmd"], self.args.seed, self.args.cases, self.args.per_round, self.args.workers))

    def warm(self):
        """warm - a few ordinary requests (DNS cache, leaf cache), then the baseline snapshot."""
        for _ in range(3):
            why = self.canary()
            if why:
                return None, "warm-up request failed: %s" % why
        try:
            c = Conn(self.env["proxy_port"])
            self.conn_made(c.lport, "warm-up")
            a = self.env["fuzz_ok"]
            c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a)).encode())
            c.read_response("CONNECT", time.monotonic() + self.env["t_ok"] * 2, connect=True)
            c.start_tls(a.rsplit(":", 1)[0], time.monotonic() + self.env["t_ok"] * 2)
            c.abort("close")
        except (OSError, Closed, TimeoutError, ValueError, ssl.SSLError) as e:
            return None, "warm-up CONNECT failed: %s: %s" % (type(e).__name__, e)
        ok, snap, _ = self.settle(None)
        if not ok:
            return None, "connections stay open after the warm-up: %s" % fmt_snap(snap)
        return snap, None

    def run(self):
        a = self.args
        base, why = self.warm()
        if base is None:
            self.fail(why)
            return 1
        target = base
        print("fuzz: seed %s, %d cases in rounds of %d, %d at a time; baseline %s" %
              (a.seed, a.cases, a.per_round, a.workers, fmt_snap(base)), flush=True)
        t0 = time.monotonic()
        nrounds = (a.cases + a.per_round - 1) // a.per_round
        kinds, statuses = {}, {}
        failed_rounds = 0
        for rnd in range(nrounds):
            n = min(a.per_round, a.cases - rnd * a.per_round)
            cases = [generate(self.env, a.seed, rnd, i) for i in range(n)]
            for cs in cases:
                self.index(cs)
                kinds[cs["kind"]] = kinds.get(cs["kind"], 0) + 1
            tr = time.monotonic()
            results = self.run_batch(cases, a.workers)
            for res in results:
                t = self.times.setdefault(self.cases[res["id"]]["kind"], [0, 0.0, 0.0, ""])
                t[0] += 1
                t[1] += res.get("elapsed", 0)
                if res.get("elapsed", 0) > t[2]:
                    t[2], t[3] = res["elapsed"], res["id"]
                self.refused_headonly.update(res["refused_headonly"])
                for st in res["statuses"]:
                    statuses[st] = statuses.get(st, 0) + 1
                for b in res["bad"]:
                    self.fail("case %s: %s\n%s" %
                              (res["id"], b, self.replay_text(self.cases[res["id"]])),
                              "head-body" if "to HEAD" in b else "bad-hello-accepted" if "ClientHello" in b
                              else "unsolicited-101" if "a 101 reached" in b else "not-http")
            ok, snap, waited = self.settle(target)
            print("round %d/%d: %d cases in %.1f s, settled in %.2f s: %s" % (
                rnd + 1, nrounds, n, time.monotonic() - tr, waited, fmt_snap(snap)), flush=True)
            if not self.proxy.alive():
                self.fail("the proxy died in round %d (seed %s); its cases:\n%s" %
                          (rnd + 1, a.seed, "\n".join(self.replay_text(cs) for cs in cases)))
                return 1
            if not ok:
                msg = ("round %d: the proxy did not return to the baseline (%s) within the deadline: %s" %
                       (rnd + 1, fmt_snap(target), fmt_snap(snap)))
                if self.isolations < a.max_isolate:
                    self.isolations += 1
                    msg += "\n" + self.isolate(cases)
                else:
                    msg += " (not isolated: --max-isolate %d reached)" % a.max_isolate
                self.fail(msg)
                # what leaked stays: the next rounds are measured from here
                _ok, snap2, _ = self.settle(target, quick=True)
                target = snap2 or target
            why = self.canary()
            if why:
                self.fail("round %d: a plain request through the proxy failed afterwards: %s" % (rnd + 1, why))
            self.check_log()
            self.check_origin()
            if not ok:
                failed_rounds += 1
                if failed_rounds >= a.max_failed_rounds and rnd + 1 < nrounds:
                    print("fuzz: %d rounds left descriptors behind: the remaining %d rounds are skipped "
                          "(--max-failed-rounds)" % (failed_rounds, nrounds - rnd - 1), flush=True)
                    break
        self.settle(target)
        self.check_log()
        access_log_quiet(self.env["access_log"])
        self.check_origin()
        ok, snap, _ = self.settle(base, quick=True)
        if ok:
            self.check_unlogged()
        print("fuzz: case kinds (count, mean/max ms, slowest): %s" % ", ".join(
            "%s %d %.0f/%.0f %s" % (n, t[0], t[1] * 1000 / t[0], t[2] * 1000, t[3])
            for n, t in sorted(self.times.items())))
        print("fuzz: %d cases in %.1f s; answers seen: %s; at the end: %s (baseline: %s)" %
              (sum(kinds.values()), time.monotonic() - t0,
               " ".join("%d:%d" % kv for kv in sorted(statuses.items())), fmt_snap(snap), fmt_snap(base)),
              flush=True)
        if self.ignored:
            print("fuzz: set aside (--ignore): %s" % ", ".join("%s %d" % kv for kv in sorted(self.ignored.items())))
        shown = {k: v for k, v in self.by_oracle.items() if k is not None}
        if shown:
            print("fuzz: failures per oracle (the first %d of each shown above): %s" %
                  (REPORT_EACH, ", ".join("%s %d" % kv for kv in sorted(shown.items()))))
        return 1 if self.failures else 0

    def check_unlogged(self):
        """check_unlogged - once nothing is open, every client connection has its one log line."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.log.poll()
            missing = [(p, w) for p, w in sorted(self.ports.items())
                       if str(p) not in self.log.by_port and p not in self.reset_ports]
            if not missing:
                return
            time.sleep(0.02)
        n = self.log.lines - self.lines_before
        text = "\n".join("client port %d: %s" % (p, self.replay_text(self.cases.get(w)) if w in self.cases else w)
                         for p, w in missing[:3])
        self.fail("%d client connection(s) ended without a log line (%d lines for %d connections, %d of them reset "
                  "by the client); ports %s\n%s" % (len(missing), n, self.conns, len(self.reset_ports),
                                                    " ".join(str(p) for p, _ in missing[:10]), text),
                  "unlogged")


def access_log_quiet(path, quiet_s=0.2, limit_s=3.0):
    """access_log_quiet - wait until the origin's access log has not grown for quiet_s (it is written when a
    request ends, which may be just after the proxy closed the connection)."""
    t0 = last_change = time.monotonic()
    size = -1
    while time.monotonic() - t0 < limit_s:
        try:
            n = os.stat(path).st_size
        except OSError:
            return
        now = time.monotonic()
        if n != size:
            size, last_change = n, now
        elif now - last_change >= quiet_s:
            return
        time.sleep(0.02)


def shrink_candidates(case):
    """shrink_candidates - smaller variants of a case, biggest cuts first: pauses and drains dropped, split sends
    joined, the abort made a plain close, halves/quarters/... of the steps removed, then header lines and bodies
    of single sends dropped."""
    steps = case["steps"]
    body, last = steps[:-1], steps[-1:]
    out = []

    def variant(b, tail=None):
        out.append(dict(case, steps=b + (last if tail is None else tail)))

    quiet = [s for s in body if s["op"] not in ("pause", "drain")]
    if len(quiet) < len(body):
        variant(quiet)
    joined = []
    for s in body:
        if s["op"] == "send" and joined and joined[-1]["op"] == "send":
            joined[-1] = {"op": "send", "data": joined[-1]["data"] + s["data"]}
        elif s["op"] != "pause":
            joined.append(s)
    if len(joined) < len(body) and joined != quiet:
        variant(joined)
    if last and last[0]["op"] == "abort" and last[0]["how"] != "close":
        variant(body, [{"op": "abort", "how": "close"}])
    n = len(body) // 2
    while n >= 1:
        for i in range(0, len(body), n):
            if body[:i] + body[i + n:] != body:
                variant(body[:i] + body[i + n:])
        n //= 2
    for i, s in enumerate(body):
        if s["op"] == "send" and len(s["data"]) > 1:
            d = s["data"]
            k = d.find(b"\r\n\r\n")
            if 0 < k < len(d) - 4:
                variant(body[:i] + [{"op": "send", "data": d[:k + 4]}] + body[i + 1:])
            lines = d.split(b"\r\n")
            for j in range(1, len(lines) - 2):
                if lines[j]:
                    variant(body[:i] + [{"op": "send", "data": b"\r\n".join(lines[:j] + lines[j + 1:])}] +
                            body[i + 1:])
    return out


def cmd_fuzz(env, args):
    fz = Fuzzer(env, args)
    if args.case_file or args.replay:
        if args.case_file:
            with open(args.case_file) as f:
                case = case_from_json(f.read(), env)
        else:
            r, c = (int(x) for x in args.replay.split(":"))
            case = generate(env, args.seed, r, c)
        base, why = fz.warm()
        if base is None:
            print("FAIL " + why)
            return 1
        print("replay of case %s (%s):\n%s" % (case["id"], case["kind"], case_text(case, 2000)))
        fz.index(case)
        res = run_case(env, case)
        print("client side: statuses %s, notes %s" % (res["statuses"], res["notes"]))
        for b in res["bad"]:
            fz.fail(b)
        fz.refused_headonly.update(res["refused_headonly"])
        ok, snap, waited = fz.settle(base)
        print("after %.2f s: %s (baseline: %s)" % (waited, fmt_snap(snap), fmt_snap(base)))
        fz.check_log()
        access_log_quiet(env["access_log"])
        fz.check_origin()
        if not fz.proxy.alive():
            fz.fail("the proxy died")
        elif not ok:
            fz.fail("descriptors did not return to the baseline: likely %s" % known_finding(case))
        return 1 if fz.failures else 0
    return fz.run()


# ------------------------------------------------------------------ the soak

# RSS: after the first round (caches warm: DNS results, minted leaves, TLS session state, malloc arenas), the
# proxy's resident set may grow by at most RSS_TOLERANCE_KB or RSS_TOLERANCE_PCT of that value, whichever is
# larger, in any later round. Measured on this machine (release build): the first round ends near 16 MB and
# later rounds stay within about 0.5 MB of it (20,000 operations without the kinds that hit issue 9's leaks:
# 17.4-17.9 MB throughout); issue 9's finding 1 leaked ~100 KB per request pair, about 3 MB a round at the
# soak's mix. Sanitizer builds: ASan keeps freed memory in quarantine (up to 256 MB by default)
# and its shadow and allocator metadata grow with it, so their RSS says nothing about leaks; the figures are
# printed, not asserted (LeakSanitizer at exit and the descriptor checks cover them).
RSS_TOLERANCE_KB = 3072
RSS_TOLERANCE_PCT = 10

SOAK_OPS = [("get", 22), ("keepalive", 8), ("post", 8), ("post_chunked", 5), ("connect_tls", 18),
            ("refuse_mismatch", 6), ("refuse_bogus", 5), ("refuse_port_connect", 3), ("refuse_port_absolute", 3),
            ("abort_body", 5), ("abort_response", 5), ("abort_handshake", 5), ("get_then_connect", 4),
            ("pipelined", 3), ("route_ok", 4), ("route_mismatch", 2)]


SOAK_ATTRIBUTE_N = 5
SOAK_FINDINGS = {"get_then_connect": ": issue 9 finding 1 (GET keeps the origin, then CONNECT overwrites it)",
                 "abort_body": ": issue 9 finding 2 (a client FIN mid-body holds the slot until idle_timeout)"}


class Soak:
    def __init__(self, env, args):
        self.env = env
        self.args = args
        self.proxy = Proxy(env)
        self.log = LogWatch(env["log"])
        self.ca_ctx = make_client_ctx(env["local_ca"])
        self.failures = []
        self.conns = 0
        self.lock = threading.Lock()
        self.attributed = False

    def attribute(self):
        """attribute - run each kind of operation alone, a few times, and say which leave descriptors behind."""
        e = self.env
        out = []
        for name, _w in SOAK_OPS:
            base = self.proxy.snapshot()
            if base is None:
                return "the proxy died"
            for i in range(SOAK_ATTRIBUTE_N):
                self.op(name, random.Random(i))
            ok, snap, _ = self.proxy.settle(base, e["settle_deadline"], e["settle_stable_min"])
            if not ok and snap is not None:
                out.append("%s x%d alone: %+d descriptor(s), %+d client and %+d origin connection(s) stay open%s" % (
                    name, SOAK_ATTRIBUTE_N, snap["counted"] - base["counted"], snap["clients"] - base["clients"],
                    snap["origins"] - base["origins"], SOAK_FINDINGS.get(name, "")))
        return "\n".join(out) or "no kind of operation leaks when run alone (a race between concurrent ones?)"

    def fail(self, what):
        self.failures.append(what)
        print("FAIL " + what.replace("\n", "\n     "), flush=True)

    def dl(self):
        return time.monotonic() + self.env["t_ok"] * 3

    def conn(self, port=None):
        c = Conn(port or self.env["proxy_port"])
        with self.lock:
            self.conns += 1
        return c

    def req(self, method, authority, path, body=None, chunked_body=False, close=False):
        h = "%s https://%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: daneproxy-soak\r\n" % (method, authority, path,
                                                                                       authority)
        if close:
            h += "Connection: close\r\n"
        data = b""
        if body is not None:
            if chunked_body:
                h += "Transfer-Encoding: chunked\r\n"
                data = chunked(random.Random(len(body)), body)
            else:
                h += "Content-Length: %d\r\n" % len(body)
                data = body
        return (h + "\r\n").encode() + data

    def expect(self, rsp, status, mark=None, error=None):
        if rsp["status"] != status:
            return "status %d, want %d (%s)" % (rsp["status"], status,
                                               rsp["headers"].get("proxy-status", [rsp["body"][:80]])[0])
        if mark is not None and mark not in rsp["body"]:
            return "the body lacks %r: %r" % (mark, rsp["body"][:80])
        if error is not None:
            ps = rsp["headers"].get("proxy-status", [""])[0]
            # RFC 9209: the error token first; details (and rcode, info-code, ...) as further parameters
            if not re.match(r'^daneproxy; error=%s(; [a-z-]+=("[^"]*"|[^;"]*))*$' % error, ps) or \
                    not re.search(r'; details="[^"]+"', ps):
                return "Proxy-Status %r, want error=%s with details" % (ps, error)
        return None

    def timed_op(self, name, rng):
        t0 = time.monotonic()
        why = self.op(name, rng)
        return why, time.monotonic() - t0

    def op(self, name, rng):
        """op - one operation; None when it went as expected, else what differed."""
        e = self.env
        ok, mm, bogus = e["soak_ok"], e["soak_mismatch"], e["soak_bogus"]
        host = ok.rsplit(":", 1)[0]
        routes = e.get("routes", {})
        c = self.conn(routes.get(name[6:]) if name.startswith("route_") else None)
        try:
            if name == "get":
                c.send(self.req("GET", ok, "/hello", close=rng.random() < 0.5))
                return self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
            if name == "keepalive":
                for k in range(rng.randint(5, 20)):
                    c.send(self.req("GET", ok, rng.choice(["/hello", "/small.txt", "/chunked/small.txt"])))
                    why = self.expect(c.read_response("GET", self.dl()), 200)
                    if why:
                        return "request %d: %s" % (k + 1, why)
                return None
            if name in ("post", "post_chunked"):
                body = os.urandom(rng.choice([100, 5000, 60000, 300000]))
                c.send(self.req("POST", ok, "/echo", body=body, chunked_body=name == "post_chunked"))
                rsp = c.read_response("POST", self.dl())
                why = self.expect(rsp, 200)
                if not why and rsp["body"] != body:
                    why = "the echo differs (%d bytes back, %d sent)" % (len(rsp["body"]), len(body))
                return why
            if name == "connect_tls":
                c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (ok, ok)).encode())
                why = self.expect(c.read_response("CONNECT", self.dl(), connect=True), 200)
                if why:
                    return "CONNECT: " + why
                c.start_tls(host, self.dl(), ctx=self.ca_ctx)     # verifies the minted leaf against the local CA
                for k in range(rng.choice([1, 1, 3])):
                    c.send(("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n" % ok).encode())
                    why = self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
                    if why:
                        return "request %d in the tunnel: %s" % (k + 1, why)
                return None
            if name == "refuse_mismatch":
                if rng.random() < 0.5:
                    c.send(self.req("GET", mm, "/hello"))
                    return self.expect(c.read_response("GET", self.dl()), 502, error="tls_certificate_error")
                c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (mm, mm)).encode())
                return self.expect(c.read_response("CONNECT", self.dl(), connect=True), 502,
                                   error="tls_certificate_error")
            if name == "refuse_bogus":
                c.send(self.req("GET", bogus, "/hello"))
                return self.expect(c.read_response("GET", self.dl()), 502, error="dns_error")
            if name == "refuse_port_connect":
                a = "%s:%d" % (host, e["forbidden_port"])
                c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a)).encode())
                return self.expect(c.read_response("CONNECT", self.dl(), connect=True), 403)
            if name == "refuse_port_absolute":
                c.send(self.req("GET", "%s:%d" % (host, e["forbidden_port"]), "/"))
                why = self.expect(c.read_response("GET", self.dl()), 403)
                return why and why + " (issue 9 finding 6: the port allow-list must apply to absolute-form too)"
            if name == "abort_body":
                c.send(self.req("POST", ok, "/echo")[:-2] + b"Content-Length: 100000\r\n\r\n" + os.urandom(
                    rng.choice([3, 1000, 50000])))
                if rng.random() < 0.5:
                    c.drain(time.monotonic() + 0.02)
                c.abort(rng.choice(["close", "rst"]))
                return None
            if name == "abort_response":
                c.send(self.req("GET", ok, "/big.bin"))
                c.line(self.dl())
                c.abort(rng.choice(["close", "rst"]))
                return None
            if name == "abort_handshake":
                c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (ok, ok)).encode())
                why = self.expect(c.read_response("CONNECT", self.dl(), connect=True), 200)
                if why:
                    return "CONNECT: " + why
                h = client_hello(host)
                c.send_raw(h[:rng.randrange(0, len(h))])
                c.abort(rng.choice(["close", "rst"]))
                return None
            if name == "get_then_connect":
                c.send(self.req("GET", ok, "/hello"))
                why = self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
                if why:
                    return "GET: " + why
                c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (ok, ok)).encode())
                why = self.expect(c.read_response("CONNECT", self.dl(), connect=True), 200)
                if why:
                    return "CONNECT after GET: " + why
                c.start_tls(host, self.dl(), ctx=self.ca_ctx)
                c.send(("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n" % ok).encode())
                return self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
            if name == "route_ok":
                for k in range(rng.choice([1, 1, 3])):
                    c.send(("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n" % ok).encode())
                    why = self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
                    if why:
                        return "request %d through the route: %s" % (k + 1, why)
                return None
            if name == "route_mismatch":
                # a route whose origin fails DANE: closed, and not a byte back
                c.send(("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n" % mm).encode())
                got = c.drain(self.dl())
                if not c.eof and not c.reset:
                    return "the route to a TLSA mismatch stayed open"
                return "the route to a TLSA mismatch sent %d bytes: %r" % (len(got), got[:60]) if got else None
            if name == "pipelined":
                n = rng.randint(2, 6)
                c.send(b"".join(self.req("GET", ok, "/hello") for _ in range(n)))
                for k in range(n):
                    why = self.expect(c.read_response("GET", self.dl()), 200, b"stress-origin")
                    if why:
                        return "pipelined response %d: %s" % (k + 1, why)
                return None
            return "unknown operation " + name
        except (OSError, Closed, TimeoutError, ValueError, ssl.SSLError) as ex:
            return "%s: %s" % (type(ex).__name__, ex)
        finally:
            c.abort("close")

    def run(self):
        a, e = self.args, self.env
        skip = set(x for x in (a.skip or "").split(",") if x)
        unknown = skip - set(n for n, _w in SOAK_OPS)
        if unknown:
            self.fail("--skip: unknown operation(s) %s; known: %s" % (",".join(sorted(unknown)),
                                                                      ",".join(n for n, _w in SOAK_OPS)))
            return 2
        names = [n for n, w in SOAK_OPS if n not in skip for _ in range(w)]
        # warm-up: one of each expected-success kind
        rng0 = random.Random("warm")
        for n in ("get", "connect_tls"):
            why = self.op(n, rng0)
            if why:
                self.fail("warm-up %s failed: %s" % (n, why))
                return 1
        ok, base, _ = self.proxy.settle(None, e["settle_deadline"], e["settle_stable"])
        if not ok:
            self.fail("connections stay open after the warm-up: %s" % fmt_snap(base))
            return 1
        target = base
        print("soak: %d rounds of %d operations, %d at a time; baseline %s, RSS %d KB%s" %
              (a.rounds, a.ops, a.workers, fmt_snap(base), self.proxy.rss_kb(),
               " (sanitizer build: RSS printed, not asserted)" if e["sanitized"] else ""), flush=True)
        rss = []
        cpu0 = self.proxy.cpu_s()
        failed_ops, times = {}, {}
        total = 0
        t0 = time.monotonic()
        for rnd in range(a.rounds):
            rng = random.Random("%s/soak/%d" % (a.seed, rnd))
            plan = [(rng.choice(names), random.Random("%s/%d/%d" % (a.seed, rnd, i))) for i in range(a.ops)]
            tr = time.monotonic()
            with ThreadPoolExecutor(max_workers=a.workers) as ex:
                outs = list(ex.map(lambda p: (p[0],) + self.timed_op(p[0], p[1]), plan))
            for name, why, dt in outs:
                total += 1
                t = times.setdefault(name, [0, 0.0, 0.0])
                t[0] += 1
                t[1] += dt
                t[2] = max(t[2], dt)
                if why:
                    failed_ops.setdefault(name, []).append(why)
            ok, snap, waited = self.proxy.settle(target, e["settle_deadline"], e["settle_stable"])
            r = self.proxy.rss_kb()
            rss.append(r)
            nfail = sum(1 for _, why, _dt in outs if why)
            print("round %d/%d: %d ops in %.1f s (%d unexpected), settled in %.2f s: %s, RSS %d KB" %
                  (rnd + 1, a.rounds, len(outs), time.monotonic() - tr, nfail, waited, fmt_snap(snap), r),
                  flush=True)
            if not self.proxy.alive():
                self.fail("the proxy died in round %d" % (rnd + 1))
                return 1
            if not ok:
                msg = ("round %d: the proxy did not return to the baseline (%s): %s" %
                       (rnd + 1, fmt_snap(target), fmt_snap(snap)))
                if not self.attributed:
                    self.attributed = True
                    msg += "\n" + self.attribute()
                self.fail(msg)
                _ok, snap2, _ = self.proxy.settle(target, e["settle_deadline"], e["settle_stable_min"])
                target = snap2 or target
            if rnd >= 1 and not e["sanitized"]:
                tol = max(RSS_TOLERANCE_KB, rss[0] * RSS_TOLERANCE_PCT // 100)
                if r > rss[0] + tol:
                    self.fail("round %d: RSS %d KB, more than %d KB above the %d KB after round 1 (tolerance: "
                              "max(%d KB, %d%%))" % (rnd + 1, r, tol, rss[0], RSS_TOLERANCE_KB, RSS_TOLERANCE_PCT))
        for name, whys in sorted(failed_ops.items()):
            uniq = sorted(set(whys))
            self.fail("%s: %d of its operations went wrong; e.g. %s" % (name, len(whys), " | ".join(uniq[:3])))
        self.log.poll()
        for raw, why in self.log.bad[:3]:
            self.fail("a log line is not valid UTF-8 JSON (issue 9 finding 9): %s: %r" % (why, raw))
        print("soak: operations (count, mean/max ms): %s" % ", ".join(
            "%s %d %.0f/%.0f" % (n, t[0], t[1] * 1000 / t[0], t[2] * 1000) for n, t in sorted(times.items())))
        print("soak: %d operations in %.1f s, proxy CPU %.1f s; RSS after each round (KB): %s" %
              (total, time.monotonic() - t0, self.proxy.cpu_s() - cpu0, " ".join(str(x) for x in rss)), flush=True)
        return 1 if self.failures else 0


def cmd_soak(env, args):
    return Soak(env, args).run()


# ------------------------------------------------------------------ the hostile origin


def hostile_answer(mode):
    """hostile_answer - what the hostile origin sends for a mode (byte strings and actions: "close", "rst",
    "sleep"). It answers HEAD like GET, body included: the proxy must not pass that body on."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nstress-origin\n"
    return {
        "ok": [ok],
        "close-mid-head": [b"HTTP/1.1 200 OK\r\nContent-Le", "close"],
        "close-mid-body": [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", "close"],
        "rst": [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", "rst"],
        "garbage": [b"\x00\x01\x02 not http at all\r\n\r\n", "close"],
        "bad-cl": [b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nabc"],
        "bad-chunk": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
        "huge-head": [b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"h" * 100000 + b"\r\nContent-Length: 0\r\n\r\n"],
        "no-length": [b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "close"],
        "extra-after": [ok + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        "interim": [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok],
        "upgrade": [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nraw bytes"],
        "slow-head": [b"HTTP/1.1 200 OK\r\n", "sleep", b"Content-Length: 14\r\n\r\nstress-origin\n"],
        "two-cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Length: 3\r\n\r\nstress-origin\n"],
        "silence": ["sleep", "close"],
    }.get(mode, [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])


def hostile_conn(ctx, raw):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
        s.settimeout(10)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    s.close()
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            first = head.split(b"\r\n", 1)[0].split(b" ")
            path = first[1].split(b"?")[0].decode("latin-1") if len(first) > 1 else "/"
            m = re.search(rb"\r\ncontent-length: *([0-9]+)", head, re.I)
            need = int(m.group(1)) if m else 0
            while len(buf) < need:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            buf = buf[need:]
            for part in hostile_answer(path.strip("/")):
                if part == "close":
                    s.close()
                    return
                if part == "rst":
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                    return
                if part == "sleep":
                    time.sleep(0.3)
                    continue
                s.sendall(part)
    except (OSError, ssl.SSLError, ValueError):
        try:
            raw.close()
        except OSError:
            pass


def cmd_hostile(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(128)
    print("ready %d" % args.port, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=hostile_conn, args=(ctx, c), daemon=True).start()


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fuzz")
    f.add_argument("env")
    f.add_argument("--seed", default="1")
    f.add_argument("--cases", type=int, default=600)
    f.add_argument("--per-round", type=int, default=40)
    f.add_argument("--workers", type=int, default=8)
    f.add_argument("--replay", default=None, help="R:C - run case C of round R alone")
    f.add_argument("--case-file", default=None, help="run the case in this JSON file alone")
    f.add_argument("--max-isolate", type=int, default=2, help="leaking rounds to isolate and minimize")
    f.add_argument("--max-failed-rounds", type=int, default=3,
                   help="stop after this many rounds that left descriptors behind")
    f.add_argument("--ignore", default="", help="oracles to set aside (to explore past a known, reported bug), "
                   "comma-separated: " + ",".join(ORACLES))
    s = sub.add_parser("soak")
    s.add_argument("env")
    s.add_argument("--seed", default="1")
    s.add_argument("--rounds", type=int, default=6)
    s.add_argument("--ops", type=int, default=500)
    s.add_argument("--workers", type=int, default=8)
    s.add_argument("--skip", default="", help="operation kinds to leave out, comma-separated")
    h = sub.add_parser("hostile")
    h.add_argument("port", type=int)
    h.add_argument("cert")
    h.add_argument("key")
    args = ap.parse_args()
    if args.cmd == "hostile":
        cmd_hostile(args)
        return 0
    with open(args.env) as fh:
        env = json.load(fh)
    global HALF_CLOSE_WAIT
    HALF_CLOSE_WAIT = env["t_mut"] * 2
    if getattr(args, "seed", None) == "random":
        args.seed = str(random.SystemRandom().randrange(1, 10 ** 9))
    if args.cmd == "fuzz":
        rc = cmd_fuzz(env, args)
    else:
        rc = cmd_soak(env, args)
    print("stress: %s" % ("PASS" if rc == 0 else "FAIL"), flush=True)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        os._exit(130)
