"""Drives `taojie msg chat` on a pseudo-terminal and checks what a user would see.

Usage: msg_chat_pty.py TAOJIE SCENARIO NET

NET is a /24 prefix on loopback such as `127.77.20`; the test that runs this script owns it.
A `taojie msg listen --json` member (bob) may listen on NET.1 (the Rust test starts it and
checks what it hears); ann, the chat under test, is NET.2 and broadcasts to NET.1 only, so
nothing leaves loopback. Other members (cat, forged senders) take NET.3 and up.

SCENARIO is one of:
  send     ann starts with `--to bob` and is put in the terminal's raw mode; typed lines
           (edited with Backspace and the Left key, brought back with Up, a `//` line sent as
           `/...`) are
           shown as sent and then, right under them, `*** acknowledged by bob at HH:MM:SS`;
           Ctrl-D exits 0
  incoming cat (`taojie msg send`) messages ann while a line is half typed: both lines of
           the message and the pick of cat as whom to answer go above it (cat only passes
           through: neither its entry nor its leaving is announced), and the unfinished line
           is drawn again, whole, under them; finished and sent to cat, who has left, it is
           reported not delivered
  hostile  names and texts with escape sequences, in forged datagrams, are shown as `^[`
           text and never reach the terminal raw (no clear, no title, no attributes); `/who`
           lists bob and them; unknown commands and names are answered; `/to bob` and a line
           acknowledged afterwards
  quit     `/quit` exits 0, gives the terminal exactly its modes back and clears the input
           line

Everything ann writes to its 80x24 pty goes into the pyte terminal emulator, and the checks
are on the emulated screen. Prints `ok` and exits 0, or prints what went wrong and the screen,
and exits 1. Every wait is bounded; the processes started here are killed by the end.
"""

import fcntl
import os
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time

import pyte

ROWS, COLS = 24, 80
WAIT = 15.0
PROMPT = "> "
ACK = re.compile(r"^\*\*\* acknowledged by bob at \d\d:\d\d:\d\d$")


class Failure(Exception):
    pass


def fnv_colour(name):
    """The client's colour for a name (src/chat/colour.rs): FNV-1a into a 12-colour palette."""
    palette = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96]
    h = 0x811C9DC5
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return palette[h % len(palette)]


