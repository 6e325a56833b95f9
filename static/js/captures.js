/* The station captures' panels (handover/onsite/captures/*.html) sit in the station
   page's queue, which htmx re-reads every few seconds. A re-read while the clerk is
   typing, or while the owner is signing, would wipe the panel: so a request that would
   swap a panel being edited (focused, or changed since it was drawn) is skipped (GET
   requests only: the clerk's own posts go); polling resumes once the panel was saved. */
(function () {
  "use strict";
  if (window.kehuCapturePanels) return;
  window.kehuCapturePanels = true;

  function panelOf(node) {
    return node && node.closest ? node.closest("[data-capture-panel]") : null;
  }

  function markDirty(event) {
    var panel = panelOf(event.target);
    if (panel) panel.dataset.dirty = "1";
  }

  function busy(root) {
    var panels = root.querySelectorAll ? root.querySelectorAll("[data-capture-panel]") : [];
    for (var i = 0; i < panels.length; i++) {
      if (panels[i].dataset.dirty === "1" || panels[i].contains(document.activeElement)) {
        return true;
      }
    }
    return false;
  }

  document.addEventListener("input", markDirty, true);
  document.addEventListener("change", markDirty, true);
  document.addEventListener("pointerdown", function (event) {
    if (event.target.matches && event.target.matches("canvas[data-signature-pad]")) {
      markDirty(event);
    }
  }, true);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var config = event.detail.requestConfig || {};
    if ((config.verb || "").toLowerCase() !== "get") return; // a post is the clerk's own
    var source = event.detail.elt;
    if (panelOf(source)) return;
    var target = event.detail.target;
    if (busy(source) || (target && target !== source && busy(target))) {
      event.preventDefault();
    }
  });
})();
