"use strict";
(function () {
  // Search as History.search does it (aigate_nb/browse.py): every term must start a word of
  // the prompt, the model id or the number, ignoring case and accents; a quoted part is one term.
  var UNSPACED = /^[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\u{20000}-\u{3ffff}]/u;
  var WORDY_START = /^[\p{L}\p{N}]/u;
  var WORDY_END = /[\p{L}\p{N}]$/u;

  function fold(text) {
    return text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  }
  function termsOf(query) {
    var found = [], pattern = /"([^"]*)"?|(\S+)/g, match;
    while ((match = pattern.exec(query)) !== null) {
      var term = (match[1] !== undefined ? match[1] : match[2] || "").trim();
      if (term) found.push(fold(term));
    }
    return found;
  }
  function termIn(term, text) {
    var anywhere = !WORDY_START.test(term) || UNSPACED.test(term);
    var start = text.indexOf(term);
    while (start !== -1) {
      if (anywhere || start === 0 || !WORDY_END.test(text.slice(Math.max(0, start - 2), start))) return true;
      start = text.indexOf(term, start + 1);
    }
    return false;
  }

  var search = document.getElementById("q");
  var modelChoice = document.getElementById("model");
  var count = document.getElementById("count");
  var nothing = document.getElementById("nothing");
  var grid = document.getElementById("grid");
  var tree = document.getElementById("tree");
  var dialog = document.getElementById("detail");
  var cards = Array.prototype.slice.call(grid.querySelectorAll(".card"));
  var byIndex = {};
  var shown = {};
  cards.forEach(function (card) {
    card.searchText = fold(card.dataset.search);
    byIndex[card.dataset.i] = card;
    shown[card.dataset.i] = true;
  });

  // -- filtering ---------------------------------------------------------------------------------
  function apply() {
    var terms = termsOf(search.value);
    var model = modelChoice.value;
    var visible = 0;
    cards.forEach(function (card) {
      var ok = (!model || card.dataset.model === model) && terms.every(function (t) { return termIn(t, card.searchText); });
      card.hidden = !ok;
      shown[card.dataset.i] = ok;
      if (ok) visible += 1;
    });
    Array.prototype.forEach.call(tree.children, markLine);
    var all = cards.length + (cards.length === 1 ? " entry" : " entries");
    count.textContent = visible === cards.length ? all : visible + " of " + all;
    nothing.hidden = visible > 0 || cards.length === 0;
    nothing.textContent = "No entry matches " + (search.value.trim() ? "\u201c" + search.value.trim() + "\u201d" : "this model") + ".";
  }
  // In the tree an entry stays, dimmed, while something later in its line or in its branches matches.
  function markLine(line) {
    var later = false;
    var items = Array.prototype.slice.call(line.children).reverse();
    items.forEach(function (item) {
      var inBranches = false;
      item.querySelectorAll(":scope > .fork > .line").forEach(function (branch) {
        if (markLine(branch)) inBranches = true;
      });
      var match = shown[item.dataset.i] === true;
      var keep = match || inBranches || later;
      item.hidden = !keep;
      item.classList.toggle("dim", !match);
      later = keep;
    });
    return later;
  }
  search.addEventListener("input", apply);
  modelChoice.addEventListener("change", apply);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && search.value) { search.value = ""; apply(); event.preventDefault(); }
    if (event.key === "Enter") {
      var first = visibleCards()[0];
      if (first) first.querySelector(".open").focus();
    }
  });
  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (event.key === "/" && !typing && !dialog.open) { search.focus(); event.preventDefault(); }
  });

  // -- views -----------------------------------------------------------------------------------------
  var gridButton = document.getElementById("show-grid");
  var treeButton = document.getElementById("show-tree");
  var treeFilled = false;
  function showView(name) {
    var isTree = name === "tree";
    grid.hidden = isTree;
    tree.hidden = !isTree;
    gridButton.setAttribute("aria-pressed", String(!isTree));
    treeButton.setAttribute("aria-pressed", String(isTree));
    if (isTree && !treeFilled) {
      tree.querySelectorAll(".node").forEach(function (node) { picture(node.querySelector("img"), node.dataset.go); });
      treeFilled = true;
    }
  }
  gridButton.addEventListener("click", function () { showView("grid"); });
  treeButton.addEventListener("click", function () { showView("tree"); });

  // A small copy of an entry's preview: the same data: URL, so the file holds each picture once.
  function picture(img, index) {
    var source = byIndex[index] && byIndex[index].querySelector(".open img");
    if (img && source) img.src = source.src;
  }

  // -- the detail view --------------------------------------------------------------------------------
  var current = null;
  var opener = null;
  function nodeButton(index) {
    var card = byIndex[index];
    var button = document.createElement("button");
    button.type = "button";
    button.className = "node";
    button.dataset.go = index;
    var img = document.createElement("img");
    img.alt = "";
    picture(img, index);
    var number = document.createElement("span");
    number.className = "num";
    number.textContent = "[" + index + "]";
    var text = document.createElement("span");
    text.className = "t";
    text.textContent = card.querySelector(".prompt").textContent;
    button.append(img, number, text);
    return button;
  }
  function open(index) {
    var card = byIndex[index];
    if (!card) return;
    if (!dialog.open) opener = document.activeElement;
    current = String(index);
    document.getElementById("detail-title").textContent = "[" + index + "] " + card.querySelector(".prompt").textContent;
    var pictures = dialog.querySelector(".pictures");
    pictures.replaceChildren();
    var full = card.querySelector("template.full");
    if (full) {
      pictures.append(full.content.cloneNode(true));
    } else {
      var preview = card.querySelector(".open img, .open .gone");
      if (preview) {
        var copy = preview.cloneNode(true);
        copy.removeAttribute("loading");
        pictures.append(copy);
      }
      var extra = card.querySelector("template.extra");
      if (extra) pictures.append(extra.content.cloneNode(true));
    }
    var fields = dialog.querySelector(".fields-here");
    fields.replaceChildren(card.querySelector(".more .fields").cloneNode(true));
    var chain = [];
    var seen = {};
    for (var at = String(index); at !== "" && byIndex[at] && !seen[at]; at = byIndex[at].dataset.parent) {
      seen[at] = true;
      chain.unshift(at);
    }
    var list = dialog.querySelector(".chain ol");
    list.replaceChildren();
    chain.forEach(function (step) {
      var item = document.createElement("li");
      var button = nodeButton(step);
      if (step === current) button.setAttribute("aria-current", "true");
      item.append(button);
      list.append(item);
    });
    var children = cards.filter(function (other) { return other.dataset.parent === current; });
    var forks = dialog.querySelector(".forks");
    forks.hidden = children.length === 0;
    var branches = forks.querySelector("ul");
    branches.replaceChildren();
    children.forEach(function (child) {
      var item = document.createElement("li");
      item.append(nodeButton(child.dataset.i));
      branches.append(item);
    });
    if (!dialog.open) dialog.showModal();
    dialog.querySelector(".dialog-body").scrollTop = 0;
  }
  function visibleCards() {
    return cards.filter(function (card) { return !card.hidden; });
  }
  function step(by) {
    var list = visibleCards();
    if (!list.length) return;
    var at = list.indexOf(byIndex[current]);
    var next = list[(at + by + list.length) % list.length];
    open(next.dataset.i);
  }
  document.getElementById("prev").addEventListener("click", function () { step(-1); });
  document.getElementById("next").addEventListener("click", function () { step(1); });
  document.getElementById("close").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") { step(-1); event.preventDefault(); }
    if (event.key === "ArrowRight") { step(1); event.preventDefault(); }
  });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) dialog.close();  // a click on the backdrop
  });
  dialog.addEventListener("close", function () {
    if (opener && document.contains(opener)) opener.focus();
  });
  // Every link to an entry ("from [1]", a lineage step, a tree node) opens it here.
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-go]");
    if (target) {
      event.preventDefault();
      open(target.dataset.go);
      return;
    }
    var card = event.target.closest(".open");
    if (card) open(card.closest(".card").dataset.i);
  });

  apply();
  var linked = /^#e(\d+)$/.exec(location.hash);
  if (linked) open(linked[1]);
})();
