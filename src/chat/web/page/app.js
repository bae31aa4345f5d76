// The taojie chat page: the connection, joining (and rejoining) a room under a name, and what
// the user types. The WebSocket at /ws speaks the broker's line protocol: one text message per
// line each way. lines.js shows what comes back.
import { JOINED, LOBBY, Log, RENAMED, colourOf, isChat, isReply } from './lines.js';

const NAME_RE = /^[\p{Alphabetic}\p{N}_.-]{1,32}$/u;
const RETRY_MIN = 500;
const RETRY_MAX = 15000;
const SETUP_LIMIT = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  log: $('log'), state: $('state'), stateText: $('state-text'), retry: $('retry'),
  roomForm: $('room-form'), roomInput: $('room-input'), recent: $('recent-rooms'),
  who: $('who'), invite: $('invite'), composer: $('composer'), text: $('text'), me: $('me'),
  welcome: $('welcome'), joinForm: $('join-form'), nameInput: $('name-input'),
  joinRoom: $('join-room'), joinError: $('join-error'),
};

const store = (() => {
  try {
    const s = window.localStorage;
    s.getItem('x');
    return s;
  } catch (e) {
    return null;
  }
})();
const load = (k) => (store ? store.getItem('taojie.' + k) || '' : '');
const save = (k, v) => { if (store) store.setItem('taojie.' + k, v); };

const params = new URLSearchParams(location.search);
const token = params.get('token') || load('token');
if (params.has('token')) save('token', token);

// What this page wants to be (restored after every reconnection) and what the broker says
// it is.
const want = {
  name: params.get('name') || load('name'),
  room: params.get('room') || load('room') || LOBBY,
};
let myName = '';
let room = '';

let ws = null;
let attempt = 0;
let retryTimer = 0;
let countdown = 0;
let quitting = false;
let everOpened = false;
let hinted = false;
// While joining (after connecting, or after /join): lines held until the broker confirms,
// so the room's history comes under its own heading and a reconnection repeats nothing.
let setup = null;
const log = new Log(ui.log);
const show = (raw, own) => log.show(raw, own);
const system = (text, cls) => log.system(text, cls);

function setState(state, text) {
  ui.state.dataset.state = state;
  ui.stateText.textContent = text || state;
  ui.retry.hidden = state !== 'offline';
  document.title = (state === 'online' ? '' : '(' + state + ') ') + '#' + (room || want.room) + ' — taojie chat';
}

function updateIdentity() {
  ui.me.textContent = myName || want.name;
  ui.me.className = 'me nick c' + colourOf(myName || want.name);
  if (document.activeElement !== ui.roomInput) ui.roomInput.value = room || want.room;
  ui.text.placeholder = 'Message #' + (room || want.room) + ' — /me, /who, /join ROOM, /nick NAME';
  const q = new URLSearchParams();
  q.set('name', want.name);
  q.set('room', want.room);
  history.replaceState(null, '', '?' + q.toString());
  save('name', want.name);
  save('room', want.room);
}

function rememberRoom(name) {
  const rooms = load('rooms').split(' ').filter((r) => r && r !== name);
  rooms.unshift(name);
  save('rooms', rooms.slice(0, 8).join(' '));
  fillRecent();
}

function fillRecent() {
  ui.recent.replaceChildren(...load('rooms').split(' ').filter(Boolean).map((r) => {
    const o = document.createElement('option');
    o.value = r;
    return o;
  }));
}

// ---- the connection ----

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdown);
  if (ws) return;
  quitting = false;
  setState('connecting', 'connecting…');
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  if (token) url.searchParams.set('token', token);
  let opened = false;
  const sock = new WebSocket(url.href);
  ws = sock;
  sock.addEventListener('open', () => {
    opened = true;
    attempt = 0;
    hinted = false;
    setState('joining', 'joining…');
    myName = '';
    begin('nick', want.room, !everOpened ? 'first' : 'again');
    sock.send('/nick ' + want.name);
    if (want.room !== LOBBY) sock.send('/join ' + want.room);
    everOpened = true;
  });
  sock.addEventListener('message', (ev) => {
    if (sock === ws) receive(String(ev.data));
  });
  sock.addEventListener('close', (ev) => {
    if (sock !== ws) return;
    ws = null;
    finish(true);
    if (quitting) {
      setState('left', 'left the chat');
      system('You left the chat. Press Enter in the message box to come back.');
      return;
    }
    if (opened) system('Disconnected' + (ev.reason ? ' (' + ev.reason + ')' : '') + '.', 'warn');
    retryLater(opened);
  });
}

function retryLater(wasOpen) {
  const delay = Math.min(RETRY_MAX, RETRY_MIN * 2 ** attempt) * (0.75 + Math.random() / 2);
  attempt += 1;
  // A page that never got in (or stays out long after a restart) may lack the token.
  if (!wasOpen && attempt >= (everOpened ? 6 : 2) && !hinted) {
    hinted = true;
    system(token
      ? 'Cannot connect. If the broker was started with a new key, open the new login link it printed.'
      : 'Cannot connect. If this chat was started with --key, open the login link the broker printed (…/?token=…).', 'warn');
  }
  const until = Date.now() + delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setState('offline', 'offline · retrying in ' + s + ' s');
  };
  tick();
  countdown = setInterval(tick, 1000);
  retryTimer = setTimeout(connect, delay);
}

function sendLine(line) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(line);
  return true;
}

// ---- joining: hold lines until the broker confirms the name and the room ----

