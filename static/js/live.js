// Live refresh that costs nothing when nothing changed (see live/conditional.py), and relative
// times that stay true between refreshes.
(function () {
  "use strict";
  var etags = {}; // the ETag of what each polled element shows, by the element's id

  function keyOf(elt) {
    var region = elt && elt.closest ? elt.closest("[data-live]") : null;
    return region ? region.id : null;
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var key = keyOf(event.detail.elt || event.target);
    if (key && etags[key] && event.detail.verb === "get") {
      event.detail.headers["If-None-Match"] = etags[key];
    }
  });

  // the key is taken before the request: after an outerHTML swap the element is gone
  document.addEventListener("htmx:beforeSend", function (event) {
    if (event.detail.xhr) event.detail.xhr.liveKey = keyOf(event.detail.elt || event.target);
  });

  // A refresh answered by another release (a deploy happened since this page loaded): its
  // markup may need this release's scripts. Reload the page instead of swapping it in, once
  // nothing is being typed or chosen; until then keep what is shown.
  function pageRelease() {
    var meta = document.querySelector('meta[name="release"]');
    return meta ? meta.getAttribute("content") : null;
  }
  function busy() {
    var el = document.activeElement;
    if (el && el.matches && el.matches("input, textarea, select, [contenteditable]")) return true;
    return !!document.querySelector("dialog[open], :popover-open");
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var served = xhr && xhr.getResponseHeader("X-Release");
    var mine = pageRelease();
    if (!served || !mine || served === mine) return;
    event.detail.shouldSwap = false;
    xhr.otherRelease = true; // its ETag is not what this page shows: the next poll asks again
    if (!busy()) location.reload();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var key = xhr && xhr.liveKey;
    if (!key) return;
    if (xhr.otherRelease) etags[key] = null;
    else if (xhr.status === 200) etags[key] = xhr.getResponseHeader("ETag") || null;
    else if (xhr.status !== 304) etags[key] = null;
  });

  // "5 s ago" written by the server stays true: <time data-ago datetime="…"> is rewritten here.
  function ago(seconds) {
    if (seconds < 5) return "just now";
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) return Math.floor(seconds / units[i][1]) + " " + units[i][0] + " ago";
    }
    return Math.floor(seconds) + " s ago";
  }
  function refreshTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = ago(Math.max(0, (now - at) / 1000));
    });
  }
  setInterval(refreshTimes, 5000);
  document.addEventListener("htmx:afterSwap", refreshTimes);

  document.addEventListener("DOMContentLoaded", function () {
    // what the page itself shows: its fragments' ETags, as the server wrote them
    document.querySelectorAll("[data-live][data-etag]").forEach(function (region) {
      if (region.id && region.dataset.etag) etags[region.id] = region.dataset.etag;
    });
    if (window.htmx) {
      // 304: what is shown is still true; leave it as it is. (Ahead of the other rules.)
      htmx.config.responseHandling.unshift({ code: "304", swap: false });
    }
  });
})();
