// The pipeline board (deals/pipeline.html): drag a deal card onto another stage's column.
// The move is an htmx POST with the card's version (a stale card gets "已被他人修改");
// the answer swaps the two columns it touched (hx-swap-oob). Keyboard users have the
// ← / → buttons on each card, which post the same form. No inline scripts (CSP).
(function () {
  "use strict";
  let dragged = null;

  function board() {
    return document.querySelector("[data-move-url-template]");
  }

  document.addEventListener("dragstart", function (event) {
    const card = event.target.closest && event.target.closest(".deal-card[draggable=true]");
    if (!card) return;
    dragged = card;
    card.classList.add("opacity-50");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.deal);
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("opacity-50");
    dragged = null;
    document.querySelectorAll(".deal-drop.drop-target").forEach(function (zone) {
      zone.classList.remove("drop-target");
    });
  });

  document.addEventListener("dragover", function (event) {
    const zone = event.target.closest && event.target.closest(".deal-drop");
    if (!zone || !dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    zone.classList.add("drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    const zone = event.target.closest && event.target.closest(".deal-drop");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("drop-target");
  });

  document.addEventListener("drop", function (event) {
    const zone = event.target.closest && event.target.closest(".deal-drop");
    const root = board();
    if (!zone || !root) return;
    event.preventDefault();
    zone.classList.remove("drop-target");
    const id = event.dataTransfer.getData("text/plain");
    const card = document.getElementById("deal-" + id);
    if (!card || card.closest(".deal-drop") === zone) return;
    const values = { stage: zone.dataset.stage, version: card.dataset.version };
    const filters = document.getElementById("board-filters");
    if (filters) {
      new FormData(filters).forEach(function (value, key) { values[key] = value; });
    }
    const url = root.dataset.moveUrlTemplate.replace("/0/", "/" + encodeURIComponent(id) + "/");
    card.classList.add("opacity-50");
    window.htmx.ajax("POST", url, { source: card, values: values, swap: "none" });
  });
})();
