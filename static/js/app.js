// The connections table: a selection that survives the live refresh, and the polling gate.
(function () {
  "use strict";
  var key = "meshplay-selection:" + location.pathname;
  var selected = new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));

  function save() {
    sessionStorage.setItem(key, JSON.stringify(Array.from(selected)));
    var count = document.getElementById("selection-count");
    if (count) count.textContent = selected.size ? selected.size + " selected" : "No rows selected.";
  }

  function restore() {
    document.querySelectorAll('#table-region input[name="select"]').forEach(function (box) {
      box.checked = selected.has(box.value);
    });
    var region = document.getElementById("table-region");
    var sort = document.querySelector('form.filters input[name="sort"]');
    if (region && sort) sort.value = region.dataset.sort || "";
    save();
  }

  // Poll only when it cannot disturb: no open status menu, no request in flight.
  window.pollable = function (visibility) {
    if (document.visibilityState !== visibility) return false;
    return !document.querySelector("#table-region details[open]");
  };

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.name === "select" && box.closest("#table-region")) {
      box.checked ? selected.add(box.value) : selected.delete(box.value);
      save();
    } else if (box.id === "select-page") {
      document.querySelectorAll('#table-region input[name="select"]').forEach(function (row) {
        row.checked = box.checked;
        box.checked ? selected.add(row.value) : selected.delete(row.value);
      });
      save();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "bulk") return;
    var region = document.getElementById("table-region");
    form.elements.ids.value = Array.from(selected).join(",");
    form.elements.query.value = region ? region.dataset.query : "";
    selected.clear();
    save();
  });

  // A menu closes when focus or a click leaves it; Escape closes it too.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (menu) {
        menu.removeAttribute("open");
        menu.querySelector("summary").focus();
      });
    }
  });

  document.addEventListener("htmx:afterSwap", restore);
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      // Show refusals (4xx) too: the server sends their message in the response.
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "4..", swap: true, error: false },
        { code: "...", swap: false, error: true },
      ];
    }
    restore();
  });
})();
