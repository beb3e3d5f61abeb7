// Holdfast chat client: plain JavaScript, no build step, no dependencies.
// Protocol (Cloudflare's edge chat demo): send {"name"} then {"message"}; receive
// {"joined"}, the history, {"ready":true}, messages {"name","message","timestamp"},
// {"quit"} and {"error"}.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  name: localStorage.getItem("chat.name") || "",
  room: "",
  ws: null,
  ready: false,
  leaving: false,
  lastSeen: 0,     // newest message timestamp shown: history after a reconnect skips up to it
  roster: new Map(), // name -> number of connections using it
  retries: 0,
  retryTimer: 0,
};

function show(screen) {
  for (const id of ["name-screen", "room-screen", "chat-screen"]) $(id).hidden = id !== screen;
  const inChat = screen === "chat-screen";
  $("room-info").hidden = !inChat;
  $("bar-actions").hidden = !inChat;
}

function roomFromHash() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return "";
  }
}

function isPrivateId(room) {
  return /^[0-9a-fA-F]{64}$/.test(room);
}

function start() {
  state.room = roomFromHash();
  if (!state.name) {
    show("name-screen");
    $("name-input").focus();
  } else if (!state.room) {
    show("room-screen");
    $("room-input").focus();
  } else {
    enterRoom();
  }
}

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  if (!name) return;
  state.name = name;
  localStorage.setItem("chat.name", name);
  state.room ? enterRoom() : (show("room-screen"), $("room-input").focus());
});

$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("room-input").value.trim();
  if (!room) return;
  state.room = room;
  history.pushState(null, "", "#" + encodeURIComponent(room));
  enterRoom();
});

$("create-private").addEventListener("click", async () => {
  const btn = $("create-private");
  btn.disabled = true;
  try {
    const resp = await fetch("/api/room", { method: "POST" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    state.room = (await resp.text()).trim();
    history.pushState(null, "", "#" + state.room);
    enterRoom();
  } catch (err) {
    toast("Could not create a room: " + err.message);
  } finally {
    btn.disabled = false;
  }
});

$("leave").addEventListener("click", () => {
  state.leaving = true;
  clearTimeout(state.retryTimer);
  if (state.ws) state.ws.close(1000, "left");
  history.pushState(null, "", location.pathname);
  state.room = "";
  show("room-screen");
  $("room-input").value = "";
  $("room-input").focus();
});

$("invite").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    toast("Invite link copied");
  } catch {
    toast(location.href);
  }
});

$("roster-toggle").addEventListener("click", () => {
  const open = $("roster-panel").classList.toggle("open");
  $("roster-toggle").setAttribute("aria-expanded", String(open));
});

window.addEventListener("popstate", () => {
  const room = roomFromHash();
  if (room === state.room) return;
  if (state.ws) {
    state.leaving = true;
    state.ws.close(1000, "left");
  }
  state.room = room;
  start();
});

function enterRoom() {
  show("chat-screen");
  $("room-label").textContent = isPrivateId(state.room) ? "Private room" : "#" + state.room;
  $("room-label").title = state.room;
  document.title = (isPrivateId(state.room) ? "Private room" : "#" + state.room) + " · Holdfast chat";
  $("messages").replaceChildren();
  state.lastSeen = 0;
  state.retries = 0;
  connect();
}

function connect() {
  state.leaving = false;
  state.ready = false;
  setStatus("connecting…", false);
  setComposer(false);
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/api/room/" + encodeURIComponent(state.room) + "/websocket");
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.roster.clear();
    renderRoster();
    ws.send(JSON.stringify({ name: state.name }));
  });
  ws.addEventListener("message", (e) => {
    if (ws !== state.ws) return;
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    onFrame(data);
  });
  ws.addEventListener("close", (e) => {
    if (ws !== state.ws) return;
    state.ready = false;
    setComposer(false);
    if (state.leaving || e.code === 1009) {
      setStatus(e.code === 1009 ? "disconnected" : "left", false);
      return;
    }
    // Reconnect with a bounded backoff; the history sent on rejoin fills any gap.
    const delay = Math.min(10000, 500 * 2 ** state.retries++);
    setStatus("reconnecting…", false);
    state.retryTimer = setTimeout(connect, delay);
  });
}

function onFrame(data) {
  if (data.error) {
    addError(data.error);
    if (data.error === "Name too long.") {
      localStorage.removeItem("chat.name");
      state.name = "";
    }
  } else if (data.joined !== undefined) {
    state.roster.set(data.joined, (state.roster.get(data.joined) || 0) + 1);
    renderRoster();
    if (state.ready) addSystem(data.joined + " joined");
  } else if (data.quit !== undefined) {
    const n = (state.roster.get(data.quit) || 0) - 1;
    n > 0 ? state.roster.set(data.quit, n) : state.roster.delete(data.quit);
    renderRoster();
    addSystem(data.quit + " left");
  } else if (data.ready) {
    state.ready = true;
    state.retries = 0;
    setStatus("online", true);
    setComposer(true);
    $("message-input").focus();
  } else if (typeof data.timestamp === "number") {
    if (data.timestamp <= state.lastSeen) return; // already shown before a reconnect
    state.lastSeen = data.timestamp;
    addMessage(data.name, data.message, data.timestamp);
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("message-input");
  const text = input.value;
  if (!text || !state.ready) return;
  state.ws.send(JSON.stringify({ message: text }));
  input.value = "";
  updateCounter();
});

$("message-input").addEventListener("input", updateCounter);

function updateCounter() {
  const left = 256 - $("message-input").value.length;
  $("counter").textContent = left <= 40 ? String(left) : "";
}

function setStatus(text, online) {
  $("status").textContent = text;
  $("status").classList.toggle("online", online);
}

function setComposer(enabled) {
  $("message-input").disabled = !enabled;
  $("send").disabled = !enabled;
}

// Appending keeps the view pinned to the bottom only when the reader was already there.
function append(li) {
  const tl = $("timeline");
  const atBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 40;
  $("messages").append(li);
  if (atBottom) tl.scrollTop = tl.scrollHeight;
}

function addMessage(name, text, ts) {
  const li = document.createElement("li");
  li.className = "msg" + (name === state.name ? " mine" : "");
  li.dataset.timestamp = String(ts);
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.textContent = (name || "?").trim().charAt(0).toUpperCase() || "?";
  avatar.style.background = colorFor(name);
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = name;
  const time = document.createElement("time");
  const d = new Date(ts);
  time.dateTime = d.toISOString();
  time.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  time.title = d.toLocaleString();
  meta.append(who, time);
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  li.append(avatar, meta, body);
  append(li);
}

function addSystem(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  append(li);
}

function addError(text) {
  const li = document.createElement("li");
  li.className = "error";
  li.textContent = text;
  append(li);
}

function renderRoster() {
  const ul = $("roster");
  const names = [...state.roster.keys()].sort((a, b) => a.localeCompare(b));
  ul.replaceChildren(...names.map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
  $("roster-count").textContent = String(names.length);
}

function colorFor(name) {
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return "hsl(" + (h % 360) + " 55% 48%)";
}

let toastTimer = 0;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2500);
}

start();
