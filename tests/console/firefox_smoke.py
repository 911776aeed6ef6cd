"""The operator console in headless Firefox (Debian's firefox-esr), driven over WebDriver
BiDi (Firefox's own remote agent: no geckodriver), against a running `enroute serve`
(started by tests/console_firefox.rs on free loopback ports).

A smoke test, not the full walk tests/console/console_test.py does in Chromium: sign in
with a wrong token (the API's 401 shown) then the right one (the numbers list), trace
+441632960002 (302 to sip:bob@sbc1.enroute.example.net), open the status view, and
check the token is kept in the tab's sessionStorage. Any error the page logs (an
uncaught exception, console.error, a Content-Security-Policy violation) fails the run.

Exit status 0 when every check held; otherwise the failing check is printed.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import websocket  # websocket-client, which Selenium depends on

TRACED = "+441632960002"
CONTACT = "sip:bob@sbc1.enroute.example.net"

# A quiet fresh profile: no first-run pages, updates, telemetry or other traffic.
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.search.update": False,
    "services.settings.server": "",
    "intl.locale.requested": "en-GB",
}


class Failed(Exception):
    pass


class Bidi:
    """One WebDriver BiDi session over a websocket: commands by id, events kept."""

    def __init__(self, url):
        # Firefox refuses a websocket with an Origin header it was not told to allow.
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def send(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("type") == "event":
                self.events.append(msg)
            elif msg.get("id") == me:
                if msg.get("type") == "error":
                    raise Failed(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


class Firefox:
    def __init__(self, binary, profile):
        with open(os.path.join(profile, "user.js"), "w", encoding="utf-8") as f:
            for name, value in PREFS.items():
                f.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
        self.profile = profile
        self.log_path = os.path.join(profile, "firefox.log")
        log = open(self.log_path, "wb")
        env = dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1", MOZ_HEADLESS="1")
        # Port 0: Firefox picks a free one and names it in WebDriverBiDiServer.json.
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--remote-debugging-port=0",
             "--profile", profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            start_new_session=True)
        log.close()

    def endpoint(self, timeout=20):
        """ws://host:port once the remote agent listens."""
        info = os.path.join(self.profile, "WebDriverBiDiServer.json")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"firefox exited with {self.proc.returncode}: {self.log()}")
            try:
                with open(info, encoding="utf-8") as f:
                    d = json.load(f)
                return f"ws://{d['ws_host']}:{d['ws_port']}"
            except (OSError, ValueError, KeyError):
                pass
            # Older releases only print it.
            for line in self.log().splitlines():
                if "WebDriver BiDi listening on " in line:
                    return line.split("listening on ", 1)[1].strip()
            time.sleep(0.1)
        raise Failed(f"firefox's remote agent did not listen within {timeout} s: {self.log()}")

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            try:
                # Its own process group (start_new_session): the content processes too.
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


class Console:
    def __init__(self, bidi, base, token):
        self.bidi = bidi
        self.base = base.rstrip("/")
        self.token = token
        self.context = None

    def start(self):
        self.bidi.send("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": False}})
        self.bidi.send("session.subscribe", events=["log.entryAdded"])
        tree = self.bidi.send("browsingContext.getTree", maxDepth=0)
        self.context = tree["contexts"][0]["context"]

    def navigate(self, url):
        self.bidi.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def js(self, expression):
        """The value of `expression` in the page (promises awaited)."""
        r = self.bidi.send("script.evaluate", expression=expression, awaitPromise=True,
                           target={"context": self.context})
        if r["type"] == "exception":
            d = r["exceptionDetails"]
            raise Failed(f"script {expression!r} threw: {d.get('text')}")
        return r["result"].get("value")

    def text(self, css):
        return self.js(f"document.querySelector({json.dumps(css)})?.textContent ?? null")

    def until(self, what, check, timeout=10):
        """Polls `check()` until it is truthy; fails naming `what` and the last value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.1)
        raise Failed(f"{what}: not within {timeout} s (last seen: {last!r}; "
                     f"heading {self.text('main h1')!r}; banner {self.text('#banner:not([hidden])')!r})")

    def heading_is(self, title):
        self.until(f"heading {title!r}", lambda: self.text("main h1") == title and title)

    def text_in(self, css, needle):
        return self.until(f"{needle!r} in {css}",
                          lambda: (self.text(css) or "") if needle in (self.text(css) or "") else None)

    def submit_token(self, token):
        self.js("(() => { const t = document.querySelector('#token');"
                f" t.value = {json.dumps(token)}; t.form.requestSubmit(); }})()")

    # ---- the steps ---------------------------------------------------------------

    def sign_in(self):
        self.navigate(f"{self.base}/ui/")
        self.heading_is("Sign in")
        self.submit_token("not-the-token")
        self.text_in("#signin-error", "401")
        self.submit_token(self.token)
        self.heading_is("Numbers")
        self.until("a row in #number-results",
                   lambda: self.js("document.querySelectorAll('#number-results tbody tr').length"))

    def trace(self):
        self.navigate(f"{self.base}/ui/#/trace/%2B{TRACED[1:]}")
        self.heading_is("Route tracer")
        self.text_in("#trace-status-code", "302 Moved Temporarily")
        self.text_in("#trace-contacts", CONTACT)

    def status(self):
        self.navigate(f"{self.base}/ui/#/status")
        self.heading_is("Status")
        self.until("#decisions-value", lambda: self.text("#decisions-value"))

    def token_kept(self):
        kept = self.js("sessionStorage.getItem('enroute.token')")
        if kept != self.token:
            raise Failed(f"sessionStorage holds {kept!r}, not the token")

    def no_script_errors(self):
        errors = []
        for e in self.bidi.events:
            p = e.get("params", {})
            if e.get("method") == "log.entryAdded" and p.get("level") == "error":
                errors.append(f"{p.get('type')}: {p.get('text')} "
                              f"({json.dumps(p.get('stackTrace', {}).get('callFrames', [])[:2])})")
        if errors:
            raise Failed("the page logged errors:\n  " + "\n  ".join(errors))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="http://127.0.0.1:PORT (the admin listener)")
    p.add_argument("--token", required=True)
    p.add_argument("--profile", required=True, help="an empty folder for Firefox's profile")
    p.add_argument("--firefox", default="/usr/bin/firefox-esr")
    args = p.parse_args()
    started = time.monotonic()
    firefox = Firefox(args.firefox, args.profile)
    bidi = None
    step = "start"
    try:
        bidi = Bidi(firefox.endpoint() + "/session")
        c = Console(bidi, args.base, args.token)
        c.start()
        print(f"firefox ready in {time.monotonic() - started:.1f} s", flush=True)
        for fn in (c.sign_in, c.trace, c.status, c.token_kept, c.no_script_errors):
            step = fn.__name__
            print(f"step: {step}", flush=True)
            fn()
    except (Failed, OSError, websocket.WebSocketException) as e:
        print(f"FAILED at {step}: {e}", flush=True)
        if bidi:
            try:
                body = c.js("document.body?.innerText ?? ''")
                print(f"page: {str(body)[:3000]}", flush=True)
            except Exception:
                pass
        sys.exit(1)
    finally:
        if bidi:
            try:
                bidi.send("session.end")
            except Exception:
                pass
            bidi.close()
        firefox.kill()
    print(f"firefox: every step passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
