// The broker's lines and how the log shows them. Text from the network only ever goes into
// the page as text (textContent), never as markup.

export const LOBBY = 'lobby';

// The terminal client's palette (src/chat/colour.rs); style.css gives each code a colour.
const PALETTE = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
const KEEP_ROWS = 1000;
const HISTORY = 20;

// The broker's own lines, as src/chat/room writes them.
export const RENAMED = /^\*\*\* (\S+) is now known as (\S+)$/;
export const JOINED = /^\*\*\* (\S+) joined (\S+)$/;
const NOTICE = /^\*\*\* (welcome, |\S+ (joined|left|is now known as|dropped) |in \S+ \(\d+\): )/;
const WHO = /^\*\*\* in (\S+) \((\d+)\): (.*)$/;
const TOO_LONG = /^\*\*\* line too long/;
const CHAT = /^<([^>\s]+)> ([\s\S]*)$/;
const ACTION = /^\* (\S+) ([\s\S]*)$/;
// A line of a room's history comes with the time it was said, in UTC (src/chat/room/history.rs).
const STAMPED = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\] ([\s\S]*)$/;

// A broker's line without its time stamp, and that time (null for a line said just now).
export function unstamp(raw) {
  const m = raw.match(STAMPED);
  return m ? { at: new Date(m[1]), line: m[2] } : { at: null, line: raw };
}

// The terminal client's colour for a name: FNV-1a of its UTF-8 bytes.
export function colourOf(name) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return PALETTE[h % PALETTE.length];
}

// A line that answers a command of ours (an error, `bye`), not a notice about someone.
export function isReply(raw) {
  return raw.startsWith('*** ') && !NOTICE.test(raw);
}

// A line someone said (a room's history holds only these).
export function isChat(raw) {
  const line = unstamp(raw).line;
  return CHAT.test(line) || ACTION.test(line);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function nick(name) {
  const n = el('span', 'nick c' + colourOf(name), name);
  n.dataset.colour = String(colourOf(name));
  return n;
}

function clock(d) {
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

// The time a row shows: when its line was said (now, unless the broker says otherwise), in
// the page's time zone, with the full date and time on hover.
function when(at) {
  const d = at || new Date();
  const t = el('time', 'at', clock(d));
  t.dateTime = d.toISOString();
  t.title = d.toLocaleString();
  return t;
}

// The log of one page.
export class Log {
  constructor(element) {
    this.element = element;
    // Our name, for mentions.
    this.me = '';
    // The last chat lines shown in the current room, as the broker sends them.
    this.recent = [];
    this.lastOwn = null;
  }

  // Adds a row, keeping the view at the bottom if it was there.
  add(row) {
    const log = this.element;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(row);
    while (log.childElementCount > KEEP_ROWS) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return row;
  }

  // Shows one line from the broker (or our own, echoed); a line of history at its time.
  show(stamped, own) {
    const { at, line: raw } = unstamp(stamped);
    const row = el('div', 'line');
    row.append(when(at));
    let m;
    if ((m = raw.match(CHAT))) {
      row.classList.add('chat');
      row.append(nick(m[1]), el('span', 'text', m[2]));
      if (!own && this.me && m[2].toLowerCase().includes(this.me.toLowerCase())) {
        row.classList.add('mention');
      }
      this.remember(raw);
    } else if ((m = raw.match(ACTION))) {
      row.classList.add('action');
      row.append(el('span', 'star', '*'), nick(m[1]), el('span', 'text', ' ' + m[2]));
      this.remember(raw);
    } else if ((m = raw.match(WHO))) {
      row.classList.add('notice', 'who');
      row.append(el('span', 'text', `in #${m[1]} (${m[2]}): `));
      m[3].split(', ').forEach((name, i) => {
        if (i) row.append(', ');
        row.append(nick(name));
      });
    } else if (raw.startsWith('*** ')) {
      row.classList.add('notice');
      if (isReply(raw)) row.classList.add('reply');
      row.append(el('span', 'text', raw.slice(4)));
      if (TOO_LONG.test(raw) && this.lastOwn) this.lastOwn.classList.add('unsent');
    } else {
      row.classList.add('plain');
      row.append(el('span', 'text', raw));
    }
    if (own) {
      row.classList.add('own');
      this.lastOwn = row;
    }
    return this.add(row);
  }

  remember(raw) {
    this.recent.push(raw);
    if (this.recent.length > HISTORY) this.recent.shift();
  }

  // Shows a room's history, less what the end of the log already shows (after a
  // reconnection the broker sends the room's last lines again).
  history(lines, sameRoom) {
    let skip = 0;
    if (sameRoom) {
      const recent = this.recent;
      const bare = lines.map((l) => unstamp(l).line);
      for (let k = Math.min(recent.length, bare.length); k > 0; k--) {
        if (recent.slice(recent.length - k).every((l, i) => l === bare[i])) {
          skip = k;
          break;
        }
      }
    } else {
      this.recent = [];
    }
    lines.slice(skip).forEach((l) => this.show(l));
  }

  // A line of the page's own (connection state, hints), not from the broker.
  system(text, cls) {
    const row = el('div', 'line system' + (cls ? ' ' + cls : ''));
    row.append(when(null), el('span', 'text', text));
    return this.add(row);
  }

  divider(room) {
    const row = el('div', 'divider');
    row.append(el('span', '', '#' + room));
    this.add(row);
  }
}
