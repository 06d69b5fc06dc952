#!/usr/bin/env python3
"""bench.py - the measuring half of bench/smtp/run (run it through `run`, which sets up the namespaces).

Starts the DNSSEC test bed (NSD + a validating unbound on 127.0.0.1:53, which /etc/resolv.conf points at inside
the private mount namespace), the MX sink on mx1.dane.test:25, daneproxy as an SMTP smarthost, and two private
Postfix instances: "direct" (smtp_tls_security_level = dane, delivering to the MX itself) and "relay" (no TLS,
relayhost = daneproxy: the legacy MTA of issue 12). Then it delivers N messages per row with smtpload.py, rows
interleaved over the repetitions, and measures each row's CPU from /proc. Prints a Markdown section and writes it
with the raw figures (JSON) to --out.
"""
import argparse
import json
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK = os.sysconf("SC_CLK_TCK")
DP_PORT, PF_DIRECT_PORT, PF_RELAY_PORT = 2525, 2526, 2527

ROWS = {
    "direct": "direct STARTTLS to the MX, no DANE (limit)",
    "daneproxy": "daneproxy smarthost, policy dane, TLSA cached",
    "postfix": "Postfix direct, smtp_tls_security_level = dane",
    "postfix-relay": "Postfix (no TLS) relaying through daneproxy",
}


