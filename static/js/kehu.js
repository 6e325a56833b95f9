// Kehu's only script besides htmx and Bootstrap: confirmation before destructive actions.
// Any button or link with data-confirm asks first; no inline scripts anywhere (CSP).
document.addEventListener("click", function (event) {
  const trigger = event.target.closest("[data-confirm]");
  if (trigger && !window.confirm(trigger.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
