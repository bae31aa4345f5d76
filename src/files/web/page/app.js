// The files page of `taojie serve files --web`: browse, download, upload (resumable, in
// chunks with a SHA-256 each), make folders, rename, delete, search, archives, share links.
// Names are only ever put into the page as text (textContent, attributes set one by one),
// never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  folder: "M2 5.5A1.5 1.5 0 0 1 3.5 4h4l1.6 1.8h7.4A1.5 1.5 0 0 1 18 7.3v8.2a1.5 1.5 0 0 1-1.5 1.5h-13A1.5 1.5 0 0 1 2 15.5z",
  file: "M5 2.5h6.5L16 7v10.5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1v-14a1 1 0 0 1 1-1zM11.5 2.5V7H16",
  other: "M10 3a7 7 0 1 0 0 14 7 7 0 0 0 0-14z",
  download: "M10 3v9m-4-4 4 4 4-4M4 15.5h12",
  rename: "M4 14.5V16h1.5l8.8-8.8-1.5-1.5zM12.8 5.7l1.5 1.5",
  remove: "M5 6h10m-8.5 0 .6 10h5.8l.6-10M8 6V4h4v2",
  share: "M7.5 9.2 12.5 6.5m-5 4.3 5 2.7M14.5 6.5a2 2 0 1 0 0-.01zm0 8a2 2 0 1 0 0-.01zm-9-4a2 2 0 1 0 0-.01z",
};

const state = {
  base: "/",          // URL prefix of the tree (a share link's own, or "/")
  path: "",           // the folder shown, below the base ("" is the top)
  mode: "rw",         // rw, ro or upload
  share: false,       // whether share links can be made here
  chunk: 8 << 20,
  entries: [],
  shown: 0,
  sort: { key: "name", dir: 1 },
  searching: null,
};
const PAGE = 400;

// ---- paths and URLs ----

function encodePath(p) {
  return p.split("/").filter(Boolean).map(encodeURIComponent).join("/");
}
function join(a, b) {
  return a ? (b ? a + "/" + b : a) : b;
}
function folderUrl(p) {
  const e = encodePath(p);
  return state.base + (e ? e + "/" : "");
}
function fileUrl(p) {
  return state.base + encodePath(p);
}
function fromLocation() {
  let path = location.pathname;
  const m = path.match(/^\/\.taojie\/share\/[^/]+\//);
  state.base = m ? m[0] : "/";
  path = path.slice(state.base.length).replace(/\/$/, "");
  try {
    state.path = path.split("/").filter(Boolean).map(decodeURIComponent).join("/");
  } catch (_) {
    state.path = "";
  }
}

// ---- formatting ----

function human(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + " " + units[i];
}
function when(ms) {
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
function icon(kind, cls) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 20 20");
  svg.setAttribute("class", cls + " " + kind);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[kind] || ICONS.other);
  if (kind === "folder") {
    path.setAttribute("fill", "currentColor");
  } else {
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.5");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
  }
  svg.appendChild(path);
  return svg;
}
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.appendChild(k);
  return e;
}

// ---- messages ----

function notice(text) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
}
async function failure(res) {
  let text = "";
  try {
    const t = await res.text();
    try { text = JSON.parse(t).error || t; } catch (_) { text = t; }
  } catch (_) { /* no body */ }
  return (text || res.statusText || "failed").trim() + " (" + res.status + ")";
}

// ---- dialogs ----

