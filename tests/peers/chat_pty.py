"""Drives `taojie chat` on pseudo-terminals and checks what a user would see.

Usage: chat_pty.py TAOJIE ADDR

Two terminal clients (ann, cat) join the broker at ADDR, each on its own 80x24 pty, next to a
plain socket client (bob). ann types part of a line; while it is unfinished bob posts lines;
then ann finishes it and presses Enter; she edits a line with the cursor keys, Ctrl-W and
Ctrl-U, brings one back from the history, pastes two lines and types a line wider than the
terminal. Everything the clients write to their ptys goes into
the pyte terminal emulator, and the checks are on the emulated screens: the incoming lines are
whole, above the input line; the input line still holds exactly what was typed; bob gets the
finished lines intact; names are coloured, the same name with the same colour on both
terminals; a client comes in under its name; its own lines and /me show under the name the
broker gave (not a refused one); Ctrl-D and SIGTERM end the client and give the terminal its
modes back; /quit ends with the broker's bye and nothing after it.

Prints `ok` and exits 0, or prints what went wrong and the screen, and exits 1. Every wait is
bounded; the processes started here are killed by the end.
"""

import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pyte
from pyte.graphics import FG_AIXTERM, FG_ANSI

ROWS, COLS = 24, 80
WAIT = 15.0
PROMPT = "> "


class Failure(Exception):
    pass


def fnv_colour(name):
    """The client's colour for a name (src/chat/colour.rs): FNV-1a into a 12-colour palette."""
    palette = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96]
    h = 0x811C9DC5
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return palette[h % len(palette)]


def pyte_fg(code):
    return FG_ANSI.get(code) or FG_AIXTERM[code]