class Term:
    """`taojie msg chat ARGS` on a pty, its output kept raw and fed to an emulated screen."""

    def __init__(self, taojie, args, config):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        # The modes the terminal had before the chat, to compare with after it.
        self.modes = termios.tcgetattr(self.slave)
        # An empty config directory: no contacts file of this machine's user answers /to.
        env = dict(os.environ, TERM="xterm", XDG_CONFIG_HOME=config)
        env.pop("RUST_LOG", None)
        self.proc = subprocess.Popen(
            [taojie, "msg", "chat", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
        )
        self.raw = bytearray()
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)

    def pump(self, timeout):
        """Reads what the chat wrote so far (waiting up to `timeout` for the first bytes)."""
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

    def above(self, n):
        """The `n` rows right above the cursor's row."""
        y = self.screen.cursor.y
        return self.rows()[max(0, y - n):y]

    def just_above(self):
        """The row right above the cursor's row."""
        rows = self.above(1)
        return rows[0] if rows else ""

    def dump(self):
        c = self.screen.cursor
        shown = "\n".join(f"{i:2}|{r}" for i, r in enumerate(self.rows()))
        return f"--- ann's screen (cursor row {c.y}, column {c.x}) ---\n{shown}"

    def wait(self, what, pred):
        """Pumps the terminal until `pred()` holds; fails after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            self.pump(0.02)
            if pred():
                return
            if time.monotonic() > deadline:
                raise Failure(f"timed out waiting for {what}\n{self.dump()}")

    def wait_exit(self, what):
        deadline = time.monotonic() + WAIT
        while self.proc.poll() is None:
            self.pump(0.02)
            if time.monotonic() > deadline:
                raise Failure(f"ann did not exit after {what}\n{self.dump()}")
        self.pump(0.05)
        return self.proc.returncode

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


def check(cond, msg, term):
    if not cond:
        raise Failure(f"{msg}\n{term.dump()}")


def chat(taojie, net, config, *extra):
    return Term(
        taojie,
        ["--name", "ann", "--bind", f"{net}.2", "--broadcast", f"{net}.1", *extra],
        config,
    )


def talking_to(name, addr):
    return f"*** talking to {name} ({addr}); /to NAME, /who, /quit"


def acknowledged(ann, line):
    """Waits, after Enter, for `line` on screen as sent and right under it bob's
    acknowledgement, above an empty input line (drawn again after each line shown)."""
    mine = "<ann> " + line

    def shown():
        above = ann.above(2)
        return (len(above) == 2 and above[0] == mine and bool(ACK.match(above[1]))
                and ann.cursor_row() == PROMPT.rstrip())

    ann.wait(f"{mine!r} and right under it bob's acknowledgement", shown)
    check(ann.screen.cursor.x == len(PROMPT), "the cursor is not after the prompt", ann)


def scenario_send(taojie, net, config, ann_box):
    ann_box.append(chat(taojie, net, config, "--to", "bob"))
    ann = ann_box[-1]
    hint = talking_to("bob", f"{net}.1:2425")
    entry = f"*** bob ({net}.1:2425) is on the LAN"
    # Bob's answer may come before the chat looks for him, or after: either way he is
    # picked, once, and shown as on the LAN.
    ann.wait("bob's answer picking him", lambda: hint in ann.rows() and entry in ann.rows())
    check(ann.rows().count(hint) == 1, "bob was picked more than once", ann)
    ann.wait("the prompt", lambda: ann.cursor_row() == PROMPT.rstrip())
    # The chat put the terminal in its own mode: no echo, no line editing by the terminal.
    lflag = termios.tcgetattr(ann.slave)[3]
    check(not lflag & termios.ICANON and not lflag & termios.ECHO,
          "the chat left the terminal in line mode or with echo", ann)

    typed = "hello bob, 你好"
    ann.type(typed)
    ann.wait("the typed line echoed", lambda: ann.cursor_row() == PROMPT + typed)
    check(ann.screen.cursor.x == len(PROMPT) + len("hello bob, ") + 4,
          "the cursor is not after the typed text (two wide characters)", ann)
    # Editing keys work on the line editor's side: a backspace, and the Left key (Enter sends
    # the whole line, wherever the cursor is).
    ann.type("x\x7f\x1b[D\r")
    acknowledged(ann, typed)
    # Up brings the line back from the history; Ctrl-U clears it again.
    ann.type("\x1b[A")
    ann.wait("the line back from the history", lambda: ann.cursor_row() == PROMPT + typed)
    ann.type("\x15")
    ann.wait("the line cleared", lambda: ann.cursor_row() == PROMPT.rstrip())
    check(sum(typed in r for r in ann.rows()) == 1, "the sent line shows more than once", ann)
    check(f"<\x1b[{fnv_colour('ann')}mann\x1b[0m> ".encode() in ann.raw,
          "ann's own name is not in its colour", ann)

    # `//` starts a line that begins with `/`.
    ann.type("//etc is a text")
    ann.wait("the slash line typed", lambda: ann.cursor_row() == PROMPT + "//etc is a text")
    ann.type("\r")
    acknowledged(ann, "/etc is a text")

    ann.type("\x04")
    code = ann.wait_exit("Ctrl-D")
    check(code == 0, f"Ctrl-D ended the chat with {code}", ann)


def scenario_incoming(taojie, net, config, ann_box):
    ann_box.append(chat(taojie, net, config))
    ann = ann_box[-1]
    hint = "*** /to NAME picks whom to talk to; /who lists the LAN; /quit"
    ann.wait("the hint on how to pick someone, and the prompt",
             lambda: hint in ann.rows() and ann.cursor_row() == PROMPT.rstrip())

    typed = "half a li"
    ann.type(typed)
    ann.wait("the typed half line", lambda: ann.cursor_row() == PROMPT + typed)

    cat = subprocess.Popen(
        [taojie, "msg", "send", "--name", "cat", "--bind", f"{net}.3",
         "--broadcast", f"{net}.9", f"{net}.2", "hi ann\nsecond line"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, XDG_CONFIG_HOME=config),
    )
    deadline = time.monotonic() + WAIT
    while cat.poll() is None:
        ann.pump(0.02)
        if time.monotonic() > deadline:
            cat.kill()
            raise Failure(f"msg send did not finish\n{ann.dump()}")
    err = cat.stderr.read().decode("utf-8", "replace")
    check(cat.returncode == 0 and f"acknowledged by ann ({net}.2:2425)" in err,
          f"msg send to ann: exit {cat.returncode}, {err!r}", ann)

    # cat sends two lines and is picked as whom to answer; passing through, it is announced
    # neither arriving nor leaving.
    shown = [
        "<cat> hi ann",
        "<cat> second line",
        talking_to("cat", f"{net}.3:2425"),
    ]
    ann.wait("cat's message above the half-typed line",
             lambda: ann.above(len(shown)) == shown and ann.cursor_row() == PROMPT + typed)
    cy = ann.screen.cursor.y
    rows = ann.rows()
    check(rows[cy] == PROMPT + typed, "the half-typed line was not redrawn whole", ann)
    check(ann.screen.cursor.x == len(PROMPT + typed), "the cursor is not at its end", ann)
    check(sum(typed in r for r in rows) == 1, "the half-typed line shows more than once", ann)
    check(all(r == "" for r in rows[cy + 1:]), "text below the input line", ann)
    check(f"<\x1b[{fnv_colour('cat')}mcat\x1b[0m> hi ann".encode() in ann.raw,
          "cat's name is not in its colour", ann)

    # The line, finished, goes to cat, who has left: the chat says it was not delivered.
    ann.type("ne")
    ann.wait("the finished line", lambda: ann.cursor_row() == PROMPT + "half a line")
    ann.type("\r")
    notice = f"*** not delivered to cat: {net}.3:2425 "

    def sent_and_notice():
        # The notice may be wider than the terminal and wrap onto the next row.
        y = ann.screen.cursor.y
        rows = ann.rows()
        starts = [i for i in range(1, y) if rows[i].startswith(notice)]
        if starts and rows[starts[-1] - 1] == "<ann> half a line":
            return starts[-1]
        return None

    ann.wait("word that cat did not acknowledge", lambda: sent_and_notice() is not None)
    y = ann.screen.cursor.y
    whole = "".join(ann.screen.display[sent_and_notice():y]).rstrip()
    check(whole.startswith(notice) and "did not acknowledge" in whole,
          f"the notice does not say why: {whole!r}", ann)


def scenario_hostile(taojie, net, config, ann_box):
    ann_box.append(chat(taojie, net, config))
    ann = ann_box[-1]
    bob_entry = f"*** bob ({net}.1:2425) is on the LAN"
    ann.wait("bob's entry", lambda: bob_entry in ann.rows())
    ann.wait("the prompt", lambda: ann.cursor_row() == PROMPT.rstrip())
    first = ann.rows()[0]
    check(first == f"msg udp {net}.2:2425", "the first row is not the chat's address", ann)

    target = (f"{net}.2", 2425)
    # An entry whose log-in name, nickname and group are escape sequences...
    red = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    red.bind((f"{net}.4", 2425))
    red.sendto(b"1:6:u\x1b[H:h:1:\x1b[1;31mred\x1b]2;title\x07\x00grp\x1b[5m\x00", target)
    red_name = "^[[1;31mred^[]2;title^G"
    ann.wait("the hostile entry", lambda: f"*** {red_name} ({net}.4:2425) is on the LAN"
             in ann.rows())
    # ...and a message from a member whose name clears the screen, and whose text sets the
    # window title.
    evil = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    evil.bind((f"{net}.5", 2425))
    evil.sendto(b"1:5:e\x1b[2J:h:32:\x1b]0;x\x07boo", target)
    msg = "<e^[[2J> ^[]0;x^Gboo"
    evil_hint = talking_to("e^[[2J", f"{net}.5:2425")
    ann.wait("the hostile message", lambda: ann.above(2) == [msg, evil_hint])

    ann.type("/who\r")
    # Three members, in some order, each name as `^[` text.
    want = {f"***   bob ({net}.1:2425)", f"***   {red_name} ({net}.4:2425)",
            f"***   e^[[2J ({net}.5:2425)"}
    ann.wait("the /who list", lambda: ann.above(4)[:1] == ["*** 3 on the LAN"]
             and set(ann.above(4)[1:]) == want and ann.cursor_row() == PROMPT.rstrip())

    ann.type("/nope\r")
    ann.wait("word of the unknown command",
             lambda: ann.above(1) == ["*** unknown command /nope (/to NAME, /who, /quit)"])
    ann.type("/to nobody\r")
    ann.wait("word that nobody is called so",
             lambda: ann.above(1) == ['*** nobody named "nobody" on the LAN or in contacts'])
    ann.type("/to bob\r")
    ann.wait("bob picked", lambda: ann.above(1) == [talking_to("bob", f"{net}.1:2425")])
    ann.type("still here\r")
    acknowledged(ann, "still here")

    # Nothing raw reached the terminal: the screen was never cleared or homed, no title was
    # set, and none of the forged sequences is in what the chat wrote.
    check(ann.rows()[0] == first, "the screen was cleared or written over from the top", ann)
    check(ann.screen.title == "" and ann.screen.icon_name == "",
          f"the window title was set: {ann.screen.title!r} {ann.screen.icon_name!r}", ann)
    for seq in (b"\x1b]", b"\x07", b"\x1b[2J", b"\x1b[H", b"\x1b[1;31m", b"\x1b[5m"):
        check(seq not in ann.raw, f"{seq!r} reached the terminal", ann)
    check(all(not c.blink and not c.bold for row in ann.screen.buffer.values()
              for c in row.values()), "a forged attribute is on screen", ann)
    red.close()
    evil.close()


def scenario_quit(taojie, net, config, ann_box):
    ann_box.append(chat(taojie, net, config, "--to", "bob"))
    ann = ann_box[-1]
    ann.wait("bob picked", lambda: talking_to("bob", f"{net}.1:2425") in ann.rows())
    ann.wait("the prompt", lambda: ann.cursor_row() == PROMPT.rstrip())
    lflag = termios.tcgetattr(ann.slave)[3]
    check(not lflag & termios.ICANON and not lflag & termios.ECHO,
          "the chat left the terminal in line mode or with echo", ann)
    ann.type("/qu")
    ann.wait("/quit typed", lambda: ann.cursor_row() == PROMPT + "/qu")
    ann.type("it\r")
    code = ann.wait_exit("/quit")
    check(code == 0, f"/quit ended the chat with {code}", ann)
    check(termios.tcgetattr(ann.slave) == ann.modes,
          "the terminal's modes after /quit are not those it had before", ann)
    check(ann.cursor_row() == "" and ann.screen.cursor.x == 0,
          "the input line was left on screen after /quit", ann)


SCENARIOS = {
    "send": scenario_send,
    "incoming": scenario_incoming,
    "hostile": scenario_hostile,
    "quit": scenario_quit,
}


def main():
    taojie, name, net = sys.argv[1], sys.argv[2], sys.argv[3]
    ann_box = []
    try:
        with tempfile.TemporaryDirectory() as config:
            SCENARIOS[name](taojie, net, config, ann_box)
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        for t in ann_box:
            t.close()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
