#!/usr/bin/env python3
"""attack.py - hostile clients for the hardening tests (tests/e2e/hardening.bash); standard library only.

Each subcommand talks to a daneproxy HTTP listener on loopback and prints one JSON object on stdout.

  getconnect HOST PORT --get URL --connect HOST:PORT [--n N]
        N times, on a new connection each: an absolute-form GET (kept alive), then CONNECT on the same connection,
        then close. Reports the statuses seen.
  midbody HOST PORT --url URL [--n N] [--length L]
        N connections, each sending a POST with Content-Length L and 3 body bytes, then closing at once.
  hello HOST PORT --connect HOST:PORT --sni NAME [--patch FROM=TO] [--split K] [--pad N] [--finish PATH]
        CONNECT, then a real ClientHello for NAME (made by Python's ssl module) re-framed: --patch replaces bytes
        in it (hex, same length: e.g. the SNI), --split K cuts the handshake message into two records after K
        bytes, --pad N adds an N-byte extension of a GREASE type. Reports what came back: a ServerHello, an alert, or
        the connection closing. --finish PATH (only without --patch/--pad) completes the handshake and GETs PATH.
"""
import json
import socket
import ssl
import struct
import sys
import time


def connect(host, port, timeout=10.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def read_head(s, buf=b""):
    """Read up to the end of a response head; return (head, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return buf, b""
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1].strip())
    return 0


def status_of(head):
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def cmd_getconnect(args):
    host, port = args[0], int(args[1])
    url = args[args.index("--get") + 1]
    target = args[args.index("--connect") + 1]
    n = int(args[args.index("--n") + 1]) if "--n" in args else 1
    statuses = []
    for _ in range(n):
        s = connect(host, port)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
        head, rest = read_head(s)
        need = content_length(head) - len(rest)
        while need > 0:
            d = s.recv(65536)
            if not d:
                break
            need -= len(d)
        st1 = status_of(head)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        head2, _ = read_head(s)
        statuses.append([st1, status_of(head2)])
        s.close()
    print(json.dumps({"statuses": statuses}))


def cmd_midbody(args):
    host, port = args[0], int(args[1])
    url = args[args.index("--url") + 1]
    n = int(args[args.index("--n") + 1]) if "--n" in args else 1
    length = int(args[args.index("--length") + 1]) if "--length" in args else 100000
    ports = []
    for _ in range(n):
        s = connect(host, port)
        ports.append(s.getsockname()[1])
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nabc" % (url, length)).encode())
        s.close()
    print(json.dumps({"sent": n, "local_ports": ports}))


def records(data):
    """Split TLS records: [(type, payload)]."""
    out, i = [], 0
    while i + 5 <= len(data):
        t, ln = data[i], struct.unpack(">H", data[i + 3:i + 5])[0]
        out.append((t, data[i + 5:i + 5 + ln]))
        i += 5 + ln
    return out


def frame(msg, sizes):
    """The handshake message msg in records of the given payload sizes (the last takes the rest)."""
    out, i = b"", 0
    for k in sizes + [len(msg)]:
        part = msg[i:i + k] if k < len(msg) - i else msg[i:]
        if not part:
            break
        out += b"\x16\x03\x01" + struct.pack(">H", len(part)) + part
        i += len(part)
        if i >= len(msg):
            break
    return out


def add_padding(msg, n):
    """Append an extension of n zero bytes to a ClientHello handshake message: a GREASE type (RFC 8701), which
    servers must ignore (OpenSSL may already have sent the padding extension, and a second one is an error)."""
    body = bytearray(msg[4:])
    p = 2 + 32
    p += 1 + body[p]
    p += 2 + struct.unpack(">H", body[p:p + 2])[0]
    p += 1 + body[p]
    ext_len = struct.unpack(">H", body[p:p + 2])[0]
    body[p:p + 2] = struct.pack(">H", ext_len + 4 + n)
    body += struct.pack(">HH", 0xFAFA, n) + b"\0" * n
    return bytes([1]) + struct.pack(">I", len(body))[1:] + bytes(body)


def cmd_hello(args):
    host, port = args[0], int(args[1])
    target = args[args.index("--connect") + 1]
    sni = args[args.index("--sni") + 1]
    patch = args[args.index("--patch") + 1] if "--patch" in args else None
    split = int(args[args.index("--split") + 1]) if "--split" in args else None
    pad = int(args[args.index("--pad") + 1]) if "--pad" in args else 0
    finish = args[args.index("--finish") + 1] if "--finish" in args else None
    res = {"connect_status": 0, "server_hello": False, "alert": False, "closed": False, "handshake": False,
           "response": ""}
    s = connect(host, port)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    head, rest = read_head(s)
    res["connect_status"] = status_of(head)
    if res["connect_status"] != 200:
        print(json.dumps(res))
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outg.read()
    msg = b"".join(p for t, p in records(hello) if t == 22)
    if patch:
        frm, to = (bytes.fromhex(x) for x in patch.split("="))
        assert len(frm) == len(to) and frm in msg, "patch target not in the hello"
        msg = msg.replace(frm, to)
    if pad:
        msg = add_padding(msg, pad)
    sizes = [split] if split else []
    while pad and sum(sizes) + 16384 < len(msg):   # records of at most 16 KiB
        sizes.append(16384)
    wire = frame(msg, sizes)
    res["hello_bytes"] = len(msg)
    res["records"] = len(records(wire))
    s.sendall(wire)
    got = rest
    deadline = time.time() + 5
    s.settimeout(0.5)
    while time.time() < deadline and len(got) < 6:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            res["closed"] = True
            break
        if not d:
            res["closed"] = True
            break
        got += d
    if len(got) >= 6:
        res["server_hello"] = got[0] == 22 and got[5] == 2
        res["alert"] = got[0] == 21
    if finish and res["server_hello"] and not patch and not pad:
        inc.write(got)
        s.settimeout(5)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outg.read()
                if out:
                    s.sendall(out)
                d = s.recv(65536)
                if not d:
                    break
                inc.write(d)
        out = outg.read()
        if out:
            s.sendall(out)
        res["handshake"] = True
        obj.write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (finish, sni)).encode())
        s.sendall(outg.read())
        body = b""
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            inc.write(d)
            try:
                while True:
                    got_plain = obj.read(65536)
                    if not got_plain:
                        break
                    body += got_plain
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        res["response"] = body.decode("latin-1")
    s.close()
    print(json.dumps(res))


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"getconnect": cmd_getconnect, "midbody": cmd_midbody, "hello": cmd_hello}[cmd](args)


if __name__ == "__main__":
    main()
