#!/usr/bin/env python3
"""Start time and memory of one enroute start (scripts/bench-register, part C).

  startup.py LABEL LOGFILE -- enroute serve --config FILE

Starts the command, reads its stderr (copied to LOGFILE) until a line containing
"ready" (enroute logs "enroute X ready" at info level once every listener is bound and
the registrar's file is loaded), and prints

  START label=L ready_s=... rss_kb=... hwm_kb=... users=... aors=... bindings=...

ready_s: wall time from just before the process is forked to that line being read;
rss_kb: VmRSS 1 s after ready (settled); hwm_kb: VmHWM (peak RSS) then; users/aors/
bindings: what the "registrar" log line says was loaded (- when absent). Then stops the
process (SIGTERM, SIGKILL after 10 s) and exits 0, or 1 when it never got ready
(TIMEOUT seconds, default 300) or exited first.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time


def status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return -1


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    label, logfile, cmd = sys.argv[1], sys.argv[2], sys.argv[4:]
    # stopped by the bench's cleanup: still stop the server (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    timeout = float(os.environ.get("TIMEOUT", "300"))
    log = open(logfile, "wb")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    buf = b""
    ready = None
    counts = {}
    fd = p.stderr.fileno()
    try:
        while ready is None and time.monotonic() - t0 < timeout:
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            log.write(chunk)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                if "registrar" in text and "bindings" in text:
                    for k in ("users", "aors", "bindings"):
                        m = re.search(r"\b%s[=:]\s*\"?(\d+)" % k, text)
                        if m:
                            counts[k] = m.group(1)
                if "ready" in text:
                    ready = time.monotonic() - t0
                    break
        if ready is None:
            log.write(buf)
            print("START label=%s ready_s=- rss_kb=- hwm_kb=- error=%s" % (
                label, "exited(%s)" % p.returncode if p.poll() is not None else "timeout"))
            return 1
        # settle, draining the log meanwhile so the server never blocks on its stderr
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                log.write(chunk)
        rss, hwm = status(p.pid, "VmRSS"), status(p.pid, "VmHWM")
        print("START label=%s ready_s=%.3f rss_kb=%d hwm_kb=%d users=%s aors=%s bindings=%s" % (
            label, ready, rss, hwm, counts.get("users", "-"), counts.get("aors", "-"), counts.get("bindings", "-")))
        return 0
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                # keep draining stderr while it shuts down
                end = time.monotonic() + 10
                while p.poll() is None and time.monotonic() < end:
                    r, _, _ = select.select([fd], [], [], 0.1)
                    if r:
                        chunk = os.read(fd, 65536)
                        if chunk:
                            log.write(chunk)
                p.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
