"""The operator console in headless Chromium, driven by Selenium, against a running
`enroute serve` (started by tests/console.rs on free loopback ports).

Walks what an operator does: sign in (a wrong token first), create a number with a bad
URI then a good one (keyboard only), find it in the list, trace it, send an INVITE (SIPp)
and watch the status view's counters move, import a CSV with a bad line (nothing committed)
then a good one, look at zones (after a real AXFR), prefix routes and registrations,
delete the number, use a narrow window, lose the server, sign out. Every view is
checked with axe-core (no serious or critical violation), each step leaves a
screenshot in --artifacts, and at the end every request the page made must have gone
to the admin listener and nowhere else.

Exit status 0 when every check held; otherwise the failing check is printed.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

NUMBER = "+441632960777"
GOOD_URI = "sip:console@pbx.example.net"


class Console:
    """The browser, the server's addresses, and what the run has collected."""

    def __init__(self, args):
        self.args = args
        self.base = args.base.rstrip("/")
        self.host = urllib.parse.urlparse(self.base).netloc
        self.shots = 0
        self.requests = []
        self.axe_source = open(args.axe, encoding="utf-8").read()
        self.axe_results = {}
        self.console_errors = []
        self.restarted = None
        opts = webdriver.ChromeOptions()
        opts.binary_location = args.chromium
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-default-apps", "--disable-dev-shm-usage", "--lang=en-GB",
            f"--user-data-dir={args.profile}", "--window-size=1280,900",
        ):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(options=opts, service=Service(args.chromedriver))
        self.driver.set_window_size(1280, 900)
        self.wait = self.waiter(15)

    # ---- helpers -------------------------------------------------------------------

    def waiter(self, seconds):
        """A wait that reads again an element a redraw replaced under it."""
        return WebDriverWait(self.driver, seconds,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def shot(self, name):
        """A screenshot of the step, numbered in order, into the artifacts folder."""
        self.shots += 1
        path = os.path.join(self.args.artifacts, f"{self.shots:02d}-{name}.png")
        self.driver.save_screenshot(path)
        return path

    def collect_logs(self):
        """Every request the page sent so far, and its console errors."""
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                self.requests.append(msg["params"]["request"]["url"])
        for entry in self.driver.get_log("browser"):
            if entry.get("level") == "SEVERE":
                self.console_errors.append(entry["message"])

    def go(self, hash_route):
        self.driver.get(f"{self.base}/ui/{hash_route}")
        return self.heading()

    def heading(self):
        return self.wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "main h1"))).text

    def view(self, link_text, title):
        """Opens a view through the navigation, as an operator would."""
        self.driver.find_element(By.CSS_SELECTOR, "#nav").find_element(By.LINK_TEXT, link_text).click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == title)

    def el(self, css):
        return self.wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def text_in(self, css, needle, timeout=15):
        self.waiter(timeout).until(
            lambda d: needle in d.find_element(By.CSS_SELECTOR, css).text,
            f"{needle!r} never appeared in {css}")
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def tab_to(self, element_id, limit=80):
        """Presses Tab until `element_id` has the focus: it is reachable by keyboard."""
        for _ in range(limit):
            active = self.driver.switch_to.active_element
            if active.get_attribute("id") == element_id:
                return active
            active.send_keys(Keys.TAB)
        raise AssertionError(f"#{element_id} not reached with Tab")

    def keys(self, *keys):
        self.driver.switch_to.active_element.send_keys(*keys)

    def axe_self_check(self):
        """axe-core finds a violation planted on purpose (so that its silence means something)."""
        self.driver.execute_script(
            "const i = document.createElement('img'); i.id = 'planted'; i.src = 'icon.svg';"
            "document.querySelector('main').append(i);")
        found = self.axe_violations()
        self.driver.execute_script("document.getElementById('planted').remove();")
        assert any(v["id"] == "image-alt" for v in found), f"axe-core missed an image without alt: {found}"

    def axe(self, view):
        """axe-core on the page as it is: no serious or critical violation."""
        result = self.axe_violations()
        self.axe_results[view] = result
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"accessibility violations on {view}: {json.dumps(bad, indent=1)}"

    def axe_violations(self):
        self.driver.execute_script(self.axe_source)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))}))))"
            ".catch(e => done({error: String(e)}));")
        if isinstance(result, dict) and "error" in result:
            raise AssertionError(f"axe-core failed: {result['error']}")
        return result

    def api(self, method, path, body=None, content_type="application/json"):
        """The admin API directly (to check what the console claims)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.args.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    # ---- steps -----------------------------------------------------------------------

    def sign_in(self):
        assert self.go("") == "Sign in"
        assert not self.driver.find_element(By.ID, "nav").is_displayed(), "navigation before sign-in"
        assert not self.driver.find_element(By.ID, "sign-out").is_displayed(), "Sign out before sign-in"
        self.axe_self_check()
        self.axe("sign-in")
        self.el("#token").send_keys("not-the-token", Keys.ENTER)
        text = self.text_in("#signin-error", "401")
        assert "not valid" in text, text
        assert self.driver.execute_script("return sessionStorage.getItem('enroute.token')") is None
        self.shot("sign-in-wrong-token")
        token = self.el("#token")
        token.clear()
        token.send_keys(self.args.token, Keys.ENTER)
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Numbers")
        stored = self.driver.execute_script("return sessionStorage.getItem('enroute.token')")
        assert stored == self.args.token, "the token is not in sessionStorage"
        assert self.driver.execute_script("return localStorage.length") == 0, "something went to localStorage"
        assert self.driver.get_cookies() == [], "the console set a cookie"
        self.axe("numbers")
        self.shot("signed-in")

    def create_number(self):
        """With the keyboard alone: Tab to "New number", fill the form, Enter."""
        self.tab_to("new-number")
        self.keys(Keys.ENTER)
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "New number")
        self.tab_to("e164")
        self.keys(NUMBER)
        self.tab_to("ttl")
        self.keys(Keys.CONTROL, "a")
        self.keys("600")
        self.tab_to("route-0-uri")
        self.keys("not a uri", Keys.ENTER)
        err = self.text_in("[data-field='route-0-uri'] .field-error", "not a URI")
        uri = self.driver.find_element(By.ID, "route-0-uri")
        assert uri.get_attribute("aria-invalid") == "true"
        assert "route-0-uri-error" in uri.get_attribute("aria-describedby")
        assert self.driver.switch_to.active_element.get_attribute("id") == "route-0-uri", "focus not on the bad field"
        assert self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")[0] == 404
        self.axe("number-form-error")
        self.shot("number-bad-uri")
        print(f"inline error: {err}")
        self.keys(Keys.CONTROL, "a")
        self.keys(GOOD_URI, Keys.ENTER)
        self.text_in("#edit-status", "Saved")
        self.text_in("#saved-naptr", GOOD_URI)
        assert not self.driver.find_elements(By.CSS_SELECTOR, ".field-error")
        status, body = self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")
        assert status == 200 and json.loads(body)["ttl"] == 600, body
        self.shot("number-saved")

    def list_numbers(self):
        self.view("Numbers", "Numbers")
        search = self.el("#number-search")
        search.clear()
        search.send_keys(NUMBER[:-1], Keys.ENTER)
        row = self.el(f"tr[data-id='{NUMBER}']")
        assert GOOD_URI in row.text, row.text
        self.text_in("#number-list-status", "Page 1")
        self.axe("numbers-list")
        self.shot("numbers")

    def edit_number(self):
        """An existing number opened from the list, its TTL changed; "New number" with the
        same number refuses to replace it."""
        self.el(f"tr[data-id='{NUMBER}'] th a").click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == f"Number {NUMBER}")
        assert self.el("#route-0-uri").get_attribute("value") == GOOD_URI
        assert self.el("#e164").get_attribute("readonly") is not None
        ttl = self.el("#ttl")
        ttl.clear()
        ttl.send_keys(Keys.ENTER)
        self.text_in("[data-field='ttl'] .field-error", "TTL")
        ttl.send_keys("900", Keys.ENTER)
        self.text_in("#edit-status", "Saved")
        status, body = self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")
        assert status == 200 and json.loads(body)["ttl"] == 900, body
        self.go("#/numbers/new")
        self.el("#e164").send_keys(NUMBER)
        self.el("#route-0-uri").send_keys("sip:other@pbx.example.net", Keys.ENTER)
        self.text_in("[data-field='e164'] .field-error", "already has routes")
        status, body = self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")
        assert GOOD_URI.encode() in body, body
        self.shot("number-exists")
        self.flags_kept()
        self.view("Numbers", "Numbers")
        search = self.el("#number-search")
        search.clear()
        search.send_keys(NUMBER[:-1], Keys.ENTER)
        self.el(f"tr[data-id='{NUMBER}']")

    def flags_kept(self):
        """Flags the form has no word for (U) survive an edit: shown, saved as they were."""
        other = "+441632960779"
        path = f"/v1/numbers/{urllib.parse.quote(other)}"
        status, body = self.api("PUT", path, {"routes": [{"uri": "sip:flags@pbx.example.net", "flags": "U"}]})
        assert status in (200, 201), body
        self.go(f"#/numbers/{other}")
        flags = self.el("#route-0-flags")
        assert flags.get_attribute("value") == "U", flags.get_attribute("value")
        self.el("#ttl").send_keys(Keys.ENTER)
        self.text_in("#edit-status", "Saved")
        status, body = self.api("GET", path)
        assert status == 200 and json.loads(body)["routes"][0].get("flags") == "U", body
        assert self.api("DELETE", path)[0] == 204

    def trace(self):
        row = self.el(f"tr[data-id='{NUMBER}']")
        row.find_element(By.LINK_TEXT, "Trace").click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Route tracer")
        self.text_in("#trace-status-code", "302 Moved Temporarily")
        contacts = self.el("#trace-contacts").text
        assert GOOD_URI in contacts and "1.0" in contacts, contacts
        steps = self.el("#trace-steps")
        kinds = [li.get_attribute("data-step") for li in steps.find_elements(By.CSS_SELECTOR, "li")]
        assert kinds[0] == "number" and "lookup" in kinds and "record" in kinds, kinds
        lookup = steps.find_element(By.CSS_SELECTOR, "li[data-step='lookup']").text
        assert "e164.arpa." in lookup and "local zone 2.3.6.1.4.4.e164.arpa." in lookup, lookup
        assert "answer" in lookup, lookup
        record = steps.find_element(By.CSS_SELECTOR, "li[data-step='record']").text
        assert "Record used" in record and GOOD_URI in record, record
        self.axe("tracer")
        self.shot("tracer")
        # For the README: a number with two SIP routes and a PSTN one an order behind.
        self.trace_again("+44 1632 960002")
        self.text_in("#trace-contacts", "0.9")
        skipped = self.el("#trace-steps li.step-skip").text
        assert "Record skipped" in skipped and "higher order" in skipped, skipped
        self.docs_shot("console-tracer.png", 1500)
        # Upstream: asked of Knot, the answer cached.
        self.trace_again("+1 202 555 0100")
        self.text_in("#trace-contacts", "sip:dave@voip.enroute.example.com")
        steps = self.el("#trace-steps")
        lookup = steps.find_element(By.CSS_SELECTOR, "li[data-step='lookup']").text
        assert "Lookup (upstream)" in lookup and "upstream 127.0.0.1:" in lookup and "answer" in lookup, lookup
        cache = steps.find_element(By.CSS_SELECTOR, "li[data-step='cache']").text
        assert "miss" in cache, cache
        self.shot("tracer-upstream")
        # A number upstream refuses, with no gateway: 503 and why, not an error.
        self.trace_again("+449999")
        self.text_in("#trace-status-code", "503")
        failed = self.el("#trace-steps li.step-bad").text
        assert "Lookup (upstream)" in failed and "refused" in failed, failed
        self.shot("tracer-upstream-refused")

    def trace_again(self, number):
        """Traces another number from the tracer's own form."""
        box = self.el("#trace-input")
        box.clear()
        box.send_keys(number, Keys.ENTER)

    def read_status(self):
        """Clicks "Read now" and waits for the read to land."""
        before = self.el("#status-updated").text
        time.sleep(1.1)  # the line shows seconds: a new read shows a new time
        self.el("#status-refresh").click()
        self.wait.until(lambda d: d.find_element(By.ID, "status-updated").text not in ("", before))

    def status_moves(self):
        self.view("Status", "Status")
        self.text_in("#status-updated", "Updated")
        before = int(self.el("#decisions-redirect").text.replace(",", ""))
        invites_before = self.el("#calls-detail").text
        # SIPp's INVITE, answered 302 with the number's route first.
        sipp(self.args, "uac-302-contact.xml", NUMBER, "-key", "contact", GOOD_URI)
        self.read_status()
        after = int(self.el("#decisions-redirect").text.replace(",", ""))
        assert after > before, (before, after)
        assert self.el("#calls-detail").text != invites_before
        self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tile-calls svg.chart"))
        # Upstream: a cache hit (the tracer's lookup was the miss) and a refused lookup.
        for number in ("%2B12025550100", "%2B33123456789"):
            assert self.api("GET", f"/v1/route/{number}")[0] == 200
        self.read_status()
        metrics = urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()
        hits = metric_sum(metrics, "enroute_cache_hits_total")
        misses = metric_sum(metrics, "enroute_cache_misses_total")
        failed = metric_sum(metrics, "enroute_enum_lookups_total", 'result="refused"')
        assert hits >= 1 and failed >= 1, (hits, misses, failed)
        ratio = f"{100 * hits / (hits + misses):.1f}% since start"
        self.text_in("#cache-detail", ratio)
        self.text_in("#upstream-detail", f"refused {int(failed)}")
        self.axe("status")
        self.shot("status")

    def zones(self):
        axfr = subprocess.run(
            ["kdig", "-p", str(self.args.dns_port), "@127.0.0.1", "AXFR", "2.3.6.1.4.4.e164.arpa."],
            capture_output=True, text=True, timeout=20)
        assert "NAPTR" in axfr.stdout, axfr.stdout + axfr.stderr
        self.view("Zones", "Zones")
        left_status = time.monotonic()
        self.collect_logs()
        seen = len(self.requests)
        row = self.el("tr[data-origin='2.3.6.1.4.4.e164.arpa.']")
        text = row.text
        assert "primary" in text and "AXFR" in text and "to 127.0.0.1:" in text, text
        serial = json.loads(self.api("GET", "/v1/zones")[1])["items"]
        serial = next(z["serial"] for z in serial if z["origin"] == "2.3.6.1.4.4.e164.arpa.")
        assert str(serial) in text, (serial, text)
        self.axe("zones")
        self.shot("zones")
        # The status view read /metrics every 5 s while open, and not once after.
        time.sleep(max(0.0, left_status + 6 - time.monotonic()))
        self.collect_logs()
        polls = [u for u in self.requests[seen:] if urllib.parse.urlparse(u).path == "/metrics"]
        assert not polls, f"/metrics still read after leaving the status view: {polls}"

    def import_csv(self):
        bad = os.path.join(self.args.artifacts, "bad.csv")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("number,uri,order,preference,ttl\n")
            f.write("+441632960801,sip:imported1@pbx.example.net,100,10,300\n")
            f.write("+441632960802,no uri here,100,10,300\n")
        self.view("Import", "Import numbers")
        self.el("#import-file").send_keys(bad)
        self.el("#import-button").click()
        err = self.text_in("#import-error", "line 3")
        assert "not imported" in err, err
        self.text_in("#import-status", "Nothing was committed")
        assert self.api("GET", "/v1/numbers/%2B441632960801")[0] == 404, "a refused import committed a line"
        self.axe("import-error")
        self.shot("import-bad-line")
        good = os.path.join(self.args.artifacts, "good.csv")
        count = 5000
        with open(good, "w", encoding="utf-8") as f:
            f.write("number,uri,order,preference,ttl\n")
            for i in range(count):
                f.write(f"+4416329{i:05d},sip:bulk{i}@pbx.example.net,100,10,300\n")
        self.el("#import-file").send_keys(good)
        self.el("#import-button").click()
        self.text_in("#import-status", "committed and already served", timeout=60)
        counts = self.el("#import-counts").text
        assert f"Numbers set\n{count}" in counts, counts
        progress = self.driver.find_element(By.ID, "import-progress")
        assert progress.get_attribute("value") == "100", progress.get_attribute("value")
        assert "100%" in self.driver.find_element(By.ID, "import-progress-text").text
        assert self.driver.find_element(By.ID, "import-error").is_displayed() is False
        status, body = self.api("GET", "/v1/numbers/%2B441632904999")
        assert status == 200 and b"bulk4999" in body, body
        self.axe("import")
        self.shot("import-done")
        # The list at scale, for the README: a page of the imported numbers.
        self.view("Numbers", "Numbers")
        search = self.el("#number-search")
        search.clear()
        search.send_keys("+441632", Keys.ENTER)
        self.el("tr[data-id='+441632900000']")
        self.docs_shot("console-numbers.png", 1000)

    def prefixes(self):
        self.view("Prefix routes", "Prefix routes")
        self.el("#new-prefix").click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "New prefix")
        self.el("#e164prefix").send_keys("+4416329")
        kind = self.el("#route-0-kind")
        kind.send_keys("PSTN")  # picks "PSTN gateway" by typing, as a keyboard user does
        self.wait.until(lambda d: d.find_elements(By.ID, "route-0-rn"))
        self.el("#route-0-rn").send_keys("+441632000000")
        self.el("#save").click()
        self.text_in("#edit-status", "Saved")
        self.text_in("#saved-naptr", "E2U+pstn:tel")
        self.view("Prefix routes", "Prefix routes")
        self.el("tr[data-id='+4416329']")
        self.axe("prefixes")
        self.shot("prefixes")

    def registrations(self):
        self.view("Registrations", "Registrations")
        self.text_in("#registrations-status", "No AOR has a live binding")
        status, body = self.api("PUT", "/v1/users/alice@example.net", {"password": "correct-horse"})
        assert status in (200, 201), body
        # SIPp's REGISTER with its own MD5 digest: 401, then 200 (and a refresh).
        port = sipp(self.args, "reg-register.xml", "alice", "-au", "alice",
                    "-ap", "correct-horse", "-auth_uri", "example.net")
        self.driver.find_element(By.CSS_SELECTOR, "main form.toolbar button[type='submit']").click()
        row = self.el("#registrations-table tbody tr")
        assert "alice@example.net" in row.text and f"sip:alice@127.0.0.1:{port}" in row.text, row.text
        self.axe("registrations")
        self.shot("registrations")
        row.find_element(By.CSS_SELECTOR, "button.danger").click()
        self.el("#confirm-ok").click()
        self.text_in("#registrations-status", "Removed the bindings of alice@example.net")
        status, body = self.api("GET", "/v1/registrations?aor=alice@example.net")
        assert status == 200 and json.loads(body)["items"] in ([], [{"aor": "alice@example.net", "contacts": []}]), body

    def delete_number(self):
        self.view("Numbers", "Numbers")
        search = self.el("#number-search")
        search.clear()
        search.send_keys(NUMBER, Keys.ENTER)
        row = self.el(f"tr[data-id='{NUMBER}']")
        row.find_element(By.CSS_SELECTOR, "button.danger").click()
        dialog = self.el("dialog.confirm")
        assert NUMBER in dialog.text, dialog.text
        self.axe("delete-dialog")
        self.shot("delete-confirm")
        # Escape cancels: nothing deleted.
        self.keys(Keys.ESCAPE)
        self.wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog.confirm"))
        assert self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")[0] == 200
        self.el(f"tr[data-id='{NUMBER}'] button.danger").click()
        self.el("#confirm-ok").click()
        self.text_in("#number-list-status", f"Deleted {NUMBER}")
        self.wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"tr[data-id='{NUMBER}']"))
        assert self.api("GET", f"/v1/numbers/{urllib.parse.quote(NUMBER)}")[0] == 404
        self.shot("deleted")

    def narrow(self):
        self.driver.set_window_size(390, 844)
        self.view("Numbers", "Numbers")
        search = self.el("#number-search")
        search.clear()
        search.send_keys("+4416329", Keys.ENTER)
        self.el("tr[data-id='+441632900000']")
        self.no_sideways_scroll("numbers")
        # Paging: the next page follows the API's cursor, the previous one comes back.
        self.el("#number-next").click()
        self.text_in("#number-list-status", "Page 2")
        first = self.el("#number-results tbody tr").get_attribute("data-id")
        assert first == "+441632900050", first
        self.el("#number-prev").click()
        self.text_in("#number-list-status", "Page 1")
        assert self.el("#number-results tbody tr").get_attribute("data-id") == "+441632900000"
        self.axe("numbers-narrow")
        self.shot("numbers-narrow")
        for link, title in (("Route tracer", "Route tracer"), ("Zones", "Zones"), ("Status", "Status"),
                            ("Import", "Import numbers")):
            self.view(link, title)
            time.sleep(0.3)
            self.no_sideways_scroll(title)
            self.shot(f"narrow-{link.lower().replace(' ', '-')}")
        self.driver.set_window_size(1280, 900)

    def no_sideways_scroll(self, what):
        overflow = self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{what} scrolls sideways by {overflow}px on a narrow window"

    def revoked_token(self):
        """A token the server stops accepting: back to sign-in, with the API's 401."""
        self.view("Zones", "Zones")
        self.driver.execute_script("sessionStorage.setItem('enroute.token', 'revoked-on-the-server')")
        self.el("#zones-refresh").click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Sign in")
        self.text_in("#banner", "401")
        self.shot("token-refused")
        self.el("#token").send_keys(self.args.token, Keys.ENTER)
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Zones")
        assert not self.driver.find_element(By.ID, "banner").is_displayed()

    def lost_connection(self):
        self.view("Zones", "Zones")
        os.kill(self.args.server_pid, signal.SIGKILL)
        time.sleep(0.5)
        self.el("#zones-refresh").click()
        banner = self.text_in("#banner", "Cannot reach enroute")
        assert self.host in banner, banner
        self.text_in("#zones-error", "Could not list zones")
        self.shot("connection-lost")
        # Back: the banner goes by itself (the page checks every 3 s).
        self.restarted = start_again(self.args.server_binary, self.args.server_dir, self.base)
        self.waiter(30).until(
            lambda d: not d.find_element(By.ID, "banner").is_displayed(), "the banner stayed")
        self.el("#zones-refresh").click()
        self.el("tr[data-origin='2.3.6.1.4.4.e164.arpa.']")
        self.shot("connection-back")

    def sign_out(self):
        self.el("#sign-out").click()
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Sign in")
        assert self.driver.execute_script("return sessionStorage.getItem('enroute.token')") is None
        assert not self.driver.find_element(By.ID, "nav").is_displayed()
        self.shot("signed-out")

    def docs_shot(self, name, height):
        """A screenshot for the README, `height` pixels tall: into --artifacts as docs-NAME,
        and over docs/NAME too when refreshing them (--docs)."""
        self.driver.set_window_size(1280, height)
        time.sleep(0.3)
        png = self.driver.get_screenshot_as_png()
        self.driver.set_window_size(1280, 900)
        folders = [(self.args.artifacts, f"docs-{name}")]
        if self.args.docs:
            folders.append((self.args.docs, name))
        for folder, file in folders:
            with open(os.path.join(folder, file), "wb") as f:
                f.write(png)

    def only_this_origin(self):
        """Every request went to the admin listener, nowhere else."""
        self.collect_logs()
        # chrome:// pages are the browser's own (its first empty tab), not the network.
        network = [u for u in self.requests if urllib.parse.urlparse(u).scheme not in ("chrome", "data")]
        others = [u for u in network if urllib.parse.urlparse(u).netloc != self.host]
        assert self.requests, "no request was seen at all"
        assert not others, f"requests to other hosts: {others}"
        # Nothing loads everything: every list was asked for one page.
        for u in network:
            url = urllib.parse.urlparse(u)
            if url.path in ("/v1/numbers", "/v1/prefixes", "/v1/registrations"):
                limit = urllib.parse.parse_qs(url.query).get("limit", ["none"])[0]
                assert limit.isdigit() and int(limit) <= 250, f"a list asked without a page limit: {u}"
        csp = [e for e in self.console_errors if "Content Security Policy" in e or "Uncaught" in e]
        assert not csp, f"script errors or CSP violations: {csp}"
        print(f"{len(self.requests)} requests, all to {self.host}")