def log(msg):
    print(f"[smtp-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log("FATAL: " + msg)
    sys.exit(1)


# ------------------------------------------------------------------ processes

class Procs:
    """Every process group this run started, stopped on exit (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.groups = []
        self.postfix = []

    def spawn(self, name, argv, work, **kw):
        out = open(os.path.join(work, "logs", name + ".out"), "w")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        self.groups.append((name, p))
        return p

    def stop_all(self):
        for conf in self.postfix:
            subprocess.run(["postfix", "-c", conf, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, p in reversed(self.groups):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                if p.poll() is not None:
                    break
                time.sleep(0.1)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.groups = []
        for conf in self.postfix:   # a master that did not stop in time
            pid = postfix_master_pid(conf)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.postfix = []


def wait_for(seconds, cond, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    die(f"timed out after {seconds} s waiting for {what}")


def port_listening(addr, port):
    want = "%08X:%04X" % (int.from_bytes(bytes(int(x) for x in addr.split(".")), "little"), port)
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])


# ------------------------------------------------------------------ CPU from /proc

def task_runtime(pid):
    """Nanosecond CPU time of the live threads of pid (/proc/PID/task/*/schedstat), in seconds."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def proc_table(precise=()):
    """pid -> (comm, pgrp, session, own CPU, reaped children's CPU) in seconds, for every process.

    Own CPU comes from /proc/PID/stat (utime+stime, 10 ms ticks, truncated per process); for processes whose
    session or process group is in `precise` it is the larger of that and the nanosecond sum of the live threads'
    schedstat: per-process truncation would otherwise lose up to two ticks for each of Postfix's many processes,
    and the stat figure still wins where threads have exited (the MX sink's per-connection threads)."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        # fields[0] is state (field 3): pgrp 5, session 6, utime 14, stime 15, cutime 16, cstime 17
        pgrp, sid = int(fields[2]), int(fields[3])
        own = (int(fields[11]) + int(fields[12])) / CLK
        if pgrp in precise or sid in precise:
            own = max(own, task_runtime(d))
        table[int(d)] = (comm, pgrp, sid, own, (int(fields[13]) + int(fields[14])) / CLK)
    return table


def snapshot(sel):
    """sel: name -> ('pgrp'|'session', id[, comm]). Returns name -> (seconds incl. reaped children, pids)."""
    t = proc_table(precise={spec[1] for spec in sel.values()})
    out = {}
    for name, spec in sel.items():
        kind, ident = spec[0], spec[1]
        comm = spec[2] if len(spec) > 2 else None
        col = 1 if kind == "pgrp" else 2
        pids = [p for p, v in t.items() if v[col] == ident and (comm is None or v[0] == comm)]
        # with a comm filter, only the selected processes' own time (their reaped children belong to others)
        cpu = sum(t[p][3] + (0 if comm else t[p][4]) for p in pids)
        out[name] = (cpu, set(pids))
    return out


# ------------------------------------------------------------------ Postfix

MASTER_CF = """\
# generated by bench/smtp/bench.py: Postfix's own services, no chroot, nothing local
{listen} inet  n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
# smtp(8) processes live for the whole run (max_use, max_idle), so their CPU can be read from /proc;
# Postfix's default (max_use 100) would add an exec every 100 deliveries
smtp      unix  -       -       n       -       -       smtp -o max_use=1000000 -o max_idle=3600
relay     unix  -       -       n       -       -       smtp -o max_use=1000000 -o max_idle=3600
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_master_pid(conf):
    base = os.path.dirname(conf)
    try:
        with open(os.path.join(base, "spool", "pid", "master.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def start_postfix(procs, work, name, port, extra):
    base = os.path.join(work, "postfix-" + name)
    conf, spool, data = (os.path.join(base, d) for d in ("etc", "spool", "data"))
    for d in (conf, spool, data):
        os.makedirs(d, exist_ok=True)
    pw = pwd.getpwnam("postfix")
    os.chown(data, pw.pw_uid, pw.pw_gid)
    main = {
        "compatibility_level": "3.6",
        "queue_directory": spool,
        "data_directory": data,
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": f"{name}.client.test",
        "mydestination": "",
        "local_transport": "error:no local delivery in this benchmark",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "maillog_file_prefixes": base,
        "maillog_file": os.path.join(base, "maillog"),
        "biff": "no",
        # a new MX session per message, and every TLS handshake a full one
        "smtp_connection_cache_on_demand": "no",
        "smtp_tls_session_cache_database": "",
        "smtp_tls_loglevel": "1",
        # a deferral would show as a stall, never as a silent retry inside a measurement
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
    }
    main.update(extra)
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write("# generated by bench/smtp/bench.py\n")
        for k, v in main.items():
            f.write(f"{k} = {v}\n")
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.write(MASTER_CF.format(listen=f"127.0.0.1:{port}"))
    # postfix(1) reports errors on stderr only when it is a terminal: give it one with script(1)
    r = subprocess.run(["script", "-qec", f"postfix -c {conf} start", "/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.postfix.append(conf)
    if r.returncode != 0:
        die(f"postfix {name} did not start: {r.stdout.strip()}")
    wait_for(10, lambda: port_listening("127.0.0.1", port), f"postfix {name} on port {port}")
    pid = postfix_master_pid(conf)
    sid = proc_table()[pid][2]
    return {"conf": conf, "base": base, "spool": spool, "master": pid, "sid": sid,
            "maillog": os.path.join(base, "maillog")}


def queue_empty(pf):
    for d in ("incoming", "active", "deferred", "maildrop"):
        for _root, _dirs, files in os.walk(os.path.join(pf["spool"], d)):
            if files:
                return False
    return True


def count_in(path, pattern):
    try:
        with open(path, errors="replace") as f:
            rx = re.compile(pattern)
            return sum(1 for line in f if rx.search(line))
    except OSError:
        return 0


def lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


# ------------------------------------------------------------------ the run

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def spread(xs, digits=3):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    return f" ({fmt(min(xs), digits)}-{fmt(max(xs), digits)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--daneproxy", required=True)
    ap.add_argument("--mxsink", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-c", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--rows", default="direct,daneproxy,postfix,postfix-relay")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--profile", action="store_true",
                    help="after the measurement, perf-record daneproxy and Postfix's smtp(8) over one more run each")
    args = ap.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    for r in rows:
        if r not in ROWS:
            die(f"unknown row {r} (rows: {', '.join(ROWS)})")
    W = args.work
    os.makedirs(os.path.join(W, "logs"), exist_ok=True)
    procs = Procs()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    try:
        return run(args, rows, W, procs)
    finally:
        procs.stop_all()
        bed = os.path.join(W, "bed")
        if os.path.exists(os.path.join(bed, "testbed.env")):
            subprocess.run(["bash", os.path.join(args.repo, "tests/testbed/testbed.sh"), "stop", bed],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile(args, rows, W, deliver, selection):
    """perf record -g of the delivering processes (daneproxy's group; Postfix's smtp(8)) over one more run each;
    returns perf report's flat profile (self time by symbol) of each."""
    if not shutil.which("perf"):
        log("--profile: perf is not installed (package linux-perf)")
        return None
    text = []
    for row, key in (("daneproxy", "daneproxy"), ("postfix", "smtp")):
        if row not in rows:
            continue
        pids = sorted(snapshot(selection(row))[key][1])
        data = os.path.join(W, f"perf-{row}.data")
        rec = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-o", data, "-p", ",".join(map(str, pids))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        m = deliver(row, args.n, args.c, "profile")
        rec.send_signal(signal.SIGINT)
        rec.wait()
        views = []
        for sort, limit in (("dso", "0.5"), ("dso,sym", "0.4")):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
                                "--percent-limit", limit, "-g", "none"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
            views.append("\n".join(x for x in r.splitlines() if x and not x.startswith("#"))[:6000])
        text.append(f"== {ROWS[row]}: {m['delivered']} messages, {m['ms_per_msg_' + key]:.3f} ms CPU/msg; "
                    f"perf record -F 1999 -g -p {','.join(map(str, pids))} ({key} processes)\n"
                    f"-- self time by DSO\n{views[0]}\n-- self time by symbol\n{views[1]}\n")
    return "\n".join(text)


def run(args, rows, W, procs):
    load_before = open("/proc/loadavg").read().split()[:3]
    # ---- the DNSSEC test bed, with a validating unbound on 127.0.0.1:53 for Postfix's libc resolver
    bed = os.path.join(W, "bed")
    env = dict(os.environ, TESTBED_UNBOUND="1", TESTBED_UNBOUND_PORT="53")
    r = subprocess.run(["bash", os.path.join(args.repo, "tests/testbed/testbed.sh"), "start", bed], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die("the test bed did not start: " + r.stderr[-2000:])
    tb = {}
    with open(os.path.join(bed, "testbed.env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            tb[k] = v
    domain = tb["TESTBED_MAIL_DOMAIN_SECURE"]
    mx_addr = tb["TESTBED_MXHOST_ADDR_MX1"]
    mx_host = tb["TESTBED_MXHOST_MX1"]
    rcpt = "rcpt@" + domain
    # Postfix resolves through /etc/resolv.conf (bind-mounted by `run`): check it reaches the bed's unbound and
    # that glibc passes the AD bit on (options trust-ad)
    with open("/etc/resolv.conf") as f:
        rc = f.read()
    if "127.0.0.1" not in rc or "trust-ad" not in rc:
        die("/etc/resolv.conf is not the private one (run this through bench/smtp/run)")

    # ---- the MX sink
    events = os.path.join(W, "mx-events")
    sink = procs.spawn("mxsink", [args.mxsink, "--listen", f"{mx_addr}:25", "--cert", tb["TESTBED_CHAIN"],
                                  "--key", tb["TESTBED_LEAF_KEY"], "--events", events, "--name", mx_host], W)
    wait_for(10, lambda: port_listening(mx_addr, 25), "the MX sink")

    # ---- daneproxy: SMTP smarthost, one worker, validating itself against the bed's NSD (its default mode)
    dp_log = os.path.join(W, "daneproxy.log")
    dp_argv = [args.daneproxy, "serve", "--smtp", f"127.0.0.1:{DP_PORT}", "--smtp-mx-port", "25",
               "--resolver", tb["TESTBED_RESOLVER"], "--trust-anchor", tb["TESTBED_TRUST_ANCHOR"],
               "--workers", "1", "--log", dp_log, "--state-dir", os.path.join(W, "dpstate")]
    dp = procs.spawn("daneproxy", dp_argv, W)
    wait_for(15, lambda: port_listening("127.0.0.1", DP_PORT), "daneproxy's SMTP listener")
    dp_version = subprocess.run([args.daneproxy, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True).stdout.strip().splitlines()[0:1]

    # ---- Postfix: direct with DANE, and a legacy relay without TLS through daneproxy
    pf = {}
    if "postfix" in rows:
        pf["postfix"] = start_postfix(procs, W, "direct", PF_DIRECT_PORT, {
            "smtp_tls_security_level": "dane",
            "smtp_dns_support_level": "dnssec",
            "smtp_host_lookup": "dns",
        })
    if "postfix-relay" in rows:
        pf["postfix-relay"] = start_postfix(procs, W, "relay", PF_RELAY_PORT, {
            "relayhost": f"[127.0.0.1]:{DP_PORT}",
            "smtp_tls_security_level": "none",
        })
    pf_version = subprocess.run(["postconf", "-h", "mail_version"], stdout=subprocess.PIPE,
                                text=True).stdout.strip()

    common = {"mx": ("pgrp", sink.pid), "unbound": ("pgrp", int(tb["TESTBED_UNBOUND_PGID"])),
              "nsd": ("pgrp", int(tb["TESTBED_NSD_PGID"]))}
    target = {"direct": f"{mx_addr}:25", "daneproxy": f"127.0.0.1:{DP_PORT}",
              "postfix": f"127.0.0.1:{PF_DIRECT_PORT}", "postfix-relay": f"127.0.0.1:{PF_RELAY_PORT}"}

    def selection(row):
        sel = dict(common)
        if row in ("daneproxy", "postfix-relay"):
            sel["daneproxy"] = ("pgrp", dp.pid)
        if row in pf:
            sel["postfix"] = ("session", pf[row]["sid"])
            sel["smtp"] = ("session", pf[row]["sid"], "smtp")
        return sel

    def deliver(row, n, c, tag):
        """Send n messages through row; returns the measurement."""
        sel = selection(row)
        ev0 = lines(events)
        dp0 = lines(dp_log)
        ml0 = {k: (count_in(v["maillog"], r"status=sent"), count_in(v["maillog"], r"Verified TLS connection"))
               for k, v in pf.items()}
        s0 = snapshot(sel)
        argv = [sys.executable, os.path.join(HERE, "smtpload.py"), "--connect", target[row], "--to", rcpt,
                "-n", str(n), "-c", str(c), "--size", str(args.size)]
        if row == "direct":
            argv.append("--starttls")
        t0 = time.monotonic()
        lg = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            res = json.loads(lg.stdout)
        except ValueError:
            die(f"{row}: smtpload printed no result: {lg.stdout[-500:]} {lg.stderr[-1000:]}")
        t_load = time.monotonic()
        t0 = res.get("t_start", t0)   # the load generator's first connection (CLOCK_MONOTONIC), not its start-up
        want = ev0 + res["sent"]
        deadline = time.monotonic() + 120
        while lines(events) < want and time.monotonic() < deadline:
            time.sleep(0.005)
        t_end = max(t_load, time.monotonic()) if row in pf else t_load
        delivered = lines(events) - ev0
        if row in pf:
            wait_for(30, lambda: queue_empty(pf[row]), f"the {row} queue to empty")
        time.sleep(0.3)   # let the last processes finish their bookkeeping (log lines, qmgr)
        s1 = snapshot(sel)
        with open(events) as f:
            new = f.read().splitlines()[ev0:]
        tls_kinds = {}
        for e in new:
            if e.startswith("1 "):
                kind = " ".join(e.split()[2:])
                tls_kinds[kind] = tls_kinds.get(kind, 0) + 1
        m = {"row": row, "tag": tag, "n": n, "c": c, "load": res, "delivered": delivered,
             "over_tls": sum(1 for e in new if e.startswith("1 ")), "mx_tls": tls_kinds,
             "elapsed_s": t_end - t0, "msg_per_s": delivered / (t_end - t0) if t_end > t0 else None}
        for k in sel:
            cpu = s1[k][0] - s0[k][0]
            m["cpu_" + k] = cpu
            m["ms_per_msg_" + k] = 1000 * cpu / delivered if delivered else None
        if "smtp" in sel:
            m["smtp_procs"] = len(s1["smtp"][1])
            m["smtp_procs_lost"] = len(s0["smtp"][1] - s1["smtp"][1])
        m["ms_per_msg_loadgen"] = 1000 * res["cpu_s"] / delivered if delivered else None
        if row in ("daneproxy", "postfix-relay"):
            with open(dp_log) as f:
                recs = [json.loads(x) for x in f.read().splitlines()[dp0:] if x.startswith("{")]
            tx = [x for x in recs if x.get("event") == "transaction"]
            m["dp_transactions"] = len(tx)
            m["dp_dane"] = sum(1 for x in tx if x.get("tls") == "dane" and x.get("tlsa"))
            m["dp_results"] = sorted({x.get("result") for x in tx})
        if row in pf:
            ml = pf[row]["maillog"]
            m["pf_sent"] = count_in(ml, r"status=sent") - ml0[row][0]
            m["pf_verified"] = count_in(ml, r"Verified TLS connection") - ml0[row][1]
        return m

    # ---- warm-up: caches (daneproxy's resolver cache, unbound's), processes, code paths
    log(f"warming up (rows: {', '.join(rows)})")
    for row in rows:
        w = deliver(row, max(20, args.c * 4), args.c, "warmup")
        if w["delivered"] != w["n"]:
            die(f"warm-up of {row}: {w['delivered']} of {w['n']} delivered; load generator: {w['load']}; "
                f"see {W}/logs")

    # ---- measured repetitions, interleaved: every row once per repetition, each starting one row later
    results = []
    for rep in range(args.reps):
        order = rows[rep % len(rows):] + rows[:rep % len(rows)]
        for row in order:
            m = deliver(row, args.n, args.c, f"rep{rep + 1}")
            m["rep"] = rep + 1
            results.append(m)
            cpu = {"daneproxy": m.get("ms_per_msg_daneproxy"), "postfix": m.get("ms_per_msg_smtp"),
                   "postfix-relay": (m.get("ms_per_msg_smtp") or 0) + (m.get("ms_per_msg_daneproxy") or 0)}.get(row)
            log(f"rep {rep + 1} {row}: {m['delivered']}/{m['n']} delivered, {m['msg_per_s']:.0f} msg/s"
                + (f", delivering CPU {cpu:.3f} ms/msg" if cpu is not None else "")
                + f", MX {m['ms_per_msg_mx']:.3f} ms/msg")
    load_after = open("/proc/loadavg").read().split()[:3]
    profile_text = profile(args, rows, W, deliver, selection) if args.profile else None

    # ---- the report
    def col(row, key):
        return [m.get(key) for m in results if m["row"] == row]

    def sys_ms(m):
        """The delivering side's CPU per message: what does the DANE delivery in each row."""
        if m["row"] == "daneproxy":
            return m.get("ms_per_msg_daneproxy")
        if m["row"] == "postfix":
            return m.get("ms_per_msg_smtp")
        if m["row"] == "postfix-relay":
            return (m.get("ms_per_msg_smtp") or 0) + (m.get("ms_per_msg_daneproxy") or 0)
        return None

    def mta_ms(m):
        if m["row"] == "postfix":
            return m.get("ms_per_msg_postfix")
        if m["row"] == "postfix-relay":
            return (m.get("ms_per_msg_postfix") or 0) + (m.get("ms_per_msg_daneproxy") or 0)
        if m["row"] == "daneproxy":
            return m.get("ms_per_msg_daneproxy")
        return None

    for m in results:
        m["ms_per_msg_delivering"] = sys_ms(m)
        m["ms_per_msg_mta"] = mta_ms(m)

    ok = True
    checks = []
    for m in results:
        bad = []
        if m["delivered"] != m["n"] or m["load"]["failed"]:
            bad.append(f"{m['delivered']}/{m['n']} delivered, {m['load']['failed']} failed: {m['load']['errors']}")
        if m["over_tls"] != m["delivered"]:
            bad.append(f"only {m['over_tls']} over TLS at the MX")
        if "dp_dane" in m and m["dp_dane"] != m["n"]:
            bad.append(f"daneproxy: {m['dp_dane']} of {m['dp_transactions']} DANE-authenticated ({m['dp_results']})")
        if m["row"] == "postfix" and m.get("pf_verified") != m["n"]:
            bad.append(f"Postfix: {m.get('pf_verified')} of {m['n']} 'Verified TLS connection'")
        if m.get("smtp_procs_lost"):
            bad.append(f"{m['smtp_procs_lost']} smtp(8) processes exited during the run (their CPU is missing)")
        if bad:
            ok = False
            checks.append(f"- {m['row']} rep {m['rep']}: " + "; ".join(bad))

    dp_med = med([m["ms_per_msg_delivering"] for m in results if m["row"] == "daneproxy"])
    pf_med = med([m["ms_per_msg_delivering"] for m in results if m["row"] == "postfix"])
    cpu_model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def tls_of_postfix():
        if "postfix" not in pf:
            return None
        with open(pf["postfix"]["maillog"], errors="replace") as f:
            for line in f:
                mm = re.search(r"Verified TLS connection established to \S+: (.*)$", line)
                if mm:
                    return mm.group(1)
        return None

    out = []
    p = out.append
    mode = "quick" if args.quick else "full"
    p("## Mail: daneproxy as SMTP smarthost vs Postfix's own DANE client (issue 12)")
    p("")
    p(f"`bench/smtp/run{' --quick' if args.quick else ''}` at commit `{args.commit}`, mode {mode}, "
      f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} CPUs ({cpu_model}), "
      f"{args.reps} interleaved repetitions of {args.n:,} messages per row (medians; spread min-max in "
      f"parentheses), {args.c} concurrent client sessions, {args.size:,}-byte messages, a new MX session and a "
      f"full TLS handshake per message, TLSA cached. Load average before / after: {' '.join(load_before)} / "
      f"{' '.join(load_after)}.")
    p("")
    p("| row | msg/s | delivering CPU ms/msg | whole MTA side ms/msg | MX sink ms/msg | unbound ms/msg | "
      "load generator ms/msg | delivered, DANE-verified |")
    p("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ms = [m for m in results if m["row"] == row]
        if not ms:
            continue
        n_all = sum(m["n"] for m in ms)
        deliv = sum(m["delivered"] for m in ms)
        if row in ("daneproxy", "postfix-relay"):
            ver = f"{deliv:,}/{n_all:,}, {sum(m['dp_dane'] for m in ms):,} DANE (daneproxy log)"
        elif row == "postfix":
            ver = f"{deliv:,}/{n_all:,}, {sum(m['pf_verified'] for m in ms):,} Verified (Postfix log)"
        else:
            ver = f"{deliv:,}/{n_all:,}, not verified (no DANE)"
        p(f"| {ROWS[row]} | {fmt(med(col(row, 'msg_per_s')), 0)}{spread(col(row, 'msg_per_s'), 0)} "
          f"| {fmt(med(col(row, 'ms_per_msg_delivering')))}{spread(col(row, 'ms_per_msg_delivering'))} "
          f"| {fmt(med(col(row, 'ms_per_msg_mta')))}{spread(col(row, 'ms_per_msg_mta'))} "
          f"| {fmt(med(col(row, 'ms_per_msg_mx')))} | {fmt(med(col(row, 'ms_per_msg_unbound')))} "
          f"| {fmt(med(col(row, 'ms_per_msg_loadgen')))} | {ver} |")
    p("")
    p("Columns: **delivering CPU** is the CPU of what makes the DANE delivery: daneproxy's process group "
      "(supervisor and worker) in the daneproxy row, the Postfix instance's smtp(8) processes in the Postfix row, "
      "both in the relay row. **Whole MTA side** adds, for Postfix, every other process of the instance (smtpd "
      "receiving the message, cleanup, qmgr, trivial-rewrite, tlsmgr, postlogd, master, exited children). "
      "CPU is read from /proc (utime+stime of /proc/PID/stat, or the nanosecond sum of "
      "/proc/PID/task/*/schedstat where that is larger, plus reaped children; see bench/smtp/README.md) "
      "over the window from the first message injected to the last one "
      "accepted by the MX (and the queue empty), divided by the messages delivered. msg/s is messages delivered "
      "at the MX over that window.")
    p("")
    if dp_med is not None and pf_med is not None:
        verdict = "met" if dp_med <= pf_med else "NOT met"
        p(f"**Target of issue 12** (daneproxy's CPU per delivered message at or below Postfix smtp(8)'s): "
          f"{fmt(dp_med)} ms vs {fmt(pf_med)} ms ({dp_med / pf_med:.2f}x): **{verdict}**.")
        unb = med(col("postfix", "ms_per_msg_unbound"))
        if unb is not None:
            p(f"Postfix has no DNS cache of its own: its MX, A and TLSA lookups per message go to the local "
              f"unbound, which spends {fmt(unb)} ms per message on them (smtp(8) + unbound: "
              f"{fmt(pf_med + unb)} ms); daneproxy answers them from its own cache.")
        p("")
        pf_whole = med([m["ms_per_msg_mta"] for m in results if m["row"] == "postfix"])
        relay_whole = med([m["ms_per_msg_mta"] for m in results if m["row"] == "postfix-relay"])
        if pf_whole is not None and relay_whole is not None:
            p(f"Whole chain: a Postfix that keeps its own queue but hands every message to daneproxy spends "
              f"{fmt(relay_whole)} ms per message with daneproxy included, against {fmt(pf_whole)} ms for the same "
              f"Postfix doing DANE itself ({relay_whole / pf_whole:.2f}x).")
        p("")
    kinds = []
    for row in rows:
        agg = {}
        for m in results:
            if m["row"] == row:
                for k, v in m.get("mx_tls", {}).items():
                    agg[k] = agg.get(k, 0) + v
        if agg:
            kinds.append(f"{ROWS[row].split(',')[0]}: " + ", ".join(f"{k} ({v:,})" for k, v in
                                                                    sorted(agg.items(), key=lambda x: -x[1])))
    if kinds:
        p("TLS as the MX saw it (version, cipher, key exchange): " + "; ".join(kinds) + ".")
        p("")
    pf_tls = tls_of_postfix()
    dp_recs = []
    try:
        with open(dp_log) as f:
            for x in f:
                if '"event": "transaction"' in x:
                    dp_recs.append(json.loads(x))
                    break
    except (OSError, ValueError):
        pass
    p("Setup: everything on loopback in a private network and mount namespace. MX: `bench/smtp/mxsink.c` "
      f"(OpenSSL, thread per connection, session cache and tickets off) on {mx_host} ({mx_addr}:25), "
      f"the ECDSA P-256 leaf of the test bed, TLSA `3 1 1` + `2 0 1` at `_25._tcp.{mx_host}`, MX of "
      f"`{domain}`. daneproxy: `daneproxy serve --smtp 127.0.0.1:{DP_PORT} --smtp-mx-port 25 --workers 1 "
      "--resolver <bed NSD> --trust-anchor <bed root DS>` (validates DNSSEC itself, results cached). Postfix "
      f"{pf_version}: a private instance, `smtp_tls_security_level = dane`, `smtp_dns_support_level = dnssec`, "
      "`smtp_connection_cache_on_demand = no`, no TLS session cache, libc resolver -> the bed's validating unbound "
      "on 127.0.0.1:53 (`options trust-ad`, a private /etc/resolv.conf). The relay row: a second Postfix "
      f"instance, `relayhost = [127.0.0.1]:{DP_PORT}`, no TLS towards daneproxy. Load: `bench/smtp/smtpload.py` "
      "(Python asyncio), one SMTP session per message.")
    if pf_tls:
        p(f"Postfix negotiates: {pf_tls}.")
    if dp_recs:
        p(f"daneproxy's log: tls `{dp_recs[0].get('tls')}`, tlsa `{dp_recs[0].get('tlsa')}`, "
          f"result `{dp_recs[0].get('result')}`.")
    p(f"Versions: {' '.join(dp_version)}; Postfix {pf_version}; "
      f"{subprocess.run(['openssl', 'version'], stdout=subprocess.PIPE, text=True).stdout.strip()}.")
    if checks:
        p("")
        p("Problems:")
        out.extend(checks)
    text = "\n".join(out) + "\n"
    if profile_text:
        with open(os.path.join(args.out, f"smtp-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-profile.txt"),
                  "w") as f:
            f.write(profile_text)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ("-quick" if args.quick else "")
    with open(os.path.join(args.out, f"smtp-{stamp}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, f"smtp-{stamp}.json"), "w") as f:
        json.dump({"commit": args.commit, "mode": mode, "n": args.n, "c": args.c, "reps": args.reps,
                   "size": args.size, "load_before": load_before, "load_after": load_after,
                   "postfix": pf_version, "daneproxy": dp_version, "results": results}, f, indent=1)
    log(f"wrote {args.out}/smtp-{stamp}.md and .json")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
