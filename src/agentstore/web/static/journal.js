// Follows a run's journal live: new events from the Server-Sent Events stream become
// rows of the journal's table. Without EventSource, or when the stream cannot be had,
// the page stays as it was rendered and says it is not live; nothing is logged.
(function () {
  "use strict";
  var body = document.querySelector("#journal tbody[data-stream]");
  if (!body || typeof window.EventSource !== "function") {
    return;
  }
  var badge = document.getElementById("live");
  var after = Number(body.getAttribute("data-after")) || 0;
  var url = body.getAttribute("data-stream") + "?after=" + encodeURIComponent(after);
  var source = new EventSource(url);

  function show(live) {
    badge.hidden = false;
    badge.textContent = live ? "live" : "not live";
    badge.className = live ? "live" : "live off";
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) {
      td.className = className;
    }
    row.appendChild(td);
  }

  function add(message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (ignored) {
      return; // not an event of the journal (a comment, a keep-alive)
    }
    if (!event || typeof event.id !== "number" || event.id <= after) {
      return; // seen already: the stream may start where the page left off
    }
    after = event.id;
    var row = document.createElement("tr");
    row.setAttribute("data-id", String(event.id));
    row.className = "new";
    cell(row, event.id, "num");
    cell(row, String(event.ts || "").replace("T", " ").slice(0, 19));
    cell(row, event.source);
    cell(row, event.kind);
    cell(row, event.message);
    body.appendChild(row);
  }

  source.onopen = function () { show(true); };
  source.onmessage = add;
  source.onerror = function () {
    // The browser retries by itself unless the stream is refused for good (a 404, a
    // 204, a response that is not a stream); either way the page stays as it is.
    show(false);
  };
}());
