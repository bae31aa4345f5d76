"""Drives the chat page (`taojie serve chat --web`) in a real, headless Chromium.

Usage:
  web_chat.py chat TAOJIE OUTDIR NAME=CODE...
  web_chat.py login URL NAME OUTDIR

`chat` starts its own broker (chat and web on port 0), then: a plain nc client (nora) says a
line in room `dev`; two pages, ann and ben, join it straight from invitation links
(`/?name=..&room=..`) and must have the message box focused and nora's line from the
history; all three see each other's lines under the right names, each name in the colour
given (NAME=CODE, the terminal client's ANSI code for the name); a line with markup in it is
shown as text and runs nothing; /who lists the room; /join moves ben to another room; the
broker is stopped by its PID and started again on the same addresses, and both pages
reconnect by themselves and are back in their rooms under their names. Screenshots (a wide
window and a phone-sized one) go to OUTDIR.

`login` opens URL (a keyed broker's login link), picks NAME in the name prompt, and sends
`hello with a token from NAME` once the page is online; the test checks that another
member gets it.

Prints `ok` and exits 0, or prints what went wrong and exits 1. Every wait is bounded; the
processes started here (the broker, nc, Chromium) are ended by their PIDs.
"""

import datetime
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20.0
XSS = "<img src=x onerror=alert(1)>"


class Failure(Exception):
    pass


def fnv_colour(name):
    """The terminal client's colour for a name (src/chat/colour.rs), for a second opinion."""
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96][h % 12]


# ---- processes ----


class Broker:
    """`taojie serve chat` on the given (or port-0) addresses; waits for both address lines."""

    def __init__(self, taojie, chat="127.0.0.1:0", web="127.0.0.1:0"):
        self.proc = subprocess.Popen(
            [taojie, "serve", "chat", "--listen", chat, "--web", web, "--grace", "1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.addrs = {}
        deadline = time.monotonic() + WAIT
        buf = b""
        while len(self.addrs) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise Failure(f"broker announced only {self.addrs}")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise Failure(f"broker exited; announced {self.addrs}")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                service, _proto, addr = line.decode().split(" ", 2)
                self.addrs[service] = addr

    def stop(self):
        """SIGTERM by PID, then SIGKILL if it is not gone in time."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=WAIT)


class Nc:
    """OpenBSD nc as a chat client: lines in on stdin, lines out through a queue."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.proc = subprocess.Popen(
            ["nc", host, port], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, pred, what):
        for line in self.seen:
            if pred(line):
                return line
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise Failure(f"nc never saw {what}; saw {self.seen}")
            self.seen.append(line)
            if pred(line):
                return line

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=WAIT)


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        f"--user-data-dir={profile}",
        "--window-size=1100,720",
        "--lang=en-US",
    ]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path="/usr/bin/chromedriver", log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


# ---- the page ----


class Page:
    """One browser window showing the chat page."""

    def __init__(self, driver, handle, name):
        self.d, self.handle, self.name = driver, handle, name

    def focus(self):
        self.d.switch_to.window(self.handle)
        return self.d

    def until(self, what, cond):
        d = self.focus()
        try:
            return WebDriverWait(d, WAIT, poll_frequency=0.05).until(lambda _: cond(d))
        except TimeoutException:
            raise Failure(f"{self.name}: never {what}; log:\n{self.log_text()}")

    def js(self, script, *args):
        return self.focus().execute_script(script, *args)

    def state(self):
        return self.js("return document.getElementById('state').dataset.state")

    def online(self):
        self.until("online", lambda _: self.state() == "online")

    def rows(self):
        """Every row of the log as (kind classes, nick or None, text)."""
        return self.js(
            """return [...document.querySelectorAll('#log > *')].map(r => [
                 r.className,
                 r.querySelector('.nick') ? r.querySelector('.nick').textContent : null,
                 r.querySelector('.text') ? r.querySelector('.text').textContent : r.textContent,
                 r.querySelector('.nick') ? r.querySelector('.nick').dataset.colour : null])"""
        )

    def log_text(self):
        try:
            return "\n".join(f"  [{c}] {n or ''} | {t}" for c, n, t, _ in self.rows())
        except Exception as e:  # the window may be gone
            return f"  (no log: {e})"

    def saw(self, nick, text):
        """Waits for a chat row from `nick` saying `text`; returns its colour code."""
        def found(_):
            for cls, n, t, colour in self.rows():
                if n == nick and t.strip() == text and "chat" in cls.split():
                    return colour
            return None

        return int(self.until(f"saw <{nick}> {text}", found))

    def saw_notice(self, pred, what):
        return self.until(
            what,
            lambda _: next((t for c, _, t, _ in self.rows() if "notice" in c and pred(t)), None),
        )

    def said_at(self, nick, text):
        """The time (seconds since the epoch) the row of `nick` saying `text` shows it was said."""
        iso = self.js(
            """for (const r of document.querySelectorAll('#log > .chat')) {
                 const n = r.querySelector('.nick'), t = r.querySelector('.text');
                 if (n && t && n.textContent === arguments[0] && t.textContent.trim() === arguments[1])
                   return r.querySelector('time').dateTime;
               }
               return null;""",
            nick, text)
        check(iso is not None, f"{self.name}: no row of {nick} saying {text}")
        return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()

    def has(self, nick, text):
        return any(n == nick and t.strip() == text for _, n, t, _ in self.rows())

    def type(self, line):
        box = self.focus().find_element(By.ID, "text")
        box.send_keys(line)
        box.send_keys(Keys.ENTER)


