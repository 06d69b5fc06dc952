#!/usr/bin/env python3
"""smtpload.py - the SMTP load generator of bench/smtp: N messages, one SMTP session per message, C at a time.

Each session: greeting, EHLO, (STARTTLS and EHLO again with --starttls, certificate not verified), MAIL FROM,
RCPT TO, DATA, the message, ".", QUIT. A message counts as sent when the reply to its "." is 250. The messages are
SIZE bytes (headers + base64 body in 76-column lines, CRLF, no line starting with "."), all alike but for the
Message-ID. Prints one JSON object: counts, elapsed wall time, latency percentiles, its own CPU, first errors.

    smtpload.py --connect HOST:PORT --to RCPT [-n N] [-c C] [--size BYTES] [--starttls] [--helo NAME]
"""
import argparse
import asyncio
import base64
import json
import os
import resource
import ssl
import sys
import time


def make_body(size, to):
    """Headers (a format string for the Message-ID, always 18 characters) and a base64-looking body: SIZE bytes
    in all, CRLF lines of at most 78 octets, none starting with "."."""
    head = ("From: <bench@client.test>\r\nTo: <" + to + ">\r\nSubject: bench/smtp message\r\n"
            "Message-ID: <{id}@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
    left = size - len(head.format(id="x" * 18))
    filler = base64.b64encode(os.urandom(size)).decode().replace("+", "A").replace("/", "B")
    lines, pos = [], 0
    while left >= 2:
        take = min(76, left - 2)
        if left - (take + 2) == 1:   # never leave one octet: it could only be a bare LF
            take -= 1
        lines.append(filler[pos:pos + take] + "\r\n")
        left -= take + 2
        pos += 76
    return head, "".join(lines)


async def reply(reader):
    """One SMTP reply: (code, text of the last line); code 0 when the server closed."""
    while True:
        line = await reader.readline()
        if not line:
            return 0, "connection closed"
        if len(line) < 4 or line[3:4] != b"-":
            try:
                return int(line[:3]), line.decode(errors="replace").strip()
            except ValueError:
                return 0, "bad reply " + line.decode(errors="replace").strip()


async def one(args, idx, head, body, tls_ctx):
    reader = writer = None
    try:
        reader, writer = await asyncio.open_connection(args.host, args.port)

        async def cmd(text, want):
            if text is not None:
                writer.write(text.encode() + b"\r\n")
            code, line = await reply(reader)
            if code != want:
                raise RuntimeError(f"{text or 'greeting'}: {line}")

        await cmd(None, 220)
        await cmd("EHLO " + args.helo, 250)
        if args.starttls:
            await cmd("STARTTLS", 220)
            await writer.start_tls(tls_ctx, server_hostname=None)
            await cmd("EHLO " + args.helo, 250)
        await cmd(f"MAIL FROM:<bench@client.test> SIZE={args.size}", 250)
        await cmd(f"RCPT TO:<{args.to}>", 250)
        await cmd("DATA", 354)
        writer.write(head.format(id=f"{os.getpid():08d}.{idx:09d}").encode())
        writer.write(body.encode())
        await cmd(".", 250)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        try:
            await asyncio.wait_for(reply(reader), 10)
        except asyncio.TimeoutError:
            pass
        return None
    except Exception as e:  # noqa: BLE001 - every failure is one failed message, reported
        return f"{type(e).__name__}: {e}"
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass


async def main_async(args):
    head, body = make_body(args.size, args.to)
    tls_ctx = None
    if args.starttls:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls_ctx.check_hostname = False
        tls_ctx.verify_mode = ssl.CERT_NONE
    queue = list(range(args.n))
    queue.reverse()
    lat, errors = [], []

    async def worker():
        while queue:
            idx = queue.pop()
            t0 = time.monotonic()
            err = await asyncio.wait_for(one(args, idx, head, body, tls_ctx), args.timeout)
            if err is None:
                lat.append(time.monotonic() - t0)
            else:
                errors.append(err)

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(min(args.c, args.n))))
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

    return {
        "t_start": t0,   # CLOCK_MONOTONIC, comparable with the harness's time.monotonic()
        "sent": len(lat), "failed": len(errors), "elapsed_s": round(elapsed, 4),
        "msg_per_s": round(len(lat) / elapsed, 2) if elapsed > 0 else None,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 4),
        "message_bytes": len(head.format(id="x" * 18)) + len(body),
        "errors": errors[:5],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", required=True, help="HOST:PORT")
    ap.add_argument("--to", required=True, help="recipient address")
    ap.add_argument("-n", type=int, default=100, help="messages (default 100)")
    ap.add_argument("-c", type=int, default=10, help="concurrent sessions (default 10)")
    ap.add_argument("--size", type=int, default=10240, help="message size in bytes (default 10240)")
    ap.add_argument("--starttls", action="store_true", help="STARTTLS before MAIL (no verification)")
    ap.add_argument("--helo", default="client.test")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per message (default 60)")
    args = ap.parse_args()
    args.host, _, port = args.connect.rpartition(":")
    args.port = int(port)
    res = asyncio.run(main_async(args))
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")
    return 0 if res["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
