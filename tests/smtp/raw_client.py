#!/usr/bin/python3
"""raw_client.py - an SMTP client that does exactly what it is told, for what swaks will not do: pipeline
commands in one write, send content with bare CR/LF or lone-dot lines (SMTP smuggling), send content in small
writes, cut the connection off in the middle of a message.

usage: raw_client.py --connect ADDR:PORT [--local-port PORT] [--chunk N] [--timeout S] STEP...

Steps, in order:
  send:TEXT      TEXT in one write (or --chunk pieces); escapes \\r \\n \\t \\\\ \\xHH are decoded
  message:FILE   FILE as message content: lines that start with "." dot-stuffed, then the ".<CRLF>" that ends
                 it (FILE must end with CRLF); in --chunk pieces, each its own write
  raw:FILE       FILE's bytes as they are (in --chunk pieces)
  replies:N      read N complete replies (a reply ends with its "NNN " line)
  until:FILE:TEXT  wait (up to --timeout) until FILE contains TEXT (the MX logged an event): a condition, not a
                 blind sleep
  close          close the connection (a client cut off: no QUIT, no end of data)
  eof            read until the server closes

Prints every reply line received as "<- LINE", then "== closed" if the server closed the connection, or
"== timeout" if a reply did not come in --timeout seconds (then stops). Exit status 0 unless the connection
could not be made (2).
"""
import argparse
import re
import socket
import sys
import time

REPLY_END = re.compile(rb"^[2-5][0-9][0-9](?: |$)")


def decode(text):
    """The escapes of a send: step."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and i + 3 < len(text):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}.get(nxt, ("\\" + nxt).encode())
            i += 2
            continue
        out += ch.encode("utf-8")
        i += 1
    return bytes(out)


def stuffed(data):
    """The content on the wire: dot-stuffed (RFC 5321 4.5.2), then the end of data."""
    lines = data.split(b"\r\n")
    if lines[-1] != b"":
        raise SystemExit("raw_client: a message file must end with CRLF")
    body = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines[:-1])
    return body + b"\r\n.\r\n"


def contains(path, text):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return text in f.read()
    except OSError:
        return False


class Conn:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.closed = False
        sock.settimeout(timeout)

    def line(self):
        while b"\n" not in self.buf:
            if self.closed:
                return None
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                if not self.buf:
                    return None
                data = b"\n"
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        while True:
            line = self.line()
            if line is None:
                return False
            print("<- " + line.decode("utf-8", "replace"), flush=True)
            if REPLY_END.match(line):
                return True


def send(sock, data, chunk):
    if chunk <= 0:
        sock.sendall(data)
        return
    for i in range(0, len(data), chunk):
        sock.sendall(data[i:i + chunk])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--local-port", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("steps", nargs="*")
    a = ap.parse_args()
    host, port = a.connect.rsplit(":", 1)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if a.local_port:
            sock.bind(("127.0.0.1", a.local_port))
        sock.connect((host, int(port)))
    except OSError as e:
        print("raw_client: %s: %s" % (a.connect, e), file=sys.stderr)
        return 2
    conn = Conn(sock, a.timeout)
    try:
        for step in a.steps:
            kind, _, arg = step.partition(":")
            if kind == "send":
                send(sock, decode(arg), a.chunk)
            elif kind == "message":
                send(sock, stuffed(open(arg, "rb").read()), a.chunk)
            elif kind == "raw":
                send(sock, open(arg, "rb").read(), a.chunk)
            elif kind == "replies":
                for _ in range(int(arg)):
                    if not conn.reply():
                        break
            elif kind == "until":
                path, _, text = arg.partition(":")
                deadline = time.monotonic() + a.timeout
                while not contains(path, text):
                    if time.monotonic() > deadline:
                        print("== timeout waiting for %s in %s" % (text, path), flush=True)
                        return 0
                    time.sleep(0.02)
            elif kind == "close":
                sock.close()
                return 0
            elif kind == "eof":
                while True:
                    line = conn.line()
                    if line is None:
                        break
                    print("<- " + line.decode("utf-8", "replace"), flush=True)
            else:
                raise SystemExit("raw_client: unknown step " + step)
            if conn.closed:
                break
    except socket.timeout:
        print("== timeout", flush=True)
        return 0
    except OSError as e:
        print("== error %s" % e, flush=True)
    if conn.closed:
        print("== closed", flush=True)
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