def check(cond, what):
    if not cond:
        raise Failure(what)


def open_page(driver, url, name, first=False):
    if not first:
        driver.switch_to.new_window("window")
    driver.get(url)
    return Page(driver, driver.current_window_handle, name)


def no_alert(page):
    try:
        alert = page.focus().switch_to.alert
        text = alert.text
        alert.dismiss()
        raise Failure(f"{page.name}: an alert opened: {text!r}")
    except NoAlertPresentException:
        pass


def console_problems(driver):
    """Console errors other than the refused connections a restart causes."""
    bad = []
    for entry in driver.get_log("browser"):
        msg = entry.get("message", "")
        if entry.get("level") != "SEVERE":
            continue
        if "WebSocket connection to" in msg or "ERR_CONNECTION_REFUSED" in msg:
            continue
        bad.append(msg)
    return bad


def run_chat(taojie, outdir, colours):
    broker = Broker(taojie)
    chat, web = broker.addrs["chat"], broker.addrs["chat-web"]
    base = f"http://{web}/"
    profile = tempfile.mkdtemp(prefix="taojie-chromium-")
    driver = None
    nora = Nc(chat)
    try:
        nora.wait(lambda l: l.startswith("*** welcome"), "the welcome")
        nora.send("/nick nora")
        nora.wait(lambda l: l.endswith("is now known as nora"), "own rename")
        nora.send("/join dev")
        nora.wait(lambda l: l == "*** nora joined dev", "own join")
        nora.send("history from nora")
        said = time.time()
        # The pages come a while later: the history shows when the line was said, not when a
        # page joined.
        time.sleep(2)

        driver = browser(profile)
        ann = open_page(driver, base + "?name=ann&room=dev", "ann", first=True)
        ann.online()
        check(
            ann.js("return document.activeElement && document.activeElement.id") == "text",
            "ann: the message box is not focused after joining from a link",
        )
        check(ann.saw("nora", "history from nora") == colours["nora"], "nora's colour on ann's page")
        at = ann.said_at("nora", "history from nora")
        check(said - 2 <= at <= said + 1,
              f"ann's page shows nora's line said at {at}, it was said at {said}")
        ben = open_page(driver, base + "?name=ben&room=dev", "ben")
        ben.online()
        check(ben.saw("nora", "history from nora") > 0, "ben: no history")
        nora.wait(lambda l: l == "*** ben joined dev", "ben's arrival")

        ann.type("hello from ann")
        nora.wait(lambda l: l == "<ann> hello from ann", "ann's line")
        check(ben.saw("ann", "hello from ann") == colours["ann"], "ann's colour on ben's page")
        check(ann.saw("ann", "hello from ann") == colours["ann"], "ann's own line, in her colour")
        ben.type("hi ann, ben here")
        nora.wait(lambda l: l == "<ben> hi ann, ben here", "ben's line")
        check(ann.saw("ben", "hi ann, ben here") == colours["ben"], "ben's colour on ann's page")
        nora.send("hi both, nora on nc")
        ann.saw("nora", "hi both, nora on nc")
        ben.saw("nora", "hi both, nora on nc")
        ben.type("/me waves")
        nora.wait(lambda l: l == "* ben waves", "ben's action")
        ann.until("saw ben's action", lambda _: any(
            "action" in c and n == "ben" and "waves" in t for c, n, t, _ in ann.rows()))

        # Markup from others is text: shown literally, no element made, nothing run.
        ben.type(XSS)
        nora.wait(lambda l: l == "<ben> " + XSS, "the markup line, literally")
        ann.saw("ben", XSS)
        nora.send(XSS + " from nc")
        ben.saw("nora", XSS + " from nc")
        for p in (ann, ben):
            check(p.js("return document.querySelectorAll('#log img').length") == 0,
                  f"{p.name}: markup from the network made an element")
            no_alert(p)
        check(ann.js("return window.__xss === undefined"), "ann: script ran")

        ann.type("/who")
        ann.saw_notice(lambda t: t.startswith("in #dev (3)") or t.startswith("in dev (3)"), "/who")
        who = ann.rows()[-1]
        check(who[2].startswith("in #dev (3)"), f"ann: /who row {who}")
        names = ann.js("return [...document.querySelectorAll('#log > .who:last-child .nick')].map(n => n.textContent)")
        check(names == ["ann", "ben", "nora"], f"ann: /who names {names}")

        for name, page in (("ann", ann), ("ben", ben)):
            got = page.js("return getComputedStyle(document.getElementById('me')).color")
            check(got and got != "rgb(0, 0, 0)", f"{name}: own name not coloured ({got})")
        check(fnv_colour("ann") == colours["ann"], "the driver's FNV-1a disagrees with taojie's")

        # Screenshots while the room is lively: a wide window and a phone.
        os.makedirs(outdir, exist_ok=True)
        ann.focus().save_screenshot(os.path.join(outdir, "chat-web.png"))

        ben.type("/join lab")
        ann.saw_notice(lambda t: t == "ben left dev (joined lab)", "ben leaving for lab")
        ben.until("in lab", lambda _: ben.js("return document.getElementById('room-input').value") == "lab")
        check("room=lab" in ben.js("return location.search"), "ben: the address does not say lab")
        nora.send("/join lab")
        ben.saw_notice(lambda t: t == "nora joined lab", "nora joining lab")
        nora.send("only the lab hears this")
        ben.saw("nora", "only the lab hears this")
        ben.type("/who")
        ben.saw_notice(lambda t: t.startswith("in #lab (2)"), "/who in lab")
        nora.send("/join dev")
        nora.wait(lambda l: l == "*** nora joined dev", "nora back in dev")
        ann.saw_notice(lambda t: t == "nora joined dev", "nora back in dev")
        check(not ann.has("nora", "only the lab hears this"), "ann heard a line of another room")

        # The broker goes away and comes back on the same addresses: the pages reconnect,
        # each in its room under its name.
        broker.stop()
        nora.stop()
        for p in (ann, ben):
            p.until("noticed the broker gone", lambda _: p.state() != "online")
        broker = Broker(taojie, chat, web)
        for p in (ann, ben):
            p.until("back online", lambda _: p.state() == "online")
        nora = Nc(chat)
        nora.send("/nick nora")
        nora.wait(lambda l: l.endswith("is now known as nora"), "own rename after the restart")
        nora.send("/join dev")
        nora.send("/who")
        nora.wait(lambda l: l == "*** in dev (2): ann, nora", "ann back in dev")
        nora.send("/join lab")
        nora.send("/who")
        nora.wait(lambda l: l == "*** in lab (2): ben, nora", "ben back in lab")
        ben.type("ben after the restart")
        nora.wait(lambda l: l == "<ben> ben after the restart", "ben's line after the restart")
        nora.send("/join dev")
        nora.wait(lambda l: l == "*** nora joined dev", "nora in dev again")
        ann.type("ann after the restart")
        nora.wait(lambda l: l == "<ann> ann after the restart", "ann's line after the restart")
        check(ann.js("return document.title").startswith("#dev"), "ann's title after the restart")

        d = ann.focus()
        d.set_window_size(390, 780)
        ann.until("phone layout", lambda _: ann.js("return window.innerWidth") <= 420)
        d.save_screenshot(os.path.join(outdir, "chat-web-phone.png"))
        overflow = ann.js("return document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 0, f"the page is wider than a phone by {overflow}px")

        problems = console_problems(driver)
        check(not problems, f"console errors: {problems}")
    finally:
        if driver is not None:
            driver.quit()
        nora.stop()
        broker.stop()
        shutil.rmtree(profile, ignore_errors=True)


def run_login(url, name, outdir):
    profile = tempfile.mkdtemp(prefix="taojie-chromium-")
    driver = browser(profile)
    try:
        page = open_page(driver, url, name, first=True)
        page.until("showed the name prompt", lambda d: d.find_element(By.ID, "welcome").is_displayed())
        box = driver.find_element(By.ID, "name-input")
        box.send_keys(name)
        box.send_keys(Keys.ENTER)
        page.online()
        check("token=" not in page.js("return location.href"), "the token stayed in the address bar")
        page.type(f"hello with a token from {name}")
        page.until("sent", lambda _: page.has(name, f"hello with a token from {name}"))
        os.makedirs(outdir, exist_ok=True)
        driver.save_screenshot(os.path.join(outdir, "chat-web-login.png"))
        # The page remembers the token: the plain address works from now on.
        driver.get(url.split("?")[0] + f"?name={name}2")
        page.online()
        problems = console_problems(driver)
        check(not problems, f"console errors: {problems}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    try:
        if sys.argv[1] == "chat":
            colours = dict((kv.split("=")[0], int(kv.split("=")[1])) for kv in sys.argv[4:])
            run_chat(sys.argv[2], sys.argv[3], colours)
        elif sys.argv[1] == "login":
            run_login(sys.argv[2], sys.argv[3], sys.argv[4])
        else:
            raise Failure(f"unknown mode {sys.argv[1]}")
    except Failure as e:
        print(f"FAILED: {e}")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
