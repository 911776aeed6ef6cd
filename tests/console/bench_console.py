"""scripts/bench-console: the console against a release server holding N numbers.

Starts `enroute serve` in a temporary folder on free loopback ports with one
store-only zone (6.1.4.4.e164.arpa.), imports N numbers with `enroute import`,
then times in headless Chromium: sign-in to the first page of numbers shown, a prefix
search, `--pages` pages forward and back, one trace; and reads the size of each list
answer from the browser's own resource timing. Every figure is a median of the runs.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ORIGIN = "6.1.4.4.e164.arpa."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, folder):
    sip, dns, admin = free_port(), free_port(), free_port()
    with open(os.path.join(folder, "e.toml"), "w", encoding="utf-8") as f:
        f.write(f"""[sip]
listen = ["udp:127.0.0.1:{sip}"]
[dns]
listen = ["udp:127.0.0.1:{dns}", "tcp:127.0.0.1:{dns}"]
[enum]
suffixes = []
[admin]
listen = "127.0.0.1:{admin}"
token_file = "admin.token"
[store]
path = "data/enroute.db"
[[zone]]
origin = "{ORIGIN}"
""")
    log = open(os.path.join(folder, "log"), "w", encoding="utf-8")
    proc = subprocess.Popen([binary, "serve", "--config", "e.toml"], cwd=folder, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{admin}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    token = open(os.path.join(folder, "admin.token"), encoding="utf-8").read().strip()
    return proc, base, token


def import_numbers(binary, folder, base, token, n):
    csv = os.path.join(folder, "numbers.csv")
    with open(csv, "w", encoding="utf-8") as f:
        f.write("number,uri\n")
        for i in range(n):
            f.write(f"+4416{i:09d},sip:u{i}@sbc{i % 7}.example.net\n")
    started = time.monotonic()
    subprocess.run([binary, "import", csv, "--zone", ORIGIN, "--url", base, "--token", token, "--quiet"],
                   check=True)
    os.remove(csv)
    return time.monotonic() - started


class Browser:
    def __init__(self, folder):
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={folder}/profile", "--window-size=1280,900"):
            opts.add_argument(flag)
        self.d = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
        self.wait = WebDriverWait(self.d, 60, poll_frequency=0.005)

    def timed(self, action, done):
        started = time.monotonic()
        action()
        self.wait.until(lambda d: done(d))
        return time.monotonic() - started

    def status_has(self, text):
        return lambda d: text in d.find_element(By.ID, "number-list-status").text

    def in_page(self, button, text):
        """Milliseconds from a click on `button` to the list status showing `text`, timed in
        the page itself (the frame after the rows are drawn), without WebDriver's
        round trips."""
        return self.d.execute_async_script(
            "const [id, text, done] = arguments;"
            "const status = document.getElementById('number-list-status');"
            "const t0 = performance.now();"
            "document.getElementById(id).click();"
            "const check = () => status.textContent.includes(text)"
            "  ? requestAnimationFrame(() => done(performance.now() - t0))"
            "  : requestAnimationFrame(check);"
            "check();", button, text) / 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--numbers", type=int, default=1_000_000)
    p.add_argument("--pages", type=int, default=20)
    p.add_argument("--out")
    args = p.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-console-")
    binary = os.path.abspath(args.binary)
    proc, base, token = start_server(binary, folder)
    b = None
    try:
        import_s = import_numbers(binary, folder, base, token, args.numbers)
        b = Browser(folder)
        d = b.d
        d.get(base + "/ui/")
        b.wait.until(lambda d: d.find_elements(By.ID, "token"))
        d.find_element(By.ID, "token").send_keys(token)
        first = b.timed(lambda: d.find_element(By.ID, "token").send_keys(Keys.ENTER),
                        lambda d: d.find_elements(By.CSS_SELECTOR, "#number-results tbody tr"))
        rows = len(d.find_elements(By.CSS_SELECTOR, "#number-results tbody tr"))
        # The largest page: 250 rows.
        d.find_element(By.CSS_SELECTOR, "#number-page-size option[value='250']").click()
        search = d.find_element(By.ID, "number-search")
        search.clear()
        search.send_keys("+4416000")
        searches = [b.timed(lambda: d.find_element(By.ID, "number-search-button").click(),
                            b.status_has("Page 1: 250 numbers starting with +4416000"))]
        forward, back = [], []
        for i in range(2, args.pages + 2):
            forward.append(b.in_page("number-next", f"Page {i}:"))
        for i in range(args.pages, 0, -1):
            back.append(b.in_page("number-prev", f"Page {i}:"))
        sizes = d.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/v1/numbers?')).map(e => e.encodedBodySize)")
        last = f"+4416{args.numbers - 1:09d}"
        d.get(f"{base}/ui/#/trace/{last.replace('+', '%2B')}")
        started = time.monotonic()
        b.wait.until(lambda d: "302" in d.find_element(By.ID, "trace-status-code").text
                     if d.find_elements(By.ID, "trace-status-code") else False)
        trace_s = time.monotonic() - started
        api = []
        for i in range(20):
            req = urllib.request.Request(f"{base}/v1/numbers?prefix=%2B4416&limit=250&after=%2B4416{i * 40000:09d}")
            req.add_header("Authorization", f"Bearer {token}")
            started = time.monotonic()
            urllib.request.urlopen(req, timeout=10).read()
            api.append(time.monotonic() - started)
        rss_kb = int(next(l for l in open(f"/proc/{proc.pid}/status") if l.startswith("VmRSS")).split()[1])
    finally:
        if b:
            b.d.quit()
        proc.terminate()
        proc.wait()
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)
    result = {
        "numbers": args.numbers,
        "import_s": round(import_s, 1),
        "server_rss_mb": round(rss_kb / 1024),
        "sign_in_to_first_page_ms": round(first * 1000, 1),
        "first_page_rows": rows,
        "prefix_search_250_rows_ms": ms(searches),
        # Timed in the page: click to the frame after the rows are drawn.
        "next_page_250_rows_ms_median": ms(forward),
        "next_page_250_rows_ms_max": round(max(forward) * 1000, 1),
        "previous_page_250_rows_ms_median": ms(back),
        "api_page_250_ms_median": ms(api),
        "page_bytes_median": int(statistics.median([s for s in sizes if s] or [0])),
        "trace_last_number_ms": round(trace_s * 1000, 1),
    }
    print(f"console with {args.numbers:,} numbers (import {result['import_s']} s, server RSS {result['server_rss_mb']} MB)")
    print("| what | ms |")
    print("| --- | ---: |")
    for k in ("api_page_250_ms_median", "sign_in_to_first_page_ms", "prefix_search_250_rows_ms", "next_page_250_rows_ms_median",
              "next_page_250_rows_ms_max", "previous_page_250_rows_ms_median", "trace_last_number_ms"):
        print(f"| {k} | {result[k]} |")
    print(f"a page of 250 numbers is {result['page_bytes_median']:,} bytes of JSON")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
