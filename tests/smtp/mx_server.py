#!/usr/bin/python3
"""mx_server.py - a real MX on loopback for the mail tests: aiosmtpd (python3-aiosmtpd) with STARTTLS, made to
misbehave on purpose when asked.

usage: mx_server.py --listen ADDR:PORT --name NAME --spool DIR [--cert CHAIN.pem --key KEY.pem]
                    [--mode MODE] [--ready FILE]

Modes (what the server does differently from a well-behaved Postfix-like MX):
  normal       STARTTLS offered with --cert/--key (the certificate the bed's TLSA records name, or another)
  nostarttls   STARTTLS never offered (and refused with 502 if asked anyway)
  refuse454    STARTTLS offered, answered "454 4.7.0 TLS not available due to local problem"
  inject       the "220 Ready to start TLS" reply is followed, in the same write, by "250 injected" (the STARTTLS
               command injection of CVE-2011-0411 turned around: bytes the client must not take as TLS or SMTP)
  greeting13   a legitimate 13-line greeting of about 850 octets
  reject       STARTTLS offered; every RCPT TO is refused with "550 5.1.1 no such user"
  no8bit       STARTTLS offered, 8BITMIME not announced (a client must not send 8-bit content)
  plain        STARTTLS offered, but neither PIPELINING nor ENHANCEDSTATUSCODES (a client must not pipeline)

Every event is one JSON line in DIR/NAME.events (connect, ehlo, starttls, tls, mail, rcpt, data, quit, close),
so that a test can tell what reached this MX and what never did; "mail" says whether the client sent more before
the reply to MAIL FROM ("pipelined": the server holds that reply up to 1 s to see whether more comes, as a slow
MX would; a client that waits for it sends nothing meanwhile), "rcpt" whether more was already waiting; each message is stored as DIR/NAME.msgN.eml,
exactly the bytes of the DATA (dot-stuffing removed, as received). The ready file is written once the socket
listens. SIGTERM stops it.
In every mode some recipients make the MX misbehave in that transaction, whatever the others: one whose local part
starts with "reject" is refused like that ("rcpt-refused"), so that a transaction can have accepted and refused
recipients; with "drop-in-data" the MX closes the connection once the first octets of the content have come
("drop"), with "drop-at-end" it closes it at the end of the data without a reply and without storing the message
("drop"): an MX that goes away in the middle of a message. A recipient starting with "slow-rcpt" gets its RCPT
reply, and a transaction with one starting with "slow-at-end" its reply to the end of data, only after 4 s
("slow"): an MX that answers too late.
"""
import argparse
import asyncio
import hashlib
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session

SLOW_SECONDS = 4   # how long "slow-rcpt" and "slow-at-end" recipients hold a reply

GREETING_13 = [
    "220-{host} line {i:02d}: welcome here, unauthorised use prohibited".format(host="mx.example.net", i=i)
    for i in range(1, 13)
] + ["220 mx.example.net ESMTP ready"]


class Recorder:
    """The events and messages of one MX."""

    def __init__(self, spool, name):
        self.spool = spool
        self.name = name
        self.n_msgs = 0
        self.events = open(os.path.join(spool, name + ".events"), "a", buffering=1)

    def event(self, kind, **fields):
        fields["event"] = kind
        self.events.write(json.dumps(fields, sort_keys=True) + "\n")


def waiting(server):
    """Did the client send more before this command's reply? (The reader's buffer: a test server may look.)"""
    return len(getattr(server._reader, "_buffer", b"")) > 0


def drops(envelope, how):
    """Does a recipient of the transaction ask for this drop?"""
    return any(r.lower().startswith(how) for r in envelope.rcpt_tos)


