#!/usr/bin/env python3
"""Write users and bindings straight into enroute's registrar file, and the SIPp CSVs
that go with them (scripts/bench-register).

  gen-registrar.py --db data/enroute-registrar.db -n 10000 [--bindings]
                   [--register-csv F] [--invite-csv F]

AORs are user<i>@example.net for i in 0..n-1, zero-padded to at least 5 digits
(user00000 .. user09999 for 10,000; user000000 .. user999999 for 1,000,000).
Every user has the same password (--password, default "secret"); the users table gets
both HA1s, H(user:realm:password) in MD5 and SHA-256 hex, as enroute's admin API would
store them. --bindings adds one binding per AOR: contact sip:user<i>@10.x.y.z:5060,
q 1000, expiring in --expires-in seconds (default 86400).

The file is created with the DDL enroute runs, read from src/registrar/writer.rs
(CREATE TABLE IF NOT EXISTS, so an existing file is added to); enroute switches it to WAL when it opens it. Rows go in
primary-key order, in one transaction, with synchronous=OFF: about 1 s per 100,000 AORs.

CSV files (SIPp -inf, SEQUENTIAL):
  --register-csv  "user<i>;<password>"   ([field0] user, [field1] password)
  --invite-csv    "user<i>;<domain>"     ([field0] user, [field1] host of the R-URI)
"""

import argparse
import hashlib
import os
import sqlite3
import sys
import time

WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "registrar", "writer.rs")


def schema():
    """The DDL enroute itself runs (`const SCHEMA` in src/registrar/writer.rs), read from
    there so the two cannot drift apart."""
    with open(WRITER, encoding="utf-8") as f:
        source = f.read()
    start = source.index('const SCHEMA: &str = "') + len('const SCHEMA: &str = "')
    return source[start:source.index('";', start)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="registrar file to write (created if missing)")
    ap.add_argument("-n", "--count", type=int, required=True)
    ap.add_argument("--domain", default="example.net")
    ap.add_argument("--realm", default="example.net")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--no-users", action="store_true", help="do not write the users table")
    ap.add_argument("--bindings", action="store_true", help="one binding per AOR")
    ap.add_argument("--expires-in", type=int, default=86400)
    ap.add_argument("--register-csv")
    ap.add_argument("--invite-csv")
    a = ap.parse_args()

    n = a.count
    width = max(5, len(str(n - 1)))
    name = lambda i: "user%0*d" % (width, i)
    t0 = time.time()

    if a.db:
        d = os.path.dirname(a.db)
        if d:
            os.makedirs(d, exist_ok=True)
        db = sqlite3.connect(a.db)
        db.execute("PRAGMA synchronous = OFF")
        db.executescript(schema())
        realm = a.realm.encode()
        pw = a.password.encode()
        if not a.no_users:
            def users():
                for i in range(n):
                    u = name(i).encode()
                    base = u + b":" + realm + b":" + pw
                    yield ("%s@%s" % (name(i), a.domain), a.realm,
                           hashlib.sha256(base).hexdigest(), hashlib.md5(base).hexdigest())
            db.executemany("INSERT OR REPLACE INTO users (aor, realm, ha1_sha256, ha1_md5) VALUES (?, ?, ?, ?)", users())
        if a.bindings:
            now = int(time.time())
            now_ms = int(time.time() * 1000)
            exp = now + a.expires_in

            def bindings():
                for i in range(n):
                    u = name(i)
                    ip = "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
                    yield ("%s@%s" % (u, a.domain), "sip:%s@%s:5060" % (u, ip), 1000, exp,
                           "gen-%d@bench" % i, 1, now_ms)
            db.executemany("INSERT OR REPLACE INTO bindings (aor, contact, q, expires_at, call_id, cseq, updated_ms) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", bindings())
        db.commit()
        db.close()

    if a.register_csv:
        with open(a.register_csv, "w") as f:
            f.write("SEQUENTIAL\n")
            for i in range(n):
                f.write("%s;%s\n" % (name(i), a.password))
    if a.invite_csv:
        with open(a.invite_csv, "w") as f:
            f.write("SEQUENTIAL\n")
            for i in range(n):
                f.write("%s;%s\n" % (name(i), a.domain))
    print("GEN aors=%d users=%s bindings=%s width=%d seconds=%.1f%s" % (
        n, "no" if a.no_users else "yes", "yes" if a.bindings else "no", width, time.time() - t0,
        (" db=%s bytes=%d" % (a.db, os.path.getsize(a.db))) if a.db else ""))


if __name__ == "__main__":
    sys.exit(main())