class Term:
    """One `taojie chat` on a pty, its output kept raw and fed to an emulated screen."""

    def __init__(self, taojie, addr, name):
        self.name = name
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = dict(os.environ, TERM="xterm")
        self.proc = subprocess.Popen(
            [taojie, "chat", addr, "--name", name],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
        )
        self.raw = bytearray()
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)

    def resize(self, cols):
        """Makes the pty (and the emulated screen) `cols` wide."""
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, cols, 0, 0))
        self.screen.resize(ROWS, cols)

    def pump(self, timeout):
        """Reads what the client wrote so far (waiting up to `timeout` for the first bytes)."""
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.raw += data
            self.stream.feed(data)
            timeout = 0

    def type(self, keys):
        os.write(self.master, keys.encode("utf-8"))

    def rows(self):
        return [r.rstrip() for r in self.screen.display]

    def cursor_row(self):
        return self.rows()[self.screen.cursor.y]

    def dump(self):
        c = self.screen.cursor
        shown = "\n".join(f"{i:2}|{r}" for i, r in enumerate(self.rows()))
        return f"--- {self.name}'s screen (cursor row {c.y}, column {c.x}) ---\n{shown}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def wait_until(terms, what, pred):
    """Pumps every terminal until `pred()` holds; fails after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        for t in terms:
            t.pump(0.02)
        if pred():
            return
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}" + "".join("\n" + t.dump() for t in terms))


class Peer:
    """A plain line client on a socket, like nc."""

    def __init__(self, addr, name):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.buf = b""
        self.seen = []
        self.send(f"/nick {name}")
        self.wait_line(f"own name {name}", lambda l: l.endswith(f"is now known as {name}"))

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def wait_line(self, what, pred):
        deadline = time.monotonic() + WAIT
        for line in self.seen:
            if pred(line):
                return line
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                self.seen.append(line)
                if pred(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"bob never got {what}; got {self.seen}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise Failure(f"broker closed bob's connection before {what}; got {self.seen}")
            self.buf += data


def check(cond, msg, *terms):
    if not cond:
        raise Failure(msg + "".join("\n" + t.dump() for t in terms))


def row_of(term, text):
    rows = term.rows()
    hits = [i for i, r in enumerate(rows) if r == text]
    check(len(hits) == 1, f"{text!r} is not exactly one whole row", term)
    return hits[0]


def colour_of(term, row, col, length):
    """The foreground colours of `length` cells from (`row`, `col`)."""
    line = term.screen.buffer[row]
    return {line[x].fg for x in range(col, col + length)}


def scenario(taojie, addr, terms):
    bob = Peer(addr, "bob")
    ann = Term(taojie, addr, "ann")
    terms.append(ann)
    # A client with --name comes in under it: no default name first, no rename.
    arrival = bob.wait_line("ann's arrival", lambda l: "ann" in l)
    check(arrival == "*** ann joined lobby", f"ann arrived as {arrival!r}")
    cat = Term(taojie, addr, "cat")
    terms.append(cat)
    bob.wait_line("cat's arrival", lambda l: l == "*** cat joined lobby")
    wait_until(terms, "the prompts", lambda: all(t.cursor_row() == PROMPT.rstrip() for t in terms))

    # ann types half a line; the client must have drawn it before anything comes in.
    typed = "hello wor"
    ann.type(typed)
    wait_until(terms, "ann's typing echoed", lambda: ann.cursor_row() == PROMPT + typed)

    incoming = ["line one", "line two, 你好", "* bob waves"]
    bob.send(incoming[0])
    bob.send(incoming[1])
    bob.send("/me waves")
    shown = ["<bob> " + incoming[0], "<bob> " + incoming[1], incoming[2]]

    def above_input(t):
        return t.rows()[max(0, t.screen.cursor.y - 3):t.screen.cursor.y]

    wait_until(terms, "bob's lines on both terminals, ann's input redrawn under them",
               lambda: all(above_input(t) == shown for t in terms)
               and ann.cursor_row() == PROMPT + typed)

    # The incoming lines are whole rows, in order, right above the input line, which still
    # holds exactly what ann had typed, with the cursor at its end, and nowhere else.
    cy = ann.screen.cursor.y
    rows = ann.rows()
    check(rows[cy - 3:cy] == shown, "bob's lines are not the three rows above ann's input", ann)
    check(rows[cy] == PROMPT + typed, "ann's input line was not redrawn whole", ann)
    check(ann.screen.cursor.x == len(PROMPT + typed), "the cursor is not at the input's end", ann)
    check(sum("hello" in r for r in rows) == 1, "ann's unfinished line shows more than once", ann)
    check(all(r == "" for r in rows[cy + 1:]), "text below the input line", ann)
    check(above_input(cat) == shown, "bob's lines are not the three rows above cat's input", cat)

    # Names are coloured, with the colour the name hashes to, the same on both terminals; the
    # text after a name is not.
    want = fnv_colour("bob")
    for t in terms:
        sgr = f"\x1b[{want}mbob\x1b[0m".encode()
        check(sgr in t.raw, f"no {sgr!r} (bob's colour) in {t.name}'s output", t)
        r = row_of(t, shown[0])
        check(colour_of(t, r, 1, 3) == {pyte_fg(want)}, f"bob's name not in colour {want}", t)
        check(colour_of(t, r, 6, len(incoming[0])) == {"default"}, "bob's text is coloured", t)

    # ann finishes the line; bob gets it intact, and both terminals show it once, as the room
    # sees it, in ann's colour (the typed line with its prompt is gone).
    ann.type("ld\r")
    bob.wait_line("ann's finished line", lambda l: l == "<ann> hello world")
    mine = "<ann> hello world"
    wait_until(terms, "ann's line on both terminals", lambda: all(mine in t.rows() for t in terms))
    wait_until(terms, "ann's empty prompt", lambda: ann.cursor_row() == PROMPT.rstrip())
    check(not any("> hello world" in r and not r.startswith("<ann>") for r in ann.rows()),
          "the typed line stayed on screen next to the sent one", ann)
    for t in terms:
        check(colour_of(t, row_of(t, mine), 1, 3) == {pyte_fg(fnv_colour("ann"))},
              "ann's name not in its colour", t)
        check(f"\x1b[{fnv_colour('ann')}mann\x1b[0m".encode() in t.raw, "no SGR for ann", t)

    # The editor: Left and Right move the cursor, Home and End, Ctrl-W takes a word back,
    # Up brings back the last line sent, wide characters are edited whole.
    ann.type("helo")
    ann.type("\x1b[D")          # Left
    ann.type("l")
    ann.type("\x1b[H")          # Home
    ann.type("「")
    ann.type("\x1b[F")          # End
    ann.type(" 你好 wrld")
    ann.type("\x17")            # Ctrl-W: "wrld" goes
    ann.type("world」")
    edited = "「hello 你好 world」"
    wait_until(terms, "ann's edited line", lambda: ann.cursor_row() == PROMPT + edited)
    ann.type("\r")
    bob.wait_line("ann's edited line", lambda l: l == "<ann> " + edited)
    wait_until(terms, "ann's empty prompt", lambda: ann.cursor_row() == PROMPT.rstrip())
    ann.type("\x1b[A")          # Up: the last line sent
    wait_until(terms, "the last line back from the history",
               lambda: ann.cursor_row() == PROMPT + edited)
    ann.type("\x15")            # Ctrl-U clears it
    wait_until(terms, "ann's line cleared", lambda: ann.cursor_row() == PROMPT.rstrip())

    # A pasted block of two lines (bracketed paste) goes out as two lines.
    ann.type("\x1b[200~first pasted\rsecond pasted\x1b[201~\r")
    bob.wait_line("the first pasted line", lambda l: l == "<ann> first pasted")
    bob.wait_line("the second pasted line", lambda l: l == "<ann> second pasted")

    # A line wider than the terminal wraps over rows; a line coming in goes above all of them,
    # and the long line is drawn again whole under it; it is sent whole.
    long = "start:" + "0123456789" * 6 + "你好" * 10
    ann.type(long)
    wait_until(terms, "ann's long line", lambda: ann.cursor_row().endswith("你好" * 4))
    bob.send("while you type")
    wait_until(terms, "bob's line above ann's long input",
               lambda: ann.rows()[ann.screen.cursor.y - 2] == "<bob> while you type"
               and ann.cursor_row().endswith("你好"))
    rows = ann.rows()
    cy = ann.screen.cursor.y
    check(rows[cy - 1].startswith(PROMPT + "start:"), "the long input is not whole under it", ann)
    check(sum("start:" in r for r in rows) == 1, "part of the long input was left behind", ann)
    ann.type("\r")
    bob.wait_line("ann's long line", lambda l: l == "<ann> " + long)
    wait_until(terms, "ann's empty prompt", lambda: ann.cursor_row() == PROMPT.rstrip())

    # ann's own /me is shown to her, as the room sees it.
    ann.type("/me waves back\r")
    bob.wait_line("ann's action", lambda l: l == "* ann waves back")
    wait_until(terms, "ann's own action on her screen",
               lambda: "* ann waves back" in ann.rows())

    # Ctrl-D on the empty line leaves, and so does SIGTERM (with 128 + 15, as a shell reports a
    # killed program); either way the terminal gets its line mode and echo back.
    ann.type("\x04")
    cat.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WAIT
    for t, how, code in ((ann, "Ctrl-D", 0), (cat, "SIGTERM", 128 + signal.SIGTERM)):
        while t.proc.poll() is None:
            t.pump(0.02)
            if time.monotonic() > deadline:
                raise Failure(f"{t.name} did not exit on {how}")
        check(t.proc.returncode == code, f"{t.name} exited with {t.proc.returncode} on {how}", t)
        lflag = termios.tcgetattr(t.slave)[3]
        check(lflag & termios.ICANON and lflag & termios.ECHO,
              f"{t.name} left the terminal without line mode or echo after {how}", t)
    for name in ("ann", "cat"):
        bob.wait_line(f"{name}'s leaving", lambda l: l == f"*** {name} left lobby (disconnected)")

    # A name that is taken: the client says so and shows its lines under the name the broker
    # gave instead, and so after a refused /nick; an accepted one is followed.
    eve = Term(taojie, addr, "bob")
    terms.append(eve)
    given = bob.wait_line("the second bob's arrival",
                          lambda l: l.startswith("*** user") and l.endswith(" joined lobby"))
    other = given[len("*** "):-len(" joined lobby")]
    check(other.startswith("user"), f"the second bob arrived as {given!r}")
    wait_until([eve], "the refusal", lambda: any("the name bob is taken" in r for r in eve.rows()))
    wait_until([eve], "the prompt", lambda: eve.cursor_row() == PROMPT.rstrip())
    eve.type("hi\r")
    bob.wait_line("the second bob's line", lambda l: l == f"<{other}> hi")
    wait_until([eve], "the line under the given name", lambda: f"<{other}> hi" in eve.rows())
    check("<bob> hi" not in eve.rows(), "the line shown under the refused name", eve)
    eve.type("/nick bob\r")
    wait_until([eve], "the second refusal",
               lambda: sum("the name bob is taken" in r for r in eve.rows()) == 2)
    eve.type("still me\r")
    bob.wait_line("the line after the refused /nick", lambda l: l == f"<{other}> still me")
    wait_until([eve], "still under the given name", lambda: f"<{other}> still me" in eve.rows())
    eve.type("/nick eve\r")
    bob.wait_line("eve's rename", lambda l: l == f"*** {other} is now known as eve")
    wait_until([eve], "the rename on screen",
               lambda: f"*** {other} is now known as eve" in eve.rows())
    eve.type("now eve\r")
    bob.wait_line("eve's line", lambda l: l == "<eve> now eve")
    wait_until([eve], "eve's line under her new name", lambda: "<eve> now eve" in eve.rows())

    # /quit: the broker says bye and closes; the client shows the bye, says nothing more (it
    # was the user who left) and exits 0.
    eve.type("/quit\r")
    deadline = time.monotonic() + WAIT
    while eve.proc.poll() is None:
        eve.pump(0.02)
        if time.monotonic() > deadline:
            raise Failure("eve did not exit after /quit")
    check(eve.proc.returncode == 0, f"eve exited with {eve.proc.returncode} after /quit", eve)
    # What the client wrote last (the prompt cleared) may reach the pty's master a moment
    # after it exited on a busy machine: the screen is read until it settles, WAIT at most.
    wait_until([eve], "the bye as the last line on eve's screen (the prompt cleared)",
               lambda: [r for r in eve.rows() if r][-1:] == ["*** bye"])
    rows = [r for r in eve.rows() if r]
    check(not any("disconnected" in r for r in rows), "a word of disconnection after /quit", eve)
    bob.wait_line("eve's leaving", lambda l: l == "*** eve left lobby (quit)")


def main():
    taojie, addr = sys.argv[1], sys.argv[2]
    terms = []
    try:
        scenario(taojie, addr, terms)
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        for t in terms:
            t.close()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
