#!/usr/bin/env python3
"""connect_helper.py - misbehaving CONNECT clients and a small load driver for tests/connect/connect.sh.

usage:
  connect_helper.py bad MODE PROXY_PORT HOST:PORT [HOLD_SECONDS]
      One client that misbehaves after (or before) the proxy's answer to CONNECT HOST:PORT. Modes:
        garbage        after 200, send bytes that are not TLS; expect the proxy to close
        half-hello     after 200, send half of a real ClientHello, then wait up to HOLD_SECONDS
        no-hello       after 200, send nothing, wait up to HOLD_SECONDS
        close-before   send the CONNECT head and close at once (verification still running)
        close-after    read the 200 and close at once (no ClientHello)
        close-hello    after 200, send a whole ClientHello and close without reading the ServerHello
        trickle        after 200, send a ClientHello one byte per second (never idle for long), up to HOLD_SECONDS
        half-head      send half a CONNECT head, then wait up to HOLD_SECONDS
      Prints "local PORT" as soon as the TCP connection exists, "stalled" once the misbehaviour is in place (the
      caller may then run other clients), and at the end one line:
        result status=CODE closed=yes|no after_ms=N got=BYTES
      (status = the proxy's answer to CONNECT, "none" if there was none; closed = the proxy closed the connection
      within the hold time). Exit 0 unless the helper itself failed.
  connect_helper.py load N CONCURRENCY OUTFILE -- CURL-ARGS...
      Run N curl processes (CONCURRENCY at a time), each a new connection; write one line per request to OUTFILE:
        exit_code http_code time_total_s serial
      and print "wall_s=W" (time from the first start to the last end).
"""
import os
import socket
import ssl
import subprocess
import sys
import threading
import time


def client_hello(host):
    """client_hello - the bytes of a real TLS ClientHello for host (Python's ssl over memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def read_head(sock, deadline):
    """read_head - the proxy's response head to CONNECT (bytes up to CRLFCRLF), or what came before EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(4096)
        except socket.timeout:
            break
        except OSError:
            break
        if not d:
            break
        buf += d
    return buf


def wait_close(sock, hold):
    """wait_close - wait up to hold seconds for the peer to close; returns (closed, elapsed_ms, bytes_got)."""
    t0 = time.monotonic()
    got = 0
    end = t0 + hold
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False, int((time.monotonic() - t0) * 1000), got
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return True, int((time.monotonic() - t0) * 1000), got
        if not d:
            return True, int((time.monotonic() - t0) * 1000), got
        got += len(d)


def bad(mode, proxy_port, target, hold):
    host = target.rsplit(":", 1)[0]
    head = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode()
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    print("local %d" % s.getsockname()[1], flush=True)
    status = "none"
    closed, after, got = False, 0, 0
    if mode == "close-before":
        s.sendall(head)
        s.close()
        print("stalled", flush=True)
        print("result status=none closed=yes after_ms=0 got=0", flush=True)
        return 0
    if mode == "half-head":
        s.sendall(head[: len(head) // 2])
        print("stalled", flush=True)
        closed, after, got = wait_close(s, hold)
        print("result status=none closed=%s after_ms=%d got=%d" % ("yes" if closed else "no", after, got), flush=True)
        s.close()
        return 0
    s.sendall(head)
    resp = read_head(s, time.monotonic() + 20)
    first = resp.split(b"\r\n", 1)[0].split()
    if len(first) >= 2:
        status = first[1].decode(errors="replace")
    if status != "200":
        s.close()
        print("stalled", flush=True)
        print("result status=%s closed=yes after_ms=0 got=0" % status, flush=True)
        return 0
    if mode == "close-after":
        s.close()
        print("stalled", flush=True)
        print("result status=200 closed=yes after_ms=0 got=0", flush=True)
        return 0
    if mode == "close-hello":
        s.sendall(client_hello(host))
        s.close()
        print("stalled", flush=True)
        print("result status=200 closed=yes after_ms=0 got=0", flush=True)
        return 0
    if mode == "garbage":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512))
    elif mode == "half-hello":
        ch = client_hello(host)
        s.sendall(ch[: len(ch) // 2])
    elif mode == "no-hello":
        pass
    elif mode == "trickle":
        ch = client_hello(host)
        print("stalled", flush=True)
        t0 = time.monotonic()
        for i in range(len(ch) - 1):
            if time.monotonic() - t0 >= hold:
                break
            try:
                s.sendall(ch[i:i + 1])
            except OSError:
                closed = True
                break
            c, _, g = wait_close(s, min(1.0, max(0.0, hold - (time.monotonic() - t0))))
            got += g
            if c:
                closed = True
                break
        after = int((time.monotonic() - t0) * 1000)
        print("result status=200 closed=%s after_ms=%d got=%d" % ("yes" if closed else "no", after, got), flush=True)
        s.close()
        return 0
    else:
        print("unknown mode %s" % mode, file=sys.stderr)
        return 2
    print("stalled", flush=True)
    closed, after, got = wait_close(s, hold)
    print("result status=%s closed=%s after_ms=%d got=%d" % (status, "yes" if closed else "no", after, got),
          flush=True)
    s.close()
    return 0


def load(n, conc, outfile, curl_args):
    fmt = "%{http_code} %{time_total} %{certs}"
    lines = [None] * n
    nxt = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = nxt[0]
                if i >= n:
                    return
                nxt[0] += 1
            p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "30", "-w", fmt] + curl_args,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out = p.stdout.decode(errors="replace")
            code, t, serial = "000", "0", "-"
            parts = out.split(" ", 2)
            if len(parts) >= 2:
                code, t = parts[0], parts[1]
            for ln in out.splitlines():
                if ln.startswith("Serial Number:"):
                    serial = ln.split(":", 1)[1].strip()
                    break  # the first certificate is the leaf
            lines[i] = "%d %s %s %s" % (p.returncode, code, t, serial)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    with open(outfile, "w") as f:
        for ln in lines:
            f.write((ln or "-1 000 0 -") + "\n")
    print("wall_s=%.3f" % wall)
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "bad":
        hold = float(argv[5]) if len(argv) > 5 else 5.0
        return bad(argv[2], int(argv[3]), argv[4], hold)
    if len(argv) >= 6 and argv[1] == "load" and argv[5] == "--":
        return load(int(argv[2]), int(argv[3]), argv[4], argv[6:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