function ask({ title, text, input, select, ok, alt, danger, extra }) {
  const d = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-text").textContent = text || "";
  $("dialog-text").hidden = !text;
  const inp = $("dialog-input");
  inp.hidden = input === undefined;
  inp.value = input || "";
  $("dialog-select").hidden = !select;
  const ex = $("dialog-extra");
  ex.replaceChildren();
  if (extra) ex.appendChild(extra);
  const okb = $("dialog-ok");
  okb.textContent = ok || "OK";
  okb.hidden = ok === null;
  okb.className = danger ? "danger" : "primary";
  $("dialog-alt").hidden = !alt;
  $("dialog-alt").textContent = alt || "";
  $("dialog-cancel").textContent = ok === null ? "Close" : "Cancel";
  return new Promise((resolve) => {
    d.addEventListener("close", function done() {
      d.removeEventListener("close", done);
      resolve({ choice: d.returnValue, value: inp.value.trim(), select: $("dialog-select").value });
    });
    d.returnValue = "cancel";
    d.showModal();
    if (!inp.hidden) { inp.focus(); inp.select(); }
  });
}

// ---- the listing ----

async function load(push) {
  state.searching = null;
  $("search-note").hidden = true;
  if (push) history.pushState(null, "", folderUrl(state.path));
  let res;
  try {
    res = await fetch(folderUrl(state.path) + "?json", { headers: { Accept: "application/json" } });
  } catch (e) {
    notice("The server cannot be reached. " + e.message);
    return;
  }
  if (!res.ok) {
    notice(await failure(res));
    state.entries = [];
    render();
    return;
  }
  const data = await res.json();
  notice("");
  state.mode = data.mode;
  state.share = !!data.share;
  state.chunk = data.chunk || state.chunk;
  state.entries = data.entries || [];
  applyMode();
  crumbs();
  render();
}

function applyMode() {
  const reads = state.mode !== "upload", writes = state.mode !== "ro";
  document.querySelectorAll(".writes").forEach((e) => (e.hidden = !writes));
  document.querySelectorAll(".reads").forEach((e) => (e.hidden = !reads));
  document.querySelectorAll(".shares").forEach((e) => (e.hidden = !state.share || !reads));
  document.querySelectorAll(".noshare").forEach((e) => (e.hidden = state.share || !reads));
  $("list").hidden = !reads;
  $("search").hidden = !reads;
  const note = $("mode-note");
  note.hidden = state.mode === "rw";
  note.textContent = state.mode === "ro"
    ? (state.base === "/" ? "This server is read-only." : "A shared folder: you can look and download.")
    : "This server accepts uploads only: drop files here or use Upload. What is already here is not shown.";
}

function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  const shared = state.base !== "/";
  const parts = state.path ? state.path.split("/") : [];
  const top = el("a", { href: folderUrl(""), text: shared ? "Shared" : "Home" });
  top.addEventListener("click", (ev) => { ev.preventDefault(); go(""); });
  nav.appendChild(parts.length ? top : el("span", { class: "here", text: shared ? "Shared" : "Home" }));
  let acc = "";
  parts.forEach((p, i) => {
    acc = join(acc, p);
    nav.appendChild(el("span", { class: "sep", text: "/" }));
    if (i === parts.length - 1) {
      nav.appendChild(el("span", { class: "here", text: p }));
    } else {
      const target = acc;
      const a = el("a", { href: folderUrl(target), text: p });
      a.addEventListener("click", (ev) => { ev.preventDefault(); go(target); });
      nav.appendChild(a);
    }
  });
  document.title = (parts.length ? parts[parts.length - 1] : shared ? "Shared" : "Home") + " · taojie files";
  $("drop-where").textContent = "/" + state.path;
}

function go(path) {
  state.path = path;
  $("q").value = "";
  load(true);
}

function sorted() {
  const { key, dir } = state.sort;
  const rank = (e) => (e.kind === "dir" ? 0 : 1);
  return state.entries.slice().sort((a, b) => {
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    let c = 0;
    if (key === "name") c = a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" });
    else c = a[key] - b[key];
    if (c === 0) c = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    return c * dir;
  });
}

