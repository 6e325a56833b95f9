// Kehu's only script besides htmx and Bootstrap: confirmation before destructive actions.
// Any button or link with data-confirm asks first; no inline scripts anywhere (CSP).
document.addEventListener("click", function (event) {
  const trigger = event.target.closest("[data-confirm]");
  if (trigger && !window.confirm(trigger.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// A header checkbox with data-check-all="<name>" ticks every checkbox of that name
// in its form (the scope page's "select this page").
document.addEventListener("change", function (event) {
  const all = event.target.closest("[data-check-all]");
  if (!all || !all.form) return;
  all.form.querySelectorAll('input[type="checkbox"][name="' + all.dataset.checkAll + '"]')
    .forEach(function (box) { box.checked = all.checked; });
});