function begin(stage, target, why) {
  if (setup) clearTimeout(setup.timer);
  setup = { stage, target, why, held: [] };
  setup.timer = setTimeout(() => finish(false), SETUP_LIMIT);
}

function receive(raw) {
  if (!setup) {
    live(raw);
    return;
  }
  const s = setup;
  let m;
  if (raw.startsWith('*** welcome, you are ')) {
    myName = raw.slice(21).split(' ')[0];
    return;
  }
  if (s.stage === 'nick') {
    if ((m = raw.match(RENAMED)) && m[1] === myName) {
      myName = m[2];
      next();
    } else if (isReply(raw)) {
      show(raw);
      next();
    } else {
      s.held.push(raw);
    }
    return;
  }
  if ((m = raw.match(JOINED)) && m[1] === myName && m[2] === s.target) {
    room = s.target;
    finish(false);
  } else if (isReply(raw)) {
    // The room was refused: a switch leaves things as they were; a (re)connection stays
    // in the lobby.
    show(raw);
    if (s.why === 'switch') {
      setup = null;
      clearTimeout(s.timer);
      s.held.forEach(live);
      return;
    }
    room = LOBBY;
    finish(false);
  } else {
    s.held.push(raw);
  }
}

// The name is settled (or refused): on to the room, unless that is the lobby.
function next() {
  if (want.name !== myName && myName) {
    // Refused (taken or not allowed): keep the name the broker gave.
    want.name = myName;
  }
  if (setup.target === LOBBY) {
    room = LOBBY;
    finish(false);
    return;
  }
  setup.stage = 'join';
  setup.held = [];
}

// Ends the holding: shows the room's history, less what is already on screen.
function finish(dropped) {
  const s = setup;
  if (!s) return;
  setup = null;
  clearTimeout(s.timer);
  if (dropped) return;
  room = room || LOBBY;
  log.me = myName;
  const same = s.why === 'again' && ui.log.dataset.room === room;
  if (same) {
    system('Reconnected.', 'ok');
  } else {
    log.divider(room);
  }
  ui.log.dataset.room = room;
  log.history(s.held.filter(isChat), same);
  want.room = room;
  rememberRoom(room);
  updateIdentity();
  setState('online', 'online');
}

// A line while settled: follow our own renames and room changes.
function live(raw) {
  let m;
  if ((m = raw.match(RENAMED)) && m[1] === myName) {
    myName = m[2];
    want.name = myName;
    log.me = myName;
    updateIdentity();
  }
  show(raw);
}

// ---- what the user does ----

function submitLine(text) {
  const line = text.replace(/\s+$/, '');
  if (!line) return true;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    system('Not connected yet; your line is still in the box.', 'warn');
    return false;
  }
  const m = line.match(/^\/(\S+)\s*([\s\S]*)$/);
  if (m && !line.startsWith('//')) {
    const [, verb, arg] = m;
    if (verb === 'join' && arg) {
      begin('join', arg.trim(), 'switch');
    } else if (verb === 'quit') {
      quitting = true;
    } else if (verb === 'me' && arg) {
      sendLine(line);
      show('* ' + myName + ' ' + arg, true);
      return true;
    }
    sendLine(line);
    return true;
  }
  if (line === 'byebye') quitting = true;
  sendLine(line);
  if (line !== 'byebye') show('<' + myName + '> ' + (line.startsWith('//') ? line.slice(1) : line), true);
  return true;
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (ui.state.dataset.state === 'left') {
    attempt = 0;
    connect();
  } else if (submitLine(ui.text.value)) {
    ui.text.value = '';
  }
  ui.text.focus();
});

ui.roomForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const target = ui.roomInput.value.trim().replace(/^#/, '');
  if (target && target !== room) {
    submitLine('/join ' + target);
  }
  ui.text.focus();
});
ui.roomInput.addEventListener('blur', () => { ui.roomInput.value = room || want.room; });

ui.who.addEventListener('click', () => {
  sendLine('/who');
  ui.text.focus();
});

ui.invite.addEventListener('click', () => {
  const link = new URL('/', location.href);
  link.search = '';
  link.searchParams.set('room', room || want.room);
  if (token) link.searchParams.set('token', token);
  // With a token the link lets its holder in: say so.
  const note = token ? ' (it holds this chat\'s token: give it only to people you let in)' : '';
  const said = () => system('Invitation link: ' + link.href + note);
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(link.href).then(
      () => system('Invitation link copied: ' + link.href + note, 'ok'), said);
  } else {
    said();
  }
});

ui.retry.addEventListener('click', () => {
  attempt = 0;
  connect();
});
window.addEventListener('online', () => { if (!ws) connect(); });

ui.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ui.nameInput.value.trim();
  const target = ui.joinRoom.value.trim().replace(/^#/, '') || LOBBY;
  const bad = !NAME_RE.test(name) ? 'Names are 1 to 32 letters, digits, _ - or .'
    : !NAME_RE.test(target) ? 'Room names are 1 to 32 letters, digits, _ - or .' : '';
  if (bad) {
    ui.joinError.textContent = bad;
    ui.joinError.hidden = false;
    return;
  }
  want.name = name;
  want.room = target;
  ui.welcome.hidden = true;
  start();
});

function start() {
  updateIdentity();
  fillRecent();
  ui.text.focus();
  connect();
}

if (want.name) {
  start();
} else {
  ui.joinRoom.value = want.room === LOBBY ? '' : want.room;
  ui.welcome.hidden = false;
  ui.nameInput.focus();
}