class Handler:
    """aiosmtpd hooks: record the envelope and store every message."""

    def __init__(self, rec, mode):
        self.rec = rec
        self.mode = mode

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.rec.event("ehlo", peer=session.peer[1], name=hostname, tls=session.ssl is not None)
        if self.mode == "nostarttls":
            responses = [r for r in responses if "STARTTLS" not in r]
        if self.mode == "no8bit":
            responses = [r for r in responses if "8BITMIME" not in r]
        # Announce what a Postfix MX announces; aiosmtpd honours all of it (PIPELINING is a client matter).
        if self.mode != "plain":
            last = responses.pop()
            responses += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250 " + last[4:]]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        pipelined = waiting(server)
        for _ in range(100):
            if pipelined:
                break
            await asyncio.sleep(0.01)
            pipelined = waiting(server)
        self.rec.event("mail", peer=session.peer[1], sender=address, options=mail_options,
                       tls=session.ssl is not None, pipelined=pipelined)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "reject" or address.lower().startswith("reject"):
            self.rec.event("rcpt-refused", peer=session.peer[1], rcpt=address)
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        self.rec.event("rcpt", peer=session.peer[1], rcpt=address, tls=session.ssl is not None,
                       pipelined=waiting(server))
        if address.lower().startswith("slow-rcpt"):
            self.rec.event("slow", peer=session.peer[1], where="rcpt")
            await asyncio.sleep(SLOW_SECONDS)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if drops(envelope, "drop-at-end"):
            self.rec.event("drop", peer=session.peer[1], where="at the end of data")
            server.transport.abort()
            return "451 4.3.0 never sent"
        if drops(envelope, "slow-at-end"):
            self.rec.event("slow", peer=session.peer[1], where="at the end of data")
            await asyncio.sleep(SLOW_SECONDS)
        self.rec.n_msgs += 1
        path = os.path.join(self.rec.spool, "%s.msg%d.eml" % (self.rec.name, self.rec.n_msgs))
        with open(path, "wb") as f:
            f.write(envelope.original_content)
        self.rec.event("data", peer=session.peer[1], file=path, bytes=len(envelope.original_content),
                       sha256=hashlib.sha256(envelope.original_content).hexdigest(), sender=envelope.mail_from,
                       rcpts=envelope.rcpt_tos, tls=session.ssl is not None)
        return "250 2.0.0 Ok: queued as %s%d" % (self.rec.name, self.rec.n_msgs)

    async def handle_QUIT(self, server, session, envelope):
        self.rec.event("quit", peer=session.peer[1])
        return "221 2.0.0 Bye"


class MX(SMTP):
    """aiosmtpd's SMTP with the misbehaviours of --mode."""

    def __init__(self, handler, rec, mode, **kw):
        super().__init__(handler, **kw)
        self.rec = rec
        self.mode = mode
        self.greeted = False

    def connection_made(self, transport):
        super().connection_made(transport)
        if not self.greeted and self.transport is not None:
            peer = transport.get_extra_info("peername")
            self.rec.event("connect", peer=peer[1] if peer else None)

    def connection_lost(self, exc):
        self.rec.event("close", peer=self.session.peer[1] if self.session and self.session.peer else None)
        super().connection_lost(exc)

    async def push(self, status):
        if not self.greeted:
            self.greeted = True
            if self.mode == "greeting13":
                # One write, as a real server sends it: the client must wait for the final "220 " line.
                self._writer.write(("\r\n".join(GREETING_13) + "\r\n").encode())
                await self._writer.drain()
                return
        if self.mode == "inject" and status == "220 Ready to start TLS":
            self._writer.write(b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n")
            await self._writer.drain()
            return
        await super().push(status)

    async def smtp_DATA(self, arg):
        if not (self.envelope and drops(self.envelope, "drop-in-data")):
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.read(1)
        self.rec.event("drop", peer=self.session.peer[1], where="in the data")
        self.transport.abort()

    async def smtp_STARTTLS(self, arg):
        self.rec.event("starttls", peer=self.session.peer[1])
        if self.mode == "refuse454":
            await self.push("454 4.7.0 TLS not available due to local problem")
            return
        if self.mode == "nostarttls":
            await self.push("502 5.5.1 Error: command not implemented")
            return
        await super().smtp_STARTTLS(arg)
        ssl_obj = self.transport.get_extra_info("ssl_object") if self.transport else None
        self.rec.event("tls", peer=self.session.peer[1], version=ssl_obj.version() if ssl_obj else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--spool", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mode", default="normal",
                    choices=["normal", "nostarttls", "refuse454", "inject", "greeting13", "reject", "plain",
                             "no8bit"])
    ap.add_argument("--ready")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    rec = Recorder(a.spool, a.name)
    tls = None
    if a.cert and a.mode != "nostarttls":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    handler = Handler(rec, a.mode)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return MX(handler, rec, a.mode, hostname=a.name, ident="ESMTP aiosmtpd", tls_context=tls,
                  decode_data=False, data_size_limit=10240000, loop=loop)

    server = loop.run_until_complete(loop.create_server(factory, host=host, port=int(port), reuse_address=True))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    rec.event("listening", addr=a.listen, mode=a.mode)
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.ready + ".tmp", a.ready)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
