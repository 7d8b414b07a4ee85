// The chat page: one WebSocket to this node's server (/ws), JSON both ways.
// No framework and no build step: the DOM is updated by hand.
"use strict";

const $ = (id) => document.getElementById(id);
const ADJECTIVES = ["Curious", "Brave", "Sunny", "Quiet", "Swift", "Witty", "Gentle", "Lucky", "Clever", "Merry"];
const ANIMALS = ["Otter", "Fox", "Heron", "Panda", "Lynx", "Koala", "Puffin", "Badger", "Gecko", "Wren"];
const PALETTE = ["#4b5bd7", "#db2777", "#0d9488", "#d97706", "#7c3aed", "#0284c7", "#65a30d", "#dc2626"];

let socket = null;
let self = "";
let running = false;
let retry = 500;
const seen = new Set();

function colorOf(text) {
  let hash = 0;
  for (const ch of text) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function author() {
  let name = localStorage.getItem("nodemesh-author");
  if (!name) {
    const pick = (list) => list[Math.floor(Math.random() * list.length)];
    name = `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
    localStorage.setItem("nodemesh-author", name);
  }
  return name;
}

function renderState(state) {
  self = state.self;
  running = state.running;
  $("self").textContent = state.self;
  document.title = `${state.self.split("@")[0]} · nodemesh chat`;
  const status = $("status");
  status.dataset.state = running ? "running" : "stopped";
  status.textContent = running ? "running" : "stopped";
  const list = $("nodes");
  list.replaceChildren(...state.nodes.map(nodeItem));
  renderPeople(state.people || []);
  if (!state.nodes.length) list.append(el("li", { className: "none", textContent: "none: this node is stopped" }));
  $("node-count").textContent = state.nodes.length;
  $("stop").hidden = !running;
  $("start").hidden = running;
  $("text").disabled = !running;
  $("composer").querySelector("button").disabled = !running;
  if (running) hideBanner();
  else showBanner(state.problem || `${state.self} is stopped: the other pages saw it leave.`, "Start it again", start);
}

function avatarOf(name, className = "avatar") {
  const avatar = el("div", { className, textContent: name.trim().charAt(0).toUpperCase() || "?" });
  avatar.style.background = colorOf(name);
  return avatar;
}

function renderPeople(people) {
  const me = author();
  $("people").replaceChildren(...people.map((p) => {
    const you = p.node === self && p.name === me;
    const li = el("li", {}, [avatarOf(p.name), el("span", { textContent: p.name }),
      you ? el("span", { className: "you", textContent: "you" }) : "",
      el("span", { className: "on", textContent: p.node.split("@")[0] })]);
    li.dataset.person = `${p.name} ${p.node}`;
    return li;
  }));
  if (!people.length) $("people").append(el("li", { className: "none", textContent: "nobody yet" }));
  $("people-count").textContent = people.length;
}

function nodeItem(n) {
  const title = n.room ? `up since ${clock(n.since)}` : "connected; its PubSub is joining the room";
  const li = el("li", { className: `${n.self ? "self" : ""}${n.room ? "" : " joining"}`, title }, [
    el("span", { className: "dot" }),
    el("span", { className: "name", textContent: n.name }),
    el("span", { className: "meta", textContent: n.self ? "this node" : `up ${ago(n.since)}` }),
  ]);
  li.dataset.node = n.name;
  li.dataset.since = n.since;
  li.dataset.room = n.room;
  return li;
}

function showBanner(text, action, onClick) {
  const banner = $("banner");
  banner.replaceChildren(el("span", { textContent: text }));
  if (action) {
    const button = el("button", { className: "primary", textContent: action, type: "button" });
    button.addEventListener("click", onClick);
    banner.append(button);
  }
  banner.hidden = false;
}

function hideBanner() { $("banner").hidden = true; }

function addEvent(event) {
  const list = $("messages");
  const key = event.type === "message" ? event.id : `${event.type}:${event.at}:${event.text}`;
  if (seen.has(key)) return;
  seen.add(key);
  $("empty")?.remove();
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.append(event.type === "message" ? messageItem(event) : noticeItem(event));
  if (stick) list.scrollTop = list.scrollHeight;
}

function messageItem(m) {
  const who = m.author || "someone on the cluster";
  const mine = m.node === self && m.author === author();
  const avatar = avatarOf(who);
  const via = m.node ? el("span", { className: `via${m.node === self ? " local" : ""}`, textContent: `via ${m.node}` }) : "";
  const time = el("time", { dateTime: new Date(m.at).toISOString(), textContent: clock(m.at) });
  const body = el("div", {}, [
    el("div", { className: "head" }, [el("span", { className: "author", textContent: who }), via, time]),
    el("div", { className: "text", textContent: m.text }),
  ]);
  return el("li", { className: `message${mine ? " mine" : ""}` }, [avatar, body]);
}

function noticeItem(n) {
  return el("li", { className: "notice" }, [el("span", { textContent: `${n.text} · ${clock(n.at)}` })]);
}

function send(payload) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
}

function start() { send({ type: "start" }); }

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    retry = 500;
    send({ type: "name", author: author() });
  });
  socket.addEventListener("message", (frame) => {
    const event = JSON.parse(frame.data);
    if (event.type === "hello") {
      renderState(event.state);
      event.history.forEach(addEvent);
    } else if (event.type === "state") renderState(event);
    else if (event.type === "problem") showBanner(event.text);
    else addEvent(event);
  });
  socket.addEventListener("close", () => {
    $("status").dataset.state = "offline";
    $("status").textContent = "offline";
    showBanner("Lost this page's server (was the demo stopped?). Reconnecting…");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  });
}

window.addEventListener("DOMContentLoaded", () => {
  const name = $("author");
  name.value = author();
  name.placeholder = author();
  let renaming = null;
  name.addEventListener("input", () => {
    const value = name.value.trim();
    if (value) localStorage.setItem("nodemesh-author", value);
    clearTimeout(renaming);  // tell the others once typing pauses, not at every key
    renaming = setTimeout(() => send({ type: "name", author: author() }), 400);
  });
  name.addEventListener("blur", () => { name.placeholder = author(); });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text");
    if (!text.value.trim()) return;
    send({ type: "say", author: author(), text: text.value });
    text.value = "";
    text.focus();
  });
  $("stop").addEventListener("click", () => send({ type: "stop" }));
  $("start").addEventListener("click", start);
  setInterval(() => document.querySelectorAll(".nodes li:not(.self) .meta").forEach((m) => {
    const li = m.closest("li");
    if (li.dataset.since) m.textContent = `up ${ago(Number(li.dataset.since))}`;
  }), 5000);
  connect();
});