function render() {
  const rows = $("rows");
  rows.replaceChildren();
  state.list = sorted();
  state.shown = 0;
  if (state.path && !state.searching) {
    const up = el("tr", { class: "up" });
    const a = el("a", { href: folderUrl(parent(state.path)) }, icon("folder", "ico"), el("span", { class: "label", text: ".." }));
    a.addEventListener("click", (ev) => { ev.preventDefault(); go(parent(state.path)); });
    up.append(el("td", { class: "name" }, a), el("td", { class: "size" }), el("td", { class: "time" }), el("td", { class: "acts" }));
    rows.appendChild(up);
  }
  more();
  $("empty").hidden = state.list.length > 0 || state.mode === "upload" || !!state.searching;
  const files = state.entries.filter((e) => e.kind === "file");
  const total = files.reduce((s, e) => s + e.size, 0);
  const dirs = state.entries.length - files.length;
  $("foot").textContent = state.mode === "upload" ? "" :
    `${dirs} folder${dirs === 1 ? "" : "s"}, ${files.length} file${files.length === 1 ? "" : "s"}, ${human(total)}`;
  document.querySelectorAll("th[data-key]").forEach((th) => {
    th.setAttribute("aria-sort", th.dataset.key === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
  });
}

function more() {
  const rows = $("rows");
  const end = Math.min(state.list.length, state.shown + PAGE);
  const frag = document.createDocumentFragment();
  for (let i = state.shown; i < end; i++) frag.appendChild(row(state.list[i]));
  rows.appendChild(frag);
  state.shown = end;
  const left = state.list.length - end;
  $("more").hidden = left <= 0;
  $("more-btn").textContent = `Show ${Math.min(left, PAGE)} more (${left} left)`;
}

function parent(p) {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}

function row(e) {
  // In a search, e.name is a path below the folder searched.
  const full = join(state.searching !== null ? state.searching : state.path, e.name);
  const tr = el("tr");
  tr.dataset.name = e.name;
  const label = el("span", { class: "label" });
  if (state.searching !== null && e.name.includes("/")) {
    label.append(el("span", { class: "path", text: parent(e.name) + "/" }), document.createTextNode(e.name.slice(e.name.lastIndexOf("/") + 1)));
  } else {
    label.textContent = e.name;
  }
  let link;
  if (e.kind === "dir") {
    link = el("a", { href: folderUrl(full) }, icon("folder", "ico"), label);
    link.addEventListener("click", (ev) => { ev.preventDefault(); go(full); });
  } else if (e.kind === "file") {
    link = el("a", { href: fileUrl(full), target: "_blank", rel: "noopener" }, icon("file", "ico"), label);
  } else {
    link = el("span", { class: "plain", title: "a link or special file: not served" }, icon("other", "ico"), label);
  }
  const acts = el("td", { class: "acts" });
  const act = (kind, title, fn) => {
    const b = el("button", { type: "button", class: "icon", title, "aria-label": title + " " + e.name }, icon(kind, "act"));
    b.addEventListener("click", fn);
    acts.appendChild(b);
  };
  if (e.kind === "file") {
    act("download", "Download", () => download(fileUrl(full) + "?download", e.name));
  } else if (e.kind === "dir") {
    act("download", "Download as .zip", () => download(folderUrl(full) + "?archive=zip", e.name + ".zip"));
  }
  if (state.share && e.kind !== "other") act("share", "Share", () => shareDialog(full, e.kind === "dir"));
  if (state.mode === "rw") {
    act("rename", "Rename", () => rename(full, e.name));
    act("remove", "Delete", () => remove(full, e));
  }
  tr.append(
    el("td", { class: "name" }, link),
    el("td", { class: "size", text: e.kind === "file" ? human(e.size) : "" }),
    el("td", { class: "time", text: when(e.mtime) }),
    acts,
  );
  return tr;
}

function download(url, name) {
  const a = el("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ---- changes ----

async function post(url, method) {
  const res = await fetch(url, { method: method || "POST" });
  if (!res.ok) throw new Error(await failure(res));
  return res;
}

async function mkdir() {
  const r = await ask({ title: "New folder", text: "In /" + state.path, input: "", ok: "Make" });
  if (r.choice !== "ok" || !r.value) return;
  try {
    await post(folderUrl(join(state.path, r.value)).replace(/\/$/, "") + "?mkdir");
    await load(false);
  } catch (e) { notice(e.message); }
}

async function rename(full, name) {
  const r = await ask({ title: "Rename", text: full, input: name, ok: "Rename" });
  if (r.choice !== "ok" || !r.value || r.value === name) return;
  const to = join(parent(full), r.value);
  try {
    await post(fileUrl(full) + "?move=" + encodeURIComponent(to));
    await load(false);
  } catch (e) { notice(e.message); }
}

async function remove(full, e) {
  const what = e.kind === "dir" ? "the folder “" + e.name + "” and everything in it" : "“" + e.name + "”";
  const r = await ask({ title: "Delete?", text: "Delete " + what + "? This cannot be undone.", ok: "Delete", danger: true });
  if (r.choice !== "ok") return;
  try {
    await post(fileUrl(full), "DELETE");
    await load(false);
  } catch (err) { notice(err.message); }
}

async function shareDialog(full, folder) {
  const r = await ask({ title: "Share " + (full ? "“" + full.split("/").pop() + "”" : "this folder"), text: "Anyone with the link can " + (folder ? "browse and download it" : "download it") + ", read-only, until it expires.", select: true, ok: "Make link" });
  if (r.choice !== "ok") return;
  let data;
  try {
    const res = await post("/.taojie/api/share?path=" + encodeURIComponent(full) + "&expires=" + r.select);
    data = await res.json();
  } catch (e) { notice(e.message); return; }
  showLink("Share link", data.url, "Valid until " + new Date(data.expires * 1000).toLocaleString() + ". Scan it with a phone, or copy it.");
}

async function showLink(title, url, text) {
  const box = el("div");
  const input = el("input", { type: "text", readonly: "", value: url, "aria-label": "Link" });
  const img = el("img", { alt: "QR code of the link", src: "/.taojie/qr.svg?text=" + encodeURIComponent(url) });
  box.append(img, input);
  const r = await ask({ title, text, ok: "Copy link", extra: box });
  if (r.choice === "ok") {
    try { await navigator.clipboard.writeText(url); } catch (_) { input.select(); document.execCommand("copy"); }
  }
}

// ---- search ----

async function search(text) {
  if (!text) { load(false); return; }
  let res;
  try {
    res = await fetch(folderUrl(state.path) + "?search=" + encodeURIComponent(text));
  } catch (e) { notice(e.message); return; }
  if (!res.ok) { notice(await failure(res)); return; }
  const data = await res.json();
  state.searching = state.path;
  state.entries = data.entries;
  const note = $("search-note");
  note.hidden = false;
  note.textContent = `${data.entries.length}${data.truncated ? "+" : ""} name${data.entries.length === 1 ? "" : "s"} matching “${text}” below /${state.path}`;
  render();
}

// ---- uploads ----

const queue = [];
let running = 0;
const PARALLEL = 3;   // files at once
const AHEAD = 3;      // chunks of one file in flight at once
let replaceAll = null;

function uploadAll(items) {
  if (!items.length) return;
  $("uploads").hidden = false;
  for (const it of items) {
    const li = el("li", {}, el("span", { class: "uname", text: it.rel, title: it.rel }), el("button", { type: "button", class: "icon", title: "Cancel", "aria-label": "Cancel " + it.rel, text: "✕" }), el("span", { class: "ustate", text: "waiting" }), el("progress", { max: "1", value: "0" }));
    $("up-list").appendChild(li);
    const job = { file: it.file, dest: join(it.dir, it.rel), li, cancelled: false, xhrs: new Set() };
    li.querySelector("button").addEventListener("click", () => {
      job.cancelled = true;
      for (const x of job.xhrs) x.abort();
      status(job, "cancelled", "failed");
    });
    queue.push(job);
  }
  summary();
  pump();
}

function pump() {
  while (running < PARALLEL && queue.length) {
    const job = queue.shift();
    if (job.cancelled) continue;
    running++;
    upload(job).finally(() => {
      running--;
      summary();
      pump();
      if (!running && !queue.length) { replaceAll = null; if (!state.searching) load(false); }
    });
  }
}

function summary() {
  const all = $("up-list").children.length;
  const done = $("up-list").querySelectorAll("li.done").length;
  $("up-summary").textContent = `${done} of ${all} done`;
}

function status(job, text, cls) {
  job.li.querySelector(".ustate").textContent = text;
  if (cls) job.li.className = cls;
}

function progress(job, n) {
  const size = job.file.size;
  const bar = job.li.querySelector("progress");
  bar.value = size ? n / size : 1;
  const rate = job.t0 && n > job.from ? (n - job.from) / ((performance.now() - job.t0) / 1000) : 0;
  status(job, `${human(n)} of ${human(size)}` + (rate ? ` · ${human(rate)}/s` : ""));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function upload(job) {
  const f = job.file;
  const q = `size=${f.size}&mtime=${Math.round(f.lastModified)}`;
  const url = fileUrl(job.dest);
  let overwrite = "";
  let offset = null;
  let wait = 500;
  while (!job.cancelled) {
    try {
      if (offset === null) {
        const res = await fetch(url + "?upload&" + q + overwrite, { method: "POST" });
        if (res.status === 409) {
          const body = await res.json().catch(() => ({}));
          if (body.exists && !overwrite) {
            if (await replace(job.dest)) { overwrite = "&overwrite=1"; continue; }
            status(job, "skipped: a file of this name exists", "failed");
            return;
          }
          throw new Retry(body.error || "busy");
        }
        if (!res.ok) { status(job, await failure(res), "failed"); return; }
        offset = (await res.json()).offset;
        job.from = offset;
        job.t0 = performance.now();
        if (offset > 0) status(job, `resuming at ${human(offset)}`);
      }
      if (offset >= f.size && f.size > 0) { offset = null; continue; }
      const r = await sendFrom(job, url, `${q}${overwrite}`, offset);
      wait = 500;
      if (r.status === 201) {
        job.li.querySelector("progress").value = 1;
        status(job, `${human(f.size)} · verified`, "done");
        return;
      } else if (r.status === 409) {
        // Told where the upload continues (or that it is busy): ask again.
        const body = JSON.parse(r.text || "{}");
        if (typeof body.offset !== "number") throw new Retry(body.error || "busy");
        offset = null;
      } else if (r.status >= 500 && r.status !== 507) {
        throw new Retry("server error " + r.status);
      } else {
        let msg = r.text;
        try { msg = JSON.parse(r.text).error || msg; } catch (_) { /* text */ }
        status(job, (msg || "refused").trim() + " (" + r.status + ")", "failed");
        return;
      }
    } catch (e) {
      if (job.cancelled) return;
      // The network or the server went away: ask again where to continue once it is back.
      status(job, "waiting for the server… " + (e.message || ""));
      offset = null;
      await sleep(wait);
      wait = Math.min(wait * 2, 4000);
    }
  }
}

class Retry extends Error {}

async function replace(name) {
  if (replaceAll !== null) return replaceAll;
  const r = await ask({ title: "Replace?", text: "“" + name + "” exists already. Replace it?", ok: "Replace", alt: "Replace all", danger: true });
  if (r.choice === "alt") replaceAll = true;
  return r.choice === "ok" || r.choice === "alt";
}

// Sends the chunks of a file from `offset` on, AHEAD of them in flight at once (each its own
// request; the server writes them in order as they come). Chunks are read and hashed one
// after another, so they are sent in order. Resolves with the answer that ends it: the
// last chunk's 201, or the first refusal once every chunk in flight has ended (a damaged
// chunk is sent again at once). A lost connection rejects, once the others have ended.
async function sendFrom(job, url, q, offset) {
  const f = job.file;
  const flying = new Map();
  let next = offset, ready = Promise.resolve(), stop = null, broken = null;
  job.held = offset;
  job.loaded = new Map();
  const launch = (start) => {
    const end = Math.min(f.size, start + state.chunk);
    const prepared = ready.then(async () => {
      const buf = await f.slice(start, end).arrayBuffer();
      return { buf, digest: await sha256(buf) };
    });
    ready = prepared.catch(() => {});
    const p = prepared
      .then(({ buf, digest }) => job.cancelled ? Promise.reject(new Error("(cancelled)"))
        : send(job, `${url}?offset=${start}&${q}`, buf, digest, start))
      .then((r) => ({ start, r }), (e) => ({ start, e }));
    flying.set(start, p);
  };
  for (;;) {
    while (!stop && !broken && !job.cancelled && flying.size < AHEAD &&
           (next < f.size || (f.size === 0 && next === 0 && !flying.size))) {
      launch(next);
      next = f.size === 0 ? 1 : Math.min(f.size, next + state.chunk);
    }
    if (!flying.size) break;
    const { start, r, e } = await Promise.race(flying.values());
    flying.delete(start);
    job.loaded.delete(start);
    if (e) { broken = broken || e; continue; }
    if (r.status === 200) {
      const body = JSON.parse(r.text);
      job.held = Math.max(job.held, body.offset);
      progress(job, job.held + sum(job.loaded));
    } else if (r.status === 201) {
      stop = r;
    } else if (r.status === 422 && !stop && !broken) {
      status(job, "a chunk arrived damaged; sending it again");
      launch(start);
    } else if (!stop) {
      stop = r;
    }
  }
  if (broken && !(stop && stop.status === 201)) throw broken;
  if (job.cancelled) throw new Error("(cancelled)");
  return stop || { status: 409, text: '{"offset":' + next + "}" };
}

const sum = (m) => { let n = 0; for (const v of m.values()) n += v; return n; };

function send(job, url, buf, digest, offset) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    job.xhrs.add(x);
    x.open("PATCH", url);
    x.setRequestHeader("Content-Digest", "sha-256=:" + b64(digest) + ":");
    x.upload.onprogress = (ev) => {
      job.loaded.set(offset, ev.loaded);
      progress(job, job.held + sum(job.loaded));
    };
    x.onloadend = () => job.xhrs.delete(x);
    x.onload = () => resolve({ status: x.status, text: x.responseText });
    x.onerror = () => reject(new Error("(connection lost)"));
    x.onabort = () => reject(new Error("(cancelled)"));
    x.send(buf);
  });
}

function b64(bytes) {
  let s = "";
  const u = new Uint8Array(bytes);
  for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
  return btoa(s);
}

// SHA-256: the browser's own where it has one (secure contexts: https, localhost), else
// this one (FIPS 180-4).
async function sha256(buf) {
  if (window.crypto && crypto.subtle) return crypto.subtle.digest("SHA-256", buf);
  return sha256js(new Uint8Array(buf));
}
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
function sha256js(data) {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const n = data.length;
  const blocks = Math.ceil((n + 9) / 64);
  const tail = new Uint8Array(128);
  const full = Math.floor(n / 64);
  tail.set(data.subarray(full * 64));
  tail[n - full * 64] = 0x80;
  const bits = n * 8;
  const tl = (blocks - full) * 64;
  const dv = new DataView(tail.buffer);
  dv.setUint32(tl - 8, Math.floor(bits / 0x100000000));
  dv.setUint32(tl - 4, bits >>> 0);
  const w = new Uint32Array(64);
  const rot = (x, r) => (x >>> r) | (x << (32 - r));
  for (let b = 0; b < blocks; b++) {
    const src = b < full ? data : tail;
    const off = b < full ? b * 64 : (b - full) * 64;
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (src[j] << 24) | (src[j + 1] << 16) | (src[j + 2] << 8) | src[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], c = w[i - 2];
      const s0 = rot(a, 7) ^ rot(a, 18) ^ (a >>> 3);
      const s1 = rot(c, 17) ^ rot(c, 19) ^ (c >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [A, B, C, D, E, F, G, H] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (H + (rot(E, 6) ^ rot(E, 11) ^ rot(E, 25)) + ((E & F) ^ (~E & G)) + K[i] + w[i]) | 0;
      const t2 = ((rot(A, 2) ^ rot(A, 13) ^ rot(A, 22)) + ((A & B) ^ (A & C) ^ (B & C))) | 0;
      H = G; G = F; F = E; E = (D + t1) | 0; D = C; C = B; B = A; A = (t1 + t2) | 0;
    }
    h[0] += A; h[1] += B; h[2] += C; h[3] += D; h[4] += E; h[5] += F; h[6] += G; h[7] += H;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(i * 4, x));
  return out.buffer;
}

// Files picked (with their folders' paths, for a folder picked whole).
function picked(input) {
  const items = Array.from(input.files).map((file) => ({ file, dir: state.path, rel: file.webkitRelativePath || file.name }));
  input.value = "";
  uploadAll(items);
}

// Files and folders dropped: folders are read entry by entry.
async function dropped(dt) {
  const roots = Array.from(dt.items || []).map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  const items = [];
  const dir = state.path;
  async function walk(entry, prefix) {
    if (!entry) return;
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      items.push({ file, dir, rel: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, prefix + entry.name + "/");
      }
    }
  }
  if (roots.some(Boolean)) {
    for (const r of roots) await walk(r, "");
  } else {
    for (const file of dt.files) items.push({ file, dir, rel: file.name });
  }
  uploadAll(items);
}