def metric_sum(text, name, label=""):
    """The sum of a metric family's samples (with `label` among their labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ ") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def start_again(binary, folder, base):
    """Starts the server again in its folder (same config and ports); waits for /healthz."""
    for _ in range(50):
        proc = subprocess.Popen([binary, "serve", "--config", "e.toml"], cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if proc.poll() is not None:
                break  # could not bind yet: the old sockets linger
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                return proc
            except OSError:
                time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        time.sleep(0.2)
    raise AssertionError("the server did not start again")


def free_udp_port():
    """A UDP port on 127.0.0.1 nobody holds now (SIPp's own; never 5060)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sipp(args, scenario, service, *extra):
    """Runs SIPp once over UDP with tests/sipp/SCENARIO as user SERVICE from a free port;
    the scenario's own regexp checks decide its exit status. Returns SIPp's local port."""
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(
            [args.sipp, f"127.0.0.1:{args.sip_port}", "-sf", os.path.join(args.scenarios, scenario),
             "-s", service, "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-m", "1",
             "-timeout", "30", "-timeout_error", "-nostdin", "-trace_err", *extra],
            cwd=folder, capture_output=True, text=True, timeout=60)
        errors = "".join(open(os.path.join(folder, f), errors="replace").read()
                         for f in os.listdir(folder))
    assert run.returncode == 0, f"SIPp {scenario} exited {run.returncode}:\n{run.stderr}\n{errors}"
    return port


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="http://127.0.0.1:PORT (the admin listener)")
    p.add_argument("--token", required=True)
    p.add_argument("--sip-port", type=int, required=True)
    p.add_argument("--dns-port", type=int, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--server-binary", required=True, help="to start the server again after killing it")
    p.add_argument("--server-dir", required=True, help="its folder (e.toml)")
    p.add_argument("--artifacts", required=True)
    p.add_argument("--profile", required=True, help="an empty folder for Chromium's profile")
    p.add_argument("--axe", required=True, help="axe.min.js")
    p.add_argument("--docs", help="where the README's screenshots go (when refreshing them)")
    p.add_argument("--sipp", required=True, help="SIPp (Debian's sip-tester)")
    p.add_argument("--scenarios", required=True, help="tests/sipp (its scenarios)")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = p.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    c = Console(args)
    steps = [c.sign_in, c.create_number, c.list_numbers, c.edit_number, c.trace, c.status_moves,
             c.zones, c.import_csv, c.prefixes, c.registrations, c.delete_number, c.narrow,
             c.revoked_token, c.lost_connection, c.sign_out, c.only_this_origin]
    try:
        for step in steps:
            print(f"step: {step.__name__}", flush=True)
            step()
            c.collect_logs()
    except (AssertionError, TimeoutException, WebDriverException, OSError) as e:
        try:
            c.shot(f"FAILED-{step.__name__}")
        finally:
            print(f"FAILED at {step.__name__}: {e}", flush=True)
            print(f"page: {c.driver.find_element(By.TAG_NAME, 'body').text[:3000]}", flush=True)
        sys.exit(1)
    finally:
        with open(os.path.join(args.artifacts, "axe.json"), "w", encoding="utf-8") as f:
            json.dump(c.axe_results, f, indent=1)
        c.driver.quit()
        if c.restarted:
            c.restarted.kill()
            c.restarted.wait()
    print("console: every step passed")


if __name__ == "__main__":
    main()
