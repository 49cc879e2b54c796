// Closer's website chat. Paste into a page:
//   <script src="https://closer.example.com/chat/widget.js" defer></script>
// Options as data attributes on the script tag: data-title, data-open="true" (open at once),
// data-target="#element" (render inside an element instead of a floating window).
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var base = new URL(script.src, window.location.href).origin;
  var title = script.getAttribute("data-title") || "Chat";
  var storageKey = "closer-visitor";

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  var visitor;
  try {
    visitor = window.localStorage.getItem(storageKey);
    if (!visitor) { visitor = randomId(); window.localStorage.setItem(storageKey, visitor); }
  } catch (e) { visitor = randomId(); }

  var lastId = 0, opened = false, pollTimer = null, busy = false, stream = null;
  var queue = []; // messages not yet accepted, each with its id kept for retries

  // The style sheet (assets/widget.css) is put here by the server as a string; the console's
  // Content-Security-Policy allows exactly this text by its SHA-256.
  var style = document.createElement("style");
  style.textContent = "__CLOSER_WIDGET_CSS__";
  document.head.appendChild(style);

  var root = document.createElement("div");
  root.className = "closer-chat";
  var target = script.getAttribute("data-target") && document.querySelector(script.getAttribute("data-target"));
  var panel = document.createElement("div");
  panel.className = "closer-panel";
  var head = document.createElement("div");
  head.className = "closer-head";
  var headTitle = document.createElement("span");
  headTitle.textContent = title;
  head.appendChild(headTitle);
  var log = document.createElement("div");
  log.className = "closer-log";
  log.setAttribute("aria-live", "polite");
  var errorLine = document.createElement("div");
  errorLine.className = "closer-error";
  var form = document.createElement("form");
  form.className = "closer-form";
  var input = document.createElement("textarea");
  input.placeholder = "Type a message…";
  input.maxLength = 2000;
  input.setAttribute("aria-label", "Message");
  var send = document.createElement("button");
  send.type = "submit";
  send.textContent = "Send";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(errorLine);
  panel.appendChild(form);

  var toggle = null;
  if (target) {
    root.className += " closer-inline";
    root.appendChild(panel);
    target.appendChild(root);
  } else {
    root.className += " closer-float";
    toggle = document.createElement("button");
    toggle.className = "closer-toggle";
    toggle.textContent = title;
    var close = document.createElement("button");
    close.textContent = "×";
    close.setAttribute("aria-label", "Close");
    head.appendChild(close);
    panel.style.display = "none";
    root.appendChild(panel);
    root.appendChild(toggle);
    document.body.appendChild(root);
    toggle.addEventListener("click", open);
    close.addEventListener("click", function () {
      panel.style.display = "none"; toggle.style.display = ""; opened = false; stopListening();
    });
  }

  function render(message) {
    if (message.id <= lastId) { return; }
    lastId = message.id;
    if (message.from === "visitor") {
      // The server's copy of an echoed message replaces the local one.
      var echoed = log.querySelector(".closer-pending");
      if (echoed) { echoed.remove(); }
    }
    var bubble = document.createElement("div");
    bubble.className = "closer-msg closer-" + message.from;
    bubble.setAttribute("data-id", String(message.id));
    if (message.from === "person") {
      var who = document.createElement("div");
      who.className = "closer-who";
      who.textContent = "Sales team";
      bubble.appendChild(who);
    }
    bubble.appendChild(document.createTextNode(message.text));
    if (message.sources && message.sources.length) {
      var sources = document.createElement("div");
      sources.className = "closer-sources";
      sources.textContent = "Sources: " + message.sources.join(", ");
      bubble.appendChild(sources);
    }
    log.appendChild(bubble);
    if (message.buttons && message.buttons.length) {
      var row = document.createElement("div");
      row.className = "closer-buttons";
      message.buttons.forEach(function (button) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = button.label;
        b.addEventListener("click", function () {
          row.remove();
          submit({ payload: button.payload }, button.label);
        });
        row.appendChild(b);
      });
      log.appendChild(row);
    }
    log.scrollTop = log.scrollHeight;
  }

  function show(answer) {
    errorLine.textContent = "";
    (answer.messages || []).forEach(render);
  }

  function request(method, body) {
    var url = base + "/chat/api/messages" +
      (method === "GET" ? "?visitor=" + encodeURIComponent(visitor) + "&after=" + lastId : "");
    return fetch(url, {
      method: method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) { var e = new Error(json.error || "error"); e.status = response.status; throw e; }
        return json;
      });
    });
  }

  // Sends queued messages one at a time; a message keeps its id until it is accepted, so a
  // retry after a network error is answered once.
  function flush() {
    if (busy || !queue.length) { return; }
    busy = true;
    var next = queue[0];
    next.after = lastId;
    request("POST", next).then(function (answer) {
      queue.shift();
      busy = false;
      show(answer);
      flush();
    }, function (error) {
      busy = false;
      if (error.status && error.status >= 400 && error.status < 500 && error.status !== 429) {
        queue.shift(); // refused for good (too long, malformed): say why, do not retry
        errorLine.textContent = error.message;
        flush();
      } else {
        errorLine.textContent = error.status === 429 ? error.message : "Connection problem, retrying…";
        setTimeout(flush, 3000);
      }
    });
  }

  function submit(fields, echo) {
    var message = { visitor: visitor, id: randomId() };
    for (var key in fields) { message[key] = fields[key]; }
    if (echo) {
      var pending = document.createElement("div");
      pending.className = "closer-msg closer-visitor closer-pending";
      pending.textContent = echo;
      log.appendChild(pending);
      log.scrollTop = log.scrollHeight;
    }
    queue.push(message);
    flush();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    submit({ text: text }, text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  function poll() {
    request("GET").then(show, function () {});
  }
  function startPolling() { if (!pollTimer) { pollTimer = setInterval(poll, 3000); } }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  // New messages (a salesperson's during a takeover) arrive as server-sent events. The stream
  // ends now and then and EventSource reconnects by itself, saying the last id it saw; while it
  // is away, and for good when it cannot be opened, the widget polls instead.
  function listen() {
    if (!window.EventSource) { startPolling(); return; }
    stream = new EventSource(base + "/chat/api/events?visitor=" + encodeURIComponent(visitor) + "&after=" + lastId);
    stream.addEventListener("messages", function (event) {
      try { show(JSON.parse(event.data)); } catch (e) { /* a broken event: the next one resyncs */ }
    });
    stream.onopen = function () { stopPolling(); root.setAttribute("data-live", "events"); };
    stream.onerror = function () {
      root.setAttribute("data-live", "polling");
      startPolling();
      if (stream && stream.readyState === EventSource.CLOSED) { stream = null; }
    };
  }
  function stopListening() {
    stopPolling();
    if (stream) { stream.close(); stream = null; }
  }

  function open() {
    if (toggle) { toggle.style.display = "none"; }
    panel.style.display = "flex";
    if (opened) { return; }
    opened = true;
    request("GET").then(function (answer) {
      show(answer);
      if (!lastId) {
        var campaign = new URLSearchParams(window.location.search).get("utm_campaign");
        submit(campaign ? { start: true, campaign: campaign } : { start: true });
      }
    }, function () { errorLine.textContent = "Connection problem"; });
    listen();
    input.focus();
  }

  if (target || script.getAttribute("data-open") === "true") { open(); }
  window.CloserChat = { open: open, visitor: function () { return visitor; } };
})();