// ---- wiring ----

function init() {
  fromLocation();
  $("home").setAttribute("href", state.base);
  $("up-files").addEventListener("click", () => $("pick-files").click());
  $("up-folder").addEventListener("click", () => $("pick-folder").click());
  $("pick-files").addEventListener("change", (e) => picked(e.target));
  $("pick-folder").addEventListener("change", (e) => picked(e.target));
  $("mkdir").addEventListener("click", mkdir);
  $("zip").addEventListener("click", () => download(folderUrl(state.path) + "?archive=zip", "folder.zip"));
  $("tgz").addEventListener("click", () => download(folderUrl(state.path) + "?archive=tar.gz", "folder.tar.gz"));
  $("share-here").addEventListener("click", () => shareDialog(state.path, true));
  $("qr-here").addEventListener("click", () => showLink("Open on a phone", location.origin + folderUrl(state.path), "This folder's address."));
  $("more-btn").addEventListener("click", more);
  $("up-hide").addEventListener("click", () => ($("uploads").hidden = true));
  $("search").addEventListener("submit", (e) => { e.preventDefault(); search($("q").value.trim()); });
  $("q").addEventListener("input", () => { if (!$("q").value && state.searching !== null) load(false); });
  document.querySelectorAll("th[data-key] button").forEach((b) => {
    b.addEventListener("click", () => {
      const key = b.parentElement.dataset.key;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "name" ? 1 : -1 };
      render();
    });
  });
  new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting) && !$("more").hidden) more(); }).observe($("more"));
  let depth = 0;
  const canDrop = (e) => state.mode !== "ro" && Array.from(e.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragenter", (e) => { if (!canDrop(e)) return; e.preventDefault(); depth++; $("drop").hidden = false; });
  window.addEventListener("dragover", (e) => { if (canDrop(e)) e.preventDefault(); });
  window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; $("drop").hidden = true; } });
  window.addEventListener("drop", (e) => {
    depth = 0;
    $("drop").hidden = true;
    if (!canDrop(e)) return;
    e.preventDefault();
    dropped(e.dataTransfer);
  });
  window.addEventListener("popstate", () => { fromLocation(); load(false); });
  window.addEventListener("beforeunload", (e) => { if (running || queue.length) e.preventDefault(); });
  load(false);
}

document.addEventListener("DOMContentLoaded", init);
