/* supportdesk chat widget, embedded with one tag: script src="https://help.example.com/widget.js" async
   No build step, no dependencies. Everything a visitor or an agent wrote is put on the page with
   textContent, never as HTML. Messages carry a client id and wait in localStorage until the desk
   acknowledges them, so a reload, a retry or a reconnect never loses or doubles one. */
(function () {
  "use strict";
  var C = /*CONFIG*/{};
  if (window.__supportdeskWidget) return;
  window.__supportdeskWidget = true;
  var script = document.currentScript;
  var base = C.base || (script ? script.src.replace(/\/widget\.js(\?.*)?$/, "") : "");
  var wsUrl = base.replace(/^http/, "ws") + "/ws";
  var key = "supportdesk:" + base + ":" + C.channel + ":";
  var lang = C.lang !== "auto" ? C.lang : /^ru/i.test(document.documentElement.lang || navigator.language || "") ? "ru" : "en";
  var T = C.texts[lang] || C.texts.en;

  function store(name, value) {
    try {
      if (value === undefined) return JSON.parse(localStorage.getItem(key + name) || "null");
      localStorage.setItem(key + name, JSON.stringify(value));
    } catch (e) { return null; }
  }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    for (var a in attrs || {}) n.setAttribute(a, attrs[a]);
    if (text != null) n.textContent = String(text);
    return n;
  }
  function newId() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  var host = el("div", { id: "supportdesk-widget" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css = ":host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}" +
    ".btn{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;cursor:pointer;background:" + C.color + ";color:" + C.textColor + ";box-shadow:0 2px 8px #0004}" +
    ".panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border-radius:10px;box-shadow:0 4px 24px #0005;overflow:hidden}" +
    ".panel[hidden]{display:none}.head{background:" + C.color + ";color:" + C.textColor + ";padding:10px 12px;display:flex;align-items:flex-start;gap:8px}" +
    ".head h2{margin:0;font-size:16px;font-weight:600}.head p{margin:2px 0 0;font-size:12px;opacity:.92}.head .x{margin-left:auto;background:none;border:0;color:inherit;font-size:20px;cursor:pointer;line-height:1}" +
    ".dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;background:#9aa}.on .dot{background:#3c3}" +
    ".log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;background:#f6f7f9}" +
    ".m{max-width:85%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}.in{align-self:flex-end;background:" + C.color + ";color:" + C.textColor + "}.out{align-self:flex-start;background:#fff;border:1px solid #dde}" +
    ".m small{display:block;font-size:11px;opacity:.75}.note{align-self:center;font-size:12px;color:#555;text-align:center}" +
    ".kb{padding:6px 10px;border-top:1px solid #eee;font-size:12px}.kb[hidden],.off[hidden]{display:none}.kb a{display:block;color:" + C.color + "}" +
    ".off{padding:8px 10px;border-top:1px solid #eee;background:#fffbe6}.off p{margin:0 0 4px}.off input{width:100%;margin:2px 0;padding:5px;border:1px solid #bbb;border-radius:5px}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #ddd}textarea{flex:1;resize:none;height:44px;padding:6px;border:1px solid #bbb;border-radius:6px}" +
    "form button{border:0;border-radius:6px;padding:0 12px;background:" + C.color + ";color:" + C.textColor + ";cursor:pointer}" +
    ":focus-visible{outline:3px solid #f90;outline-offset:1px}";
  root.appendChild(el("style", {}, css));

  var btn = el("button", { "class": "btn", type: "button", "aria-expanded": "false", "aria-controls": "sd-panel" }, T.open);
  var panel = el("div", { "class": "panel", id: "sd-panel", role: "dialog", "aria-labelledby": "sd-title", hidden: "" });
  var head = el("div", { "class": "head" });
  var titles = el("div");
  titles.appendChild(el("h2", { id: "sd-title" }, T.title));
  var status = el("p", { "class": "status", "aria-live": "polite" });
  var promise = el("p", { "class": "promise" });
  titles.appendChild(status);
  titles.appendChild(promise);
  var close = el("button", { "class": "x", type: "button", "aria-label": T.close }, "×");
  head.appendChild(titles);
  head.appendChild(close);
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  var kb = el("div", { "class": "kb", "aria-live": "polite", hidden: "" });
  var off = el("div", { "class": "off", hidden: "" });
  off.appendChild(el("p", {}, T.offline_ask));
  var email = el("input", { type: "email", autocomplete: "email", "aria-label": T.email, placeholder: T.email, maxlength: "254" });
  var name = el("input", { type: "text", autocomplete: "name", "aria-label": T.name, placeholder: T.name, maxlength: "100" });
  off.appendChild(email);
  off.appendChild(name);
  var form = el("form");
  var input = el("textarea", { "aria-label": T.placeholder, placeholder: T.placeholder, maxlength: String(C.maxChars) });
  var send = el("button", { type: "submit" }, T.send);
  form.appendChild(input);
  form.appendChild(send);
  [head, log, kb, off, form].forEach(function (n) { panel.appendChild(n); });
  root.appendChild(panel);
  root.appendChild(btn);

  var shown = {};       // message id -> element (dedupes pushes, history and acks)
  var pending = store("pending") || [];  // [{cid, text}] not yet acknowledged
  var ws = null, retry = 0, welcomed = false, contactSent = "";

  function line(id, dir, text, note) {
    if (id && shown[id]) return shown[id];
    var m = el("div", { "class": "m " + dir });
    m.appendChild(document.createTextNode(text));
    if (note) m.appendChild(el("small", {}, note));
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
    if (id) shown[id] = m;
    return m;
  }
  function mark(m, note) {
    var s = m.querySelector("small") || m.appendChild(el("small"));
    s.textContent = note;
  }
  function info(text) { log.appendChild(el("div", { "class": "note" }, text)); log.scrollTop = log.scrollHeight; }
  function frame(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }

  function flush() {
    if (!welcomed) return;
    sendContact();
    pending.forEach(function (p) { frame({ t: "msg", cid: p.cid, text: p.text }); });
  }
  function connect() {
    var tok = store("token");
    ws = new WebSocket(wsUrl + (tok ? "?token=" + encodeURIComponent(tok) : ""));
    ws.onopen = function () { frame({ t: "hello", lang: lang, page: location.href }); };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f.t === "welcome") {
        retry = 0; welcomed = true; store("token", f.token);
        (f.messages || []).forEach(function (m) {
          var cid = m.id.split(":").pop();
          var mine = m.dir === "in" && shown["c:" + cid];
          if (mine) { shown[m.id] = mine; mark(mine, T.received); }
          else line(m.id, m.dir, m.text, m.dir === "out" ? m.author : "");
          if (m.dir === "in") dropPending(cid);
        });
        status.textContent = "";
        setStatus(f);
        if (f.email) off.hidden = true;
        flush();
      } else if (f.t === "ack") {
        var m = shown["c:" + f.cid];
        if (m) { shown[f.id] = m; mark(m, T.received); }
        dropPending(f.cid);
      } else if (f.t === "msg") {
        line(f.id, "out", f.text, f.author);
        frame({ t: "seen", id: f.id });
      } else if (f.t === "status") {
        setStatus(f);
      } else if (f.t === "kb") {
        showKb(f.items || []);
      } else if (f.t === "error") {
        var e = f.cid && shown["c:" + f.cid];
        if (e) mark(e, f.retry ? T.sending : T.error + ": " + f.text);
        if (f.cid && !f.retry) dropPending(f.cid);
        if (f.cid && f.retry) setTimeout(flush, 5000);
      }
    };
    ws.onclose = function () {
      welcomed = false;
      contactSent = "";
      if (!panel.hidden) status.textContent = T.reconnecting;
      var wait = Math.min(500 * Math.pow(2, retry++), 10000) * (0.75 + Math.random() / 2);
      setTimeout(connect, wait);
    };
  }
  function dropPending(cid) {
    pending = pending.filter(function (p) { return p.cid !== cid; });
    store("pending", pending);
  }
  function setStatus(f) {
    var s = el("span");
    s.appendChild(el("span", { "class": "dot", "aria-hidden": "true" }));
    s.appendChild(document.createTextNode(f.online ? T.online : T.offline));
    status.textContent = "";
    status.appendChild(s);
    status.className = "status" + (f.online ? " on" : "");
    promise.textContent = f.promise ? T.promise.replace("{time}", f.promise) : "";
    off.hidden = !!f.online || f.email === true || off.dataset.done === "1";
  }
  function showKb(items) {
    kb.textContent = "";
    if (!items.length) { kb.hidden = true; return; }
    kb.appendChild(el("div", {}, T.suggest));
    items.forEach(function (a) {
      var n = /^https?:\/\//.test(a.url) ? el("a", { href: a.url, target: "_blank", rel: "noopener noreferrer" }, a.title) : el("div", {}, a.title);
      if (a.snippet) n.setAttribute("title", a.snippet);
      kb.appendChild(n);
    });
    kb.hidden = false;
  }
  function toggle(open) {
    panel.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
    if (open) { input.focus(); if (!ws) connect(); } else btn.focus();
  }
  btn.addEventListener("click", function () { toggle(panel.hidden); });
  close.addEventListener("click", function () { toggle(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") toggle(false); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(e); }
  });
  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    timer = setTimeout(function () { if (q.length >= 3) frame({ t: "suggest", q: q }); else showKb([]); }, 350);
  });
  function sendContact() {
    var k = email.value + "\n" + name.value;
    if (welcomed && email.value && k !== contactSent) { frame({ t: "contact", email: email.value, name: name.value }); contactSent = k; }
  }
  email.addEventListener("change", function () { if (email.value) off.dataset.done = "1"; sendContact(); });
  name.addEventListener("change", sendContact);
  function submit(e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var cid = newId();
    pending.push({ cid: cid, text: text });
    store("pending", pending);
    line("c:" + cid, "in", text, T.sending);
    input.value = "";
    showKb([]);
    sendContact();
    frame({ t: "msg", cid: cid, text: text });
  }
  form.addEventListener("submit", submit);
  // a page put away (navigation, back-forward cache) closes its socket; coming back reconnects
  window.addEventListener("pagehide", function () {
    if (ws) { ws.onclose = null; ws.close(); ws = null; welcomed = false; contactSent = ""; }
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted && !ws && (pending.length || store("token"))) connect(); });
  setInterval(function () { frame({ t: "ping" }); }, 20000);  // presence while the page is open
  if (T.greeting || C.greeting) info(T.greeting || C.greeting);
  pending.forEach(function (p) { line("c:" + p.cid, "in", p.text, T.sending); });
  (document.body || document.documentElement).appendChild(host);
  if (pending.length || store("token")) connect();
  window.supportdeskWidget = { open: function () { toggle(true); }, close: function () { toggle(false); } };
})();
