#!/usr/bin/env python3
"""service_daemon.py DANEPROXY [--expect-reload] - the daemon under a pretend service manager, on loopback only.

1. notify: NOTIFY_SOCKET names a datagram socket of this test; READY=1 must come, and when it does the listener
   must already accept; with --expect-reload, SIGHUP must give RELOADING=1 (with MONOTONIC_USEC) then READY=1;
   SIGTERM must give STOPPING=1 and a clean exit.
2. privdrop (as root only): [proxy] user = nobody; once the listener accepts, every worker's /proc/PID/status
   shows nobody's uid (the supervisor stays root)
   and gid everywhere and no capability; without user, root is kept with a warning on stderr.

Every wait polls with a deadline; nothing sleeps for readiness. Prints "skip:" for the parts it cannot run.
"""
import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEADLINE = 20.0


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(cond, what, proc=None):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            fail("%s: daneproxy exited with %d first" % (what, proc.returncode))
        select.select([], [], [], 0.02)   # a short poll interval, not a readiness sleep
    fail("%s: not within %.0f s" % (what, DEADLINE))


class Manager:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.seen = []

    def expect(self, key, proc):
        """Read datagrams until one carries KEY=...; its assignments as a dict."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if r:
                msg = self.sock.recv(4096).decode()
                self.seen.append(msg)
                fields = dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)
                if key in fields:
                    return fields
            elif proc.poll() is not None:
                fail("waiting for %s: daneproxy exited with %d (seen: %r)" % (key, proc.returncode, self.seen))
        fail("no %s within %.0f s (seen: %r)" % (key, DEADLINE, self.seen))


def start(daneproxy, args, env, tmp):
    err = open(os.path.join(tmp, "stderr"), "w+")
    out = open(os.path.join(tmp, "stdout"), "w+")
    proc = subprocess.Popen([daneproxy] + args, env=env, stdout=out, stderr=err)
    return proc, out, err


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("%s: no exit within %.0f s of SIGTERM" % (what, DEADLINE))
    if rc != 0:
        fail("%s: exit status %d after SIGTERM" % (what, rc))


def test_notify(daneproxy, expect_reload):
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        mgr = Manager(os.path.join(tmp, "notify"))
        env = dict(os.environ, NOTIFY_SOCKET=mgr.path)
        proc, _, err = start(daneproxy, ["serve", "--listen", "127.0.0.1:%d" % port, "--state-dir",
                                         os.path.join(tmp, "state")], env, tmp)
        try:
            mgr.expect("READY", proc)
            if not accepts(port):
                fail("READY=1 came before the listener accepted")
            if expect_reload:
                proc.send_signal(signal.SIGHUP)
                f = mgr.expect("RELOADING", proc)
                if not f.get("MONOTONIC_USEC", "").isdigit():
                    fail("RELOADING=1 without MONOTONIC_USEC: %r" % f)
                mgr.expect("READY", proc)
                if not accepts(port):
                    fail("the listener stopped accepting across a reload")
            proc.send_signal(signal.SIGTERM)
            mgr.expect("STOPPING", proc)
            rc = proc.wait(timeout=DEADLINE)
            if rc != 0:
                err.seek(0)
                fail("exit status %d after SIGTERM: %s" % (rc, err.read()))
        finally:
            if proc.poll() is None:
                proc.kill()
        print("ok: notify: %s" % " | ".join(m.replace("\n", "\\n") for m in mgr.seen))


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapAmb"):
                ids[k] = v.split()
    return ids


def workers(pid):
    """The worker processes of the supervisor pid."""
    kids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(p))
    return kids


def test_privdrop(daneproxy):
    if os.geteuid() != 0:
        print("skip: privdrop needs root")
        return
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = os.path.join(tmp, "daneproxy.conf")
        with open(conf, "w") as f:
            f.write("[proxy]\nlisten = 127.0.0.1:%d\nuser = nobody\n[connect]\nstate_dir = %s/state\n" % (port, tmp))
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        proc, _, err = start(daneproxy, ["-c", conf], env, tmp)
        try:
            wait_for(lambda: accepts(port), "listener with user = nobody", proc)
            # The workers switch after their sockets are bound and the keys read; the supervisor stays root, to bind
            # new listeners and read root-owned keys on a reload. Poll until every worker has switched.
            def workers_switched():
                kids = workers(proc.pid)
                return kids and all(proc_ids(k)["Uid"] == [str(nobody.pw_uid)] * 4 for k in kids)
            wait_for(workers_switched, "uid nobody in every worker", proc)
            ids = proc_ids(workers(proc.pid)[0])
            if ids["Gid"] != [str(nobody.pw_gid)] * 4:
                fail("gids after the switch: %r" % ids["Gid"])
            if "0" in ids.get("Groups", []):
                fail("group root kept: %r" % ids["Groups"])
            for cap in ("CapEff", "CapPrm", "CapAmb"):
                if int(ids[cap][0], 16) != 0:
                    fail("%s left after the switch: %s" % (cap, ids[cap][0]))
            if not accepts(port):
                fail("the listener stopped accepting after the switch")
            stop(proc, "user = nobody")
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        text = err.read()
        if "nobody" not in text:
            fail("no log line about the switch to nobody: %r" % text)

        # Root without user: still root, and a warning says so.
        port = free_port()
        proc, _, err = start(daneproxy, ["--listen", "127.0.0.1:%d" % port, "--state-dir", tmp + "/state"], env, tmp)
        try:
            wait_for(lambda: accepts(port), "listener as root", proc)
            err.flush()
            wait_for(lambda: "running as root" in open(os.path.join(tmp, "stderr")).read(), "warning about root",
                     proc)
            stop(proc, "root without user")
        finally:
            if proc.poll() is None:
                proc.kill()
    print("ok: privdrop: user = nobody switched uid, gid and groups, no capability left; root alone is warned about")


def main():
    if len(sys.argv) < 2:
        print("usage: service_daemon.py DANEPROXY [--expect-reload]")
        sys.exit(2)
    daneproxy = sys.argv[1]
    test_notify(daneproxy, "--expect-reload" in sys.argv[2:])
    test_privdrop(daneproxy)


if __name__ == "__main__":
    main()
