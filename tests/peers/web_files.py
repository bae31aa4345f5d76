"""Drives the files page (`taojie serve files --web`) in a real, headless Chromium.

Usage:
  web_files.py TAOJIE OUTDIR

Starts its own keyed server (files and its page on port 0) over a fresh root that holds a
file named `<img src=x onerror=alert(1)>.txt`, a small file and a folder; then in Chromium:
logs in with the printed login URL; the markup name shows as text and runs nothing; a
200 MiB file is uploaded through the file picker, and when the server holds about half of
it the server is stopped (SIGTERM, by its PID) and started again on the same addresses: the
page finds it back by itself and the upload finishes from where it was, so that what crossed
twice (the server's `upload chunk` lines of both runs, added up) is at most one chunk; a
folder of 500 small files is uploaded through the folder picker; a file and a folder (as
.zip) are downloaded with the page's buttons; a `--read-only` server's page offers no upload,
rename or delete, an `--upload-only` one's no listing. Every file is compared byte for byte. A
screenshot of the page (wide, and phone-sized) goes to OUTDIR.

Prints `ok` and exits 0, or prints what went wrong and exits 1. Every wait is bounded; the
processes started here (the server, Chromium) are ended by their PIDs.
"""

import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WAIT = 30.0
XSS = "<img src=x onerror=alert(1)>.txt"
BIG = 200 << 20
CHUNK = 8 << 20


class Failure(Exception):
    pass


def until(what, pred, limit=WAIT, every=0.05):
    deadline = time.monotonic() + limit
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(every)


class Server:
    """`taojie serve files --web` on the given (or port-0) page address; keeps its stderr."""

    def __init__(self, taojie, root, key, web="127.0.0.1:0", extra=()):
        self.proc = subprocess.Popen(
            [taojie, "serve", "files", "--listen", "127.0.0.1:0", "--root", root, "--key", key,
             "--web", web, "--grace", "3", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.web = None
        deadline = time.monotonic() + WAIT
        buf = b""
        while self.web is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise Failure("the server never announced its page")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise Failure("the server exited: " + "\n".join(self.err()))
            buf += chunk
            m = re.search(rb"^files-web tcp (\S+)$", buf, re.M)
            if m:
                self.web = m.group(1).decode()
        self.login = until("the login line", lambda: next(
            (l.split(" ", 2)[2] for l in self.err() if l.startswith("files-web login ")), None))

    def _read_err(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def err(self):
        with self.lock:
            return list(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("the server did not stop within its grace period")


def chunk_lines(lines, name):
    """(offset, bytes, outcome) of every `upload chunk` line for `name`."""
    out = []
    for l in lines:
        if "upload chunk" not in l or f"name={name}" not in l:
            continue
        m = re.search(r"offset=(\d+) bytes=(\d+) outcome=\"?(\w+)", l)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return out


def browser(profile, downloads, width=1280, height=800):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--lang=en-US",
    ]:
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": downloads,
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path="/usr/bin/chromedriver", log_output=subprocess.DEVNULL)
    d = webdriver.Chrome(service=service, options=opts)
    d.set_page_load_timeout(WAIT)
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return d


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def tree(top):
    out = {}
    for dirpath, _, files in os.walk(top):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, top)] = sha(p)
    return out


def no_alert(d):
    try:
        a = d.switch_to.alert
        text = a.text
        a.dismiss()
        raise Failure(f"a script ran: alert({text!r})")
    except NoAlertPresentException:
        pass


def row(d, name):
    return d.execute_script(
        "return [...document.querySelectorAll('#rows tr')].find(tr => tr.dataset.name === arguments[0]) || null",
        name)


def done_count(d):
    return d.execute_script("return document.querySelectorAll('#up-list li.done').length")


