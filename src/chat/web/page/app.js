// The taojie chat page. The WebSocket at /ws speaks the broker's line protocol: one text
// message per line each way. Text from the network only ever goes into the page as text
// (textContent), never as markup.
'use strict';

(() => {
  const LOBBY = 'lobby';
  // The terminal client's palette (src/chat/colour.rs); style.css gives each code a colour.
  const PALETTE = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
  const NAME_RE = /^[\p{Alphabetic}\p{N}_.-]{1,32}$/u;
  const KEEP_ROWS = 1000;
  const HISTORY = 20;
  const RETRY_MIN = 500;
  const RETRY_MAX = 15000;
  const SETUP_LIMIT = 5000;

  // The broker's own lines, as src/chat/room writes them.
  const RENAMED = /^\*\*\* (\S+) is now known as (\S+)$/;
  const JOINED = /^\*\*\* (\S+) joined (\S+)$/;
  const NOTICE = /^\*\*\* (welcome, |\S+ (joined|left|is now known as|dropped) |in \S+ \(\d+\): )/;
  const WHO = /^\*\*\* in (\S+) \((\d+)\): (.*)$/;
  const TOO_LONG = /^\*\*\* line too long/;

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
  let token = params.get('token') || load('token');
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
  // The last chat lines shown in the current room, as the broker sends them.
  let recent = [];
  let lastOwn = null;

  function colourOf(name) {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(name)) {
      h = Math.imul(h ^ b, 0x01000193) >>> 0;
    }
    return PALETTE[h % PALETTE.length];
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

  function clock() {
    const d = new Date();
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  // Adds a row to the log, keeping the view at the bottom if it was there.
  function addRow(row) {
    const log = ui.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(row);
    while (log.childElementCount > KEEP_ROWS) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return row;
  }

  // Shows one line from the broker (or our own, echoed).
  function show(raw, own) {
    const row = el('div', 'line');
    row.dataset.raw = raw;
    row.append(el('time', 'at', clock()));
    let m;
    if ((m = raw.match(/^<([^>\s]+)> ([\s\S]*)$/))) {
      row.classList.add('chat');
      row.append(nick(m[1]), el('span', 'text', m[2]));
      if (!own && myName && m[2].toLowerCase().includes(myName.toLowerCase())) {
        row.classList.add('mention');
      }
      remember(raw);
    } else if ((m = raw.match(/^\* (\S+) ([\s\S]*)$/))) {
      row.classList.add('action');
      row.append(el('span', 'star', '*'), nick(m[1]), el('span', 'text', ' ' + m[2]));
      remember(raw);
    } else if ((m = raw.match(WHO))) {
      row.classList.add('notice', 'who');
      row.append(el('span', 'text', `in #${m[1]} (${m[2]}): `));
      m[3].split(', ').forEach((name, i) => {
        if (i) row.append(', ');
        row.append(nick(name));
      });
    } else if (raw.startsWith('*** ')) {
      row.classList.add('notice');
      if (!NOTICE.test(raw)) row.classList.add('reply');
      row.append(el('span', 'text', raw.slice(4)));
      if (TOO_LONG.test(raw) && lastOwn) lastOwn.classList.add('unsent');
    } else {
      row.classList.add('plain');
      row.append(el('span', 'text', raw));
    }
    if (own) {
      row.classList.add('own');
      lastOwn = row;
    }
    return addRow(row);
  }

  function remember(raw) {
    recent.push(raw);
    if (recent.length > HISTORY) recent.shift();
  }

  // A line of the page's own (connection state, hints), not from the broker.
  function system(text, cls) {
    const row = el('div', 'line system' + (cls ? ' ' + cls : ''));
    row.append(el('time', 'at', clock()), el('span', 'text', text));
    return addRow(row);
  }

  function divider(name) {
    const row = el('div', 'divider');
    row.append(el('span', '', '#' + name));
    addRow(row);
  }

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

  function isReply(raw) {
    return raw.startsWith('*** ') && !NOTICE.test(raw);
  }

  // Ends the holding: shows the room's history, less what is already on screen.
  function finish(dropped) {
    const s = setup;
    if (!s) return;
    setup = null;
    clearTimeout(s.timer);
    if (dropped) return;
    room = room || LOBBY;
    const history = s.held.filter((l) => /^(<[^>\s]+> |\* \S+ )/.test(l));
    const same = s.why === 'again' && ui.log.dataset.room === room;
    let skip = 0;
    if (same) {
      for (let k = Math.min(recent.length, history.length); k > 0; k--) {
        if (recent.slice(recent.length - k).every((l, i) => l === history[i])) {
          skip = k;
          break;
        }
      }
      system('Reconnected.', 'ok');
    } else {
      recent = [];
      divider(room);
    }
    ui.log.dataset.room = room;
    history.slice(skip).forEach((l) => show(l));
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
})();
