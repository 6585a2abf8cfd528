// The connections table (its list page, an environment's page) and the state menu it shares
// with the connection page. Every piece survives the live refresh of #table-region:
//  - a selection kept in sessionStorage, and the bulk bar's counter and confirmation dialog;
//  - the polling gate: no refresh while a state menu is open;
//  - state menus: native popovers (the top layer, never clipped), placed by their button,
//    with the keyboard of a menu (arrows, Home/End, Escape, Tab);
//  - tooltips of the heartbeat ticks and the clipped problem texts, on hover and on focus;
//  - filter dropdowns kept in step with the table when a chip, a summary link or the history
//    changes the filters.
(function () {
  "use strict";

  function region() {
    return document.getElementById("table-region");
  }
  function fmt(n) {
    return Number(n).toLocaleString("en-US");
  }
  function plural(n, word) {
    return fmt(n) + " " + word + (n === 1 ? "" : "s");
  }

  // ---- selection and the bulk bar -------------------------------------------------------
  var key = "meshplay-selection:" + location.pathname;
  var selected = new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));

  function total() {
    var r = region();
    return r ? parseInt(r.dataset.total || "0", 10) || 0 : 0;
  }
  // more rows match than the table counts (connections/listing.py): "all matching" is refused
  function capped() {
    var r = region();
    return r ? r.dataset.totalCapped || "" : "";
  }
  var TOO_MANY = "More than {n} rows match: narrow the filters to act on all of them.";
  function allMatching() {
    var box = document.getElementById("bulk-all");
    return !!(box && box.checked);
  }
  function updateCounter(text) {
    var count = document.getElementById("selection-count");
    if (!count) return;
    if (text) count.textContent = text;
    else if (allMatching() && capped()) count.textContent = TOO_MANY.replace("{n}", capped().replace("+", ""));
    else if (allMatching()) count.textContent = "All " + fmt(total()) + " matching " + (total() === 1 ? "row" : "rows");
    else count.textContent = selected.size ? fmt(selected.size) + " selected" : "No rows selected.";
  }
  function save() {
    sessionStorage.setItem(key, JSON.stringify(Array.from(selected)));
    updateCounter();
  }
  function restoreSelection() {
    var boxes = document.querySelectorAll('#table-region input[name="select"]');
    var all = boxes.length > 0;
    boxes.forEach(function (box) {
      box.checked = selected.has(box.value);
      all = all && box.checked;
    });
    var page = document.getElementById("select-page");
    if (page) page.checked = all;
    var r = region();
    var sort = document.querySelector('form.filters input[name="sort"]');
    if (r && sort) sort.value = r.dataset.sort || "";
    save();
  }

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
    } else if (box.id === "bulk-all") {
      updateCounter();
    } else if (box.dataset && box.dataset.column) {
      // the column chooser: shown at once; htmx saves the choice (the next render keeps it)
      document.querySelectorAll("table.connections").forEach(function (table) {
        table.classList.toggle("hide-" + box.dataset.column, !box.checked);
      });
    } else if (box.closest && box.closest("details.dropdown")) {
      updateDropdownCounts();
    }
  });

  // Deleting, or acting on every row matching the filters, asks first (naming the count and
  // the action); the form then carries the confirmed count, which the server checks.
  var pending = null;

  function actionLabel(select) {
    var option = select.options[select.selectedIndex];
    return option ? option.textContent.trim() : "";
  }

  // ---- the one confirmation dialog (templates/base.html) ------------------------------------
  // ask(title, text, ok label, danger, then): a modal whose Cancel has the focus; then() runs
  // only on the OK button. Without <dialog>, the browser's own confirm().
  var asked = null;
  function ask(title, text, okLabel, danger, then) {
    var dialog = document.getElementById("confirm");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(text)) then();
      return;
    }
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    var ok = document.getElementById("confirm-ok");
    ok.textContent = okLabel || "Confirm";
    ok.className = danger ? "danger" : "primary";
    asked = then;
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  }
  document.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog.id !== "confirm" || !asked) return;
      var then = asked;
      asked = null;
      if (dialog.returnValue === "confirm") then();
    },
    true
  );

  // Any button or link with data-confirm asks first (before htmx or its form sees the click),
  // then is pressed again, confirmed. data-confirm-ok names the OK button; a danger button's
  // OK is red.
  document.addEventListener(
    "click",
    function (event) {
      var el = event.target.closest && event.target.closest("[data-confirm]");
      if (!el || el.disabled) return;
      if (el.dataset.confirmed) {
        setTimeout(function () {
          delete el.dataset.confirmed; // this press was the confirmed one
        }, 0);
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      var okLabel = el.getAttribute("data-confirm-ok") || el.textContent.trim() || "Confirm";
      var danger = /danger/.test(el.className) || el.value === "deleted" || /^Delete\b/.test(okLabel);
      ask(okLabel + "?", el.getAttribute("data-confirm"), okLabel, danger, function () {
        el.dataset.confirmed = "1";
        el.click();
      });
    },
    true
  );

  function openConfirm(form, count, all, destructive) {
    var label = actionLabel(form.elements.action);
    var what = all ? plural(count, "connection") + " matching the filters" : plural(count, "selected connection");
    var title, text;
    if (destructive) {
      title = "Delete " + plural(count, "connection") + "?";
      text = "Delete " + what + "? This cannot be undone.";
    } else {
      title = label + ": " + plural(count, "connection") + "?";
      text = label + " for all " + what + "?";
    }
    var chosen = pending;
    pending = null;
    ask(title, text, destructive ? "Delete" : label, destructive, function () {
      submitBulk(chosen.form, chosen.snapshot);
    });
  }

  function submitBulk(form, snapshot) {
    form.elements.ids.value = snapshot.ids;
    form.elements.query.value = snapshot.query;
    form.elements.confirm_count.value = snapshot.confirm;
    if (form.elements.next) form.elements.next.value = location.pathname + location.search;
    selected.clear();
    save();
    form.submit();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "bulk") return;
    event.preventDefault();
    var r = region();
    var all = form.elements.all_matching.checked;
    var destructive = form.elements.action.value === "transition:deleted";
    var count = all ? total() : selected.size;
    if (all && capped()) {
      updateCounter(TOO_MANY.replace("{n}", capped().replace("+", "")));
      return;
    }
    if (!count) {
      updateCounter(all ? "No row matches the filters." : "Select rows first, or tick “all rows matching the filters”.");
      return;
    }
    var snapshot = {
      ids: Array.from(selected).join(","),
      query: r ? r.dataset.query : "",
      confirm: all || destructive ? String(count) : "",
    };
    if (!(all || destructive)) return submitBulk(form, snapshot);
    pending = { form: form, snapshot: snapshot };
    openConfirm(form, count, all, destructive);
  });

  // ---- the polling gate ------------------------------------------------------------------
  function openMenuIn(root) {
    try {
      if (root.querySelector(".menu-panel:popover-open")) return true;
    } catch (e) {
      /* no popover support: the menus are plain forms, nothing to keep open */
    }
    return !!root.querySelector("details.menu[open]");
  }
  // Poll only when it cannot disturb: never while a state menu of the table is open.
  window.pollable = function (visibility) {
    if (document.visibilityState !== visibility) return false;
    var r = region();
    if (document.querySelector("dialog#confirm[open]")) return false; // its button is in a row
    return !(r && openMenuIn(r));
  };

  // ---- state menus -----------------------------------------------------------------------
  var GAP = 4;
  var MARGIN = 8;
  var openTrigger = null;

  function panelOf(trigger) {
    return document.getElementById(trigger.getAttribute("aria-controls"));
  }
  function triggerOf(panel) {
    return document.querySelector('[aria-controls="' + panel.id + '"]');
  }
  function menuItems(panel) {
    return Array.prototype.slice.call(panel.querySelectorAll('[role="menuitem"]'));
  }
  function isOpen(panel) {
    try {
      return panel.matches(":popover-open");
    } catch (e) {
      return false;
    }
  }

  // Below its button, or above when the window's bottom is near; its right edge at the
  // button's right edge when the window's right edge is near.
  function place(trigger, panel) {
    var rect = trigger.getBoundingClientRect();
    var width = document.documentElement.clientWidth;
    var height = document.documentElement.clientHeight;
    panel.style.position = "fixed";
    panel.style.inset = "auto";
    panel.style.margin = "0";
    panel.style.maxHeight = height - 2 * MARGIN + "px";
    var w = panel.offsetWidth;
    var h = panel.offsetHeight;
    var left = rect.left;
    if (left + w > width - MARGIN) left = Math.max(MARGIN, Math.min(rect.right, width - MARGIN) - w);
    var top = rect.bottom + GAP;
    if (top + h > height - MARGIN) {
      top = rect.top - GAP - h >= MARGIN ? rect.top - GAP - h : Math.max(MARGIN, height - MARGIN - h);
    }
    panel.style.left = Math.round(left) + "px";
    panel.style.top = Math.round(top) + "px";
  }

  function openMenu(trigger, which) {
    var panel = panelOf(trigger);
    if (!panel || typeof panel.showPopover !== "function") return;
    if (!isOpen(panel)) panel.showPopover();
    place(trigger, panel);
    trigger.setAttribute("aria-expanded", "true");
    openTrigger = trigger;
    var items = menuItems(panel);
    if (items.length) items[which === "last" ? items.length - 1 : 0].focus();
  }

  function closeMenu(panel, refocus) {
    if (!panel) return;
    var trigger = triggerOf(panel);
    if (isOpen(panel)) panel.hidePopover();
    if (trigger) {
      trigger.setAttribute("aria-expanded", "false");
      if (refocus) trigger.focus();
    }
    if (openTrigger === trigger) openTrigger = null;
  }

  document.addEventListener("click", function (event) {
    var trigger = event.target.closest && event.target.closest(".state-trigger");
    if (!trigger) return;
    var panel = panelOf(trigger);
    if (!panel || typeof panel.showPopover !== "function") return; // the native fallback
    event.preventDefault();
    if (isOpen(panel)) closeMenu(panel, false);
    else openMenu(trigger, "first");
  });

  // A menu item closes its menu once pressed (its confirmation, data-confirm, asked first).
  document.addEventListener(
    "click",
    function (event) {
      var item = event.target.closest && event.target.closest('[role="menuitem"]');
      if (!item || (item.hasAttribute("data-confirm") && !item.dataset.confirmed)) return;
      var panel = item.closest(".menu-panel");
      setTimeout(function () {
        closeMenu(panel, true);
      }, 0);
    },
    true
  );

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target.closest) return;
    var trigger = target.closest(".state-trigger");
    if (trigger && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      if (panelOf(trigger) && typeof panelOf(trigger).showPopover === "function") {
        event.preventDefault();
        openMenu(trigger, event.key === "ArrowUp" ? "last" : "first");
      }
      return;
    }
    var panel = target.closest(".menu-panel");
    if (!panel) return;
    var items = menuItems(panel);
    var index = items.indexOf(target);
    var next = null;
    if (event.key === "ArrowDown") next = items[(index + 1) % items.length];
    else if (event.key === "ArrowUp") next = items[(index - 1 + items.length) % items.length];
    else if (event.key === "Home") next = items[0];
    else if (event.key === "End") next = items[items.length - 1];
    else if (event.key === "Escape") {
      event.preventDefault();
      closeMenu(panel, true);
      return;
    } else if (event.key === "Tab") {
      closeMenu(panel, true); // focus back on the button; Tab then moves on from there
      return;
    } else if (event.key === " " && target.tagName === "A") {
      event.preventDefault();
      target.click();
      return;
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });

  // Focus leaving a menu (a click elsewhere) closes it; so does a light dismiss.
  document.addEventListener("focusout", function (event) {
    var panel = event.target.closest && event.target.closest(".menu-panel");
    if (!panel || !isOpen(panel)) return;
    var to = event.relatedTarget;
    if (to && (panel.contains(to) || to === triggerOf(panel))) return;
    if (to) closeMenu(panel, false);
  });
  document.addEventListener(
    "toggle",
    function (event) {
      var panel = event.target;
      if (!panel.classList || !panel.classList.contains("menu-panel")) return;
      var trigger = triggerOf(panel);
      if (trigger) trigger.setAttribute("aria-expanded", event.newState === "open" ? "true" : "false");
      if (event.newState !== "open" && openTrigger === trigger) openTrigger = null;
    },
    true
  );
  function replaceOpenMenu() {
    if (!openTrigger) return;
    var panel = panelOf(openTrigger);
    if (panel && isOpen(panel) && openTrigger.isConnected) place(openTrigger, panel);
  }
  window.addEventListener("resize", replaceOpenMenu);
  document.addEventListener("scroll", replaceOpenMenu, true);

  // ---- tooltips: heartbeat ticks, clipped problems ----------------------------------------
  var tip = null;
  var tipAnchor = null; // { id: element id (a bar or a problem), index: tick index or -1 }
  var beatIndex = {}; // the tick last read in each bar, by the bar's id

  function tipElement() {
    if (!tip) {
      tip = document.createElement("div");
      tip.id = "table-tip";
      tip.className = "table-tip";
      tip.setAttribute("role", "tooltip");
      tip.hidden = true;
      (document.querySelector("main") || document.body).appendChild(tip); // inside a landmark
    }
    return tip;
  }
  function tipText(el) {
    if (el.hasAttribute("title")) {
      el.setAttribute("data-tip", el.getAttribute("title"));
      el.removeAttribute("title"); // no second, native tooltip
    }
    return el.getAttribute("data-tip") || "";
  }
  function showTip(text, rect, owner, index) {
    var box = tipElement();
    box.textContent = text;
    box.hidden = false;
    var width = document.documentElement.clientWidth;
    var height = document.documentElement.clientHeight;
    box.style.left = "0px";
    box.style.top = "0px";
    var w = box.offsetWidth;
    var h = box.offsetHeight;
    var left = Math.min(Math.max(MARGIN, rect.left + rect.width / 2 - w / 2), width - MARGIN - w);
    var top = rect.bottom + 6;
    if (top + h > height - MARGIN) top = Math.max(MARGIN, rect.top - 6 - h);
    box.style.left = Math.round(Math.max(MARGIN, left)) + "px";
    box.style.top = Math.round(top) + "px";
    if (tipAnchor && tipAnchor.id !== owner.id) {
      var before = document.getElementById(tipAnchor.id);
      if (before) {
        before.removeAttribute("aria-describedby");
        markBeat(before, -1);
      }
    }
    tipAnchor = { id: owner.id, index: index };
    owner.setAttribute("aria-describedby", "table-tip");
  }
  function showProblem(problem) {
    showTip(tipText(problem), problem.getBoundingClientRect(), problem, -1);
  }
  function hideTip() {
    if (tip) tip.hidden = true;
    if (tipAnchor) {
      var owner = document.getElementById(tipAnchor.id);
      if (owner) {
        owner.removeAttribute("aria-describedby");
        markBeat(owner, -1);
      }
    }
    tipAnchor = null;
  }
  // A heartbeat bar is one element (a <span> around one SVG); its ticks' tooltips are in its
  // data-ticks attribute, oldest first, and tick i fills the i-th equal slice of its width.
  function ticksOf(bar) {
    // read once per bar (a pointer move asks several times); a refresh draws new bars
    if (!bar.liveTicks) {
      try {
        bar.liveTicks = JSON.parse(bar.getAttribute("data-ticks") || "[]");
      } catch (e) {
        bar.liveTicks = [];
      }
    }
    return bar.liveTicks;
  }
  function markBeat(bar, index) {
    var svg = bar.querySelector("svg");
    if (!svg) return;
    var mark = svg.querySelector(".beat-mark");
    if (index < 0) {
      if (mark) mark.remove();
      return;
    }
    if (!mark) {
      mark = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      mark.setAttribute("class", "beat-mark");
      svg.appendChild(mark);
    }
    var pitch = svg.viewBox.baseVal.width / ticksOf(bar).length;
    mark.setAttribute("x", index * pitch + 0.5);
    mark.setAttribute("y", 0.5);
    mark.setAttribute("width", pitch - 1);
    mark.setAttribute("height", 19);
  }
  function showBeat(bar, index, pointed) {
    var ticks = ticksOf(bar);
    if (!ticks.length) return;
    index = Math.max(0, Math.min(ticks.length - 1, index));
    if (!pointed) beatIndex[bar.id] = index; // the keyboard's place; the pointer's is its own
    markBeat(bar, index);
    var box = (bar.querySelector("svg") || bar).getBoundingClientRect();
    var slice = box.width / ticks.length;
    var rect = { left: box.left + index * slice, width: slice, top: box.top, bottom: box.bottom };
    showTip(ticks[index], rect, bar, index);
  }
  function beatUnder(bar, event) {
    var box = (bar.querySelector("svg") || bar).getBoundingClientRect();
    var count = ticksOf(bar).length;
    return Math.max(0, Math.min(count - 1, Math.floor(((event.clientX - box.left) / box.width) * count)));
  }

  document.addEventListener("mousemove", function (event) {
    var el = event.target;
    if (!el.closest) return;
    var bar = el.closest(".beats");
    if (bar) {
      var index = beatUnder(bar, event);
      if (!tipAnchor || tipAnchor.id !== bar.id || tipAnchor.index !== index) showBeat(bar, index, true);
      return;
    }
    var problem = el.closest(".problem");
    if (problem && (!tipAnchor || tipAnchor.id !== problem.id)) showProblem(problem);
  });
  document.addEventListener("mouseout", function (event) {
    var el = event.target;
    if (!el.closest || !tipAnchor) return;
    var owner = el.closest(".beats, .problem");
    if (!owner || (event.relatedTarget && owner.contains(event.relatedTarget))) return;
    if (document.activeElement === owner) return; // focus keeps it
    hideTip();
  });
  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el.classList && el.classList.contains("beats")) {
      var index = beatIndex[el.id];
      showBeat(el, index === undefined ? ticksOf(el).length - 1 : index);
    } else if (el.classList && el.classList.contains("problem")) {
      showProblem(el);
    }
  });
  document.addEventListener("focusout", function (event) {
    var el = event.target;
    if (el.classList && (el.classList.contains("beats") || el.classList.contains("problem"))) {
      hideTip();
    }
  });
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === "Escape" && tipAnchor && tip && !tip.hidden) {
      hideTip(); // dismissible without moving the pointer or the focus
      return;
    }
    if (!el.classList || !el.classList.contains("beats")) return;
    var count = ticksOf(el).length;
    var index = beatIndex[el.id] === undefined ? count - 1 : beatIndex[el.id];
    var moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: count - 1 };
    if (event.key in moves) {
      event.preventDefault();
      showBeat(el, moves[event.key]);
    }
  });
  // After a refresh the anchor is a new element: show the tooltip on it again (its text may
  // have changed), or hide it when its row is gone.
  function reanchorTip() {
    if (!tipAnchor || !tip || tip.hidden) return;
    var owner = document.getElementById(tipAnchor.id);
    if (!owner) return hideTip();
    var shown = document.activeElement === owner || owner.matches(":hover");
    if (!shown) hideTip();
    else if (tipAnchor.index >= 0) showBeat(owner, tipAnchor.index, document.activeElement !== owner);
    else showProblem(owner);
  }

  // ---- filter dropdowns --------------------------------------------------------------------
  function dropdowns() {
    return document.querySelectorAll("details.dropdown");
  }
  function updateDropdownCounts() {
    dropdowns().forEach(function (dropdown) {
      var count = dropdown.querySelector(".dd-count");
      if (!count) return;
      var n = dropdown.querySelectorAll('input[type="checkbox"]:checked').length;
      var radio = dropdown.querySelector('input[type="radio"]:checked');
      if (radio && radio.value) n = 1;
      count.hidden = !n;
      count.firstChild.nodeValue = String(n);
    });
  }
  document.addEventListener(
    "toggle",
    function (event) {
      var dropdown = event.target;
      if (!dropdown.classList || !dropdown.classList.contains("dropdown") || !dropdown.open) return;
      dropdowns().forEach(function (other) {
        if (other !== dropdown) other.open = false;
      });
      var panel = dropdown.querySelector(".dropdown-panel");
      panel.classList.remove("to-left");
      if (panel.getBoundingClientRect().right > document.documentElement.clientWidth - MARGIN) {
        panel.classList.add("to-left");
      }
    },
    true
  );
  document.addEventListener("click", function (event) {
    dropdowns().forEach(function (dropdown) {
      if (dropdown.open && !dropdown.contains(event.target)) dropdown.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !event.target.closest) return;
    var dropdown = event.target.closest("details.dropdown[open]");
    if (dropdown) {
      dropdown.open = false;
      dropdown.querySelector("summary").focus();
    }
  });
  document.addEventListener("focusout", function (event) {
    var dropdown = event.target.closest && event.target.closest("details.dropdown[open]");
    if (dropdown && event.relatedTarget && !dropdown.contains(event.relatedTarget)) dropdown.open = false;
  });

  // The form shows what the table shows after a chip, a summary link, a sort, a page or the
  // history changed it (never after a poll: the user may be changing the form right then).
  function syncFilters() {
    var r = region();
    var form = document.getElementById("filters");
    if (!r || !form || !r.dataset.filters) return;
    var active;
    try {
      active = JSON.parse(r.dataset.filters);
    } catch (e) {
      return;
    }
    // each filter's values as a list, [] when not set: a missing one is "", never undefined
    function first(name) {
      var values = active[name];
      return values && values.length ? String(values[0]) : "";
    }
    ["status", "kind", "environment", "tag", "location"].forEach(function (name) {
      var values = active[name] || [];
      form.querySelectorAll('input[name="' + name + '"]').forEach(function (box) {
        box.checked = values.indexOf(box.value) >= 0;
      });
    });
    var managed = first("managed");
    var radios = form.querySelectorAll('input[name="managed"]');
    var matched = false;
    radios.forEach(function (radio) {
      radio.checked = radio.value === managed;
      matched = matched || radio.checked;
    });
    if (!matched && radios.length) radios[0].checked = true;
    var q = form.elements.q;
    if (q && document.activeElement !== q) q.value = first("q");
    var perPage = form.elements.per_page;
    var size = first("per_page");
    if (perPage && size && perPage.querySelector('option[value="' + size + '"]')) perPage.value = size;
    if (form.elements.sort) form.elements.sort.value = first("sort");
    var dependsOn = form.querySelector('input[name="depends_on"]');
    var parent = first("depends_on");
    if (dependsOn && !parent) dependsOn.remove();
    else if (parent) {
      if (!dependsOn) {
        dependsOn = document.createElement("input");
        dependsOn.type = "hidden";
        dependsOn.name = "depends_on";
        form.appendChild(dependsOn);
      }
      dependsOn.value = parent;
    }
    updateDropdownCounts();
  }

  // A box whose text must not stay once sent (a pasted kubeconfig's tokens): the page keeps it
  // across an answer that refuses it (hx-preserve), and empties it once one accepted it.
  document.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 200) return;
    document.querySelectorAll("[data-empty-after-success]").forEach(function (box) {
      box.value = "";
    });
  });

  // A picker's list is replaced by each search: the options chosen before stay chosen (put
  // back at the top), so a multiple choice can gather connections from several searches.
  var pickerChosen = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.matches || !target.matches(".picker select")) return;
    pickerChosen[target.id] = Array.prototype.filter
      .call(target.options, function (o) {
        return o.selected && o.value;
      })
      .map(function (o) {
        return [o.value, o.textContent];
      });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var chosen = target && pickerChosen[target.id];
    if (!chosen) return;
    delete pickerChosen[target.id];
    chosen.reverse().forEach(function (pair) {
      var option = target.querySelector('option[value="' + CSS.escape(pair[0]) + '"]');
      if (!option) {
        option = new Option(pair[1], pair[0]);
        target.insertBefore(option, target.firstChild);
      }
      option.selected = true;
    });
  });

  var syncAfterSwap = false;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.tagName === "A" && elt.closest("#table-region, #filter-chips")) syncAfterSwap = true;
  });
  document.addEventListener("htmx:afterSwap", function () {
    restoreSelection();
    if (syncAfterSwap) {
      syncAfterSwap = false;
      syncFilters();
    }
    reanchorTip();
  });
  document.addEventListener("htmx:historyRestore", function () {
    restoreSelection();
    syncFilters();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      // Show refusals (4xx) too: the server sends their message in the response.
      var rules = htmx.config.responseHandling;
      var has = rules.some(function (rule) {
        return rule.code === "4..";
      });
      if (!has) {
        var at = rules.findIndex(function (rule) {
          return rule.error;
        });
        rules.splice(at < 0 ? rules.length : at, 0, { code: "4..", swap: true, error: false });
      }
    }
    restoreSelection();
    updateDropdownCounts();
  });
})();