def run(taojie, outdir):
    work = tempfile.mkdtemp(prefix="taojie-web-files-")
    server = None
    d = None
    try:
        root = os.path.join(work, "root")
        src = os.path.join(work, "src")
        downloads = os.path.join(work, "downloads")
        for p in (root, src, downloads):
            os.makedirs(p)
        key = os.path.join(work, "key")
        with open(key, "w") as f:
            f.write("a key for the browser test 0123456789\n")
        os.chmod(key, 0o600)
        with open(os.path.join(root, XSS), "w") as f:
            f.write("just text\n")
        with open(os.path.join(root, "notes.txt"), "wb") as f:
            f.write(os.urandom(70_000))
        os.makedirs(os.path.join(root, "docs", "inner"))
        for i in range(5):
            with open(os.path.join(root, "docs", "inner" if i % 2 else "", f"doc{i}.txt"), "wb") as f:
                f.write(os.urandom(1000 + i))
        big = os.path.join(src, "big.bin")
        with open(big, "wb") as f:
            for _ in range(BIG >> 20):
                f.write(os.urandom(1 << 20))
        album = os.path.join(src, "album")
        for i in range(500):
            sub = os.path.join(album, f"part{i % 4}")
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, f"photo {i:03}.jpg"), "wb") as f:
                f.write(os.urandom(200 + i * 13))

        server = Server(taojie, root, key)
        web = server.web
        d = browser(os.path.join(work, "profile"), downloads)

        # Log in: the token goes into a cookie and leaves the address bar.
        d.get(server.login)
        until("the listing", lambda: row(d, "notes.txt"))
        if "token=" in d.current_url:
            raise Failure(f"the token stayed in the address bar: {d.current_url}")

        # A name with markup is text.
        r = row(d, XSS)
        if not r:
            raise Failure("the file with markup in its name is not listed")
        label = d.execute_script("return arguments[0].querySelector('.label').textContent", r)
        if label != XSS:
            raise Failure(f"the name shows as {label!r}")
        if d.find_elements(By.CSS_SELECTOR, "#rows img"):
            raise Failure("the name became an <img> element")
        no_alert(d)

        # 200 MiB through the file picker; the server is stopped at about half.
        d.find_element(By.ID, "pick-files").send_keys(big)
        def held():
            done = [c for c in chunk_lines(server.err(), "big.bin") if c[2] == "held"]
            return max((o + b for o, b, _ in done), default=0)
        try:
            until("half of the big file held", lambda: held() >= BIG // 2, limit=120)
        except Failure as e:
            states = d.execute_script("return [...document.querySelectorAll('#up-list li')].map(l => l.textContent)")
            raise Failure(f"{e}; the page says {states}; the server said {server.err()[-8:]}")
        server.stop()
        first = server.err()
        if any("upload verified" in l and "big.bin" in l for l in first):
            raise Failure("the upload finished before the server was stopped")
        stopped_at = held()
        until("the page to notice the server is gone", lambda: d.execute_script(
            "return [...document.querySelectorAll('#up-list .ustate')].some(e => e.textContent.startsWith('waiting for the server'))"))
        server = Server(taojie, root, key, web)
        until("the big upload to finish after the restart",
              lambda: d.execute_script(
                  "return [...document.querySelectorAll('#up-list li.done .uname')].some(e => e.textContent === 'big.bin')"),
              limit=240, every=0.2)
        if sha(os.path.join(root, "big.bin")) != sha(big):
            raise Failure("big.bin on the server differs from the one uploaded")
        sent = sum(b for _, b, _ in chunk_lines(first, "big.bin")) + \
            sum(b for _, b, _ in chunk_lines(server.err(), "big.bin"))
        again = sent - BIG
        if again > CHUNK:
            raise Failure(f"{again} bytes crossed twice (more than one chunk); held {stopped_at} at the stop")
        if again < 0:
            raise Failure(f"the server's chunk lines add up to {sent}, less than the file")

        # A folder of 500 files through the folder picker.
        d.find_element(By.ID, "pick-folder").send_keys(album)
        until("500 files uploaded", lambda: done_count(d) >= 501, limit=240, every=0.2)
        if tree(os.path.join(root, "album")) != tree(album):
            raise Failure("the uploaded folder differs from the one picked")

        # What a person sees after those uploads: the folder and the uploads panel.
        until("the listing with the new folder", lambda: row(d, "album"))
        d.save_screenshot(os.path.join(outdir, "files-web.png"))

        # Downloads: a file, and a folder as .zip, with the row's buttons.
        d.get(f"http://{web}/")
        until("the listing again", lambda: row(d, "album"))
        d.execute_script("arguments[0].querySelector('button[title=\"Download\"]').click()", row(d, "notes.txt"))
        got = os.path.join(downloads, "notes.txt")
        until("notes.txt downloaded", lambda: os.path.exists(got) and sha(got) == sha(os.path.join(root, "notes.txt")))
        d.execute_script("arguments[0].querySelector('button[title=\"Download as .zip\"]').click()", row(d, "docs"))
        z = os.path.join(downloads, "docs.zip")
        until("docs.zip downloaded", lambda: os.path.exists(z) and not os.path.exists(z + ".crdownload")
              and zipfile.is_zipfile(z))
        t = subprocess.run(["unzip", "-t", z], capture_output=True, text=True)
        if t.returncode != 0:
            raise Failure("unzip -t docs.zip: " + t.stdout + t.stderr)
        with zipfile.ZipFile(z) as zf:
            for name in zf.namelist():
                if name.endswith("/"):
                    continue
                with zf.open(name) as inside, open(os.path.join(root, name), "rb") as orig:
                    if inside.read() != orig.read():
                        raise Failure(f"{name} in docs.zip differs")
        no_alert(d)

        # The page follows the server's mode: read-only shows no upload, rename or delete;
        # upload-only shows the upload buttons and no listing.
        for flag in ("--read-only", "--upload-only"):
            other = Server(taojie, root, key, extra=(flag,))
            try:
                d.get(other.login)
                until(f"the {flag} note", lambda: d.execute_script(
                    "return !document.getElementById('mode-note').hidden"))
                shown = d.execute_script(
                    "const seen = id => { const e = document.getElementById(id); return !!e && e.offsetParent !== null; };"
                    "return {upload: seen('up-files'), list: seen('list'),"
                    " rename: document.querySelectorAll('#rows button[title=\"Rename\"]').length}")
                if flag == "--read-only":
                    until("the read-only listing", lambda: row(d, "notes.txt"))
                    if shown["upload"] or d.execute_script(
                            "return document.querySelectorAll('#rows button[title=\"Rename\"], #rows button[title=\"Delete\"]').length"):
                        raise Failure(f"a read-only page offers changes: {shown}")
                elif not shown["upload"] or shown["list"]:
                    raise Failure(f"an upload-only page: {shown}")
            finally:
                other.stop()
        d.get(server.login)
        until("the listing again", lambda: row(d, "album"))

        # And on a phone.
        d.set_window_size(420, 860)
        until("the phone-sized layout", lambda: d.execute_script(
            "return window.innerWidth <= 420 && document.querySelector('#rows').getBoundingClientRect().width <= 420"))
        d.save_screenshot(os.path.join(outdir, "files-web-phone.png"))
        logs = [e for e in d.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
        csp = [e for e in logs if "Content Security Policy" in e.get("message", "")]
        if csp:
            raise Failure(f"the page broke its own policy: {csp}")
        print("ok")
    finally:
        if d is not None:
            d.quit()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    try:
        run(sys.argv[1], sys.argv[2])
    except Failure as e:
        print(f"failed: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
