/* The acceptance signature (签收确认): the owner draws on a canvas with a finger,
   stylus or mouse; on submit the drawing goes as a PNG data URL in the hidden
   input. No library. Each pad is set up once (also after an htmx swap). */
(function () {
  "use strict";
  // The station page's partial may be inserted again by htmx: set up once.
  if (window.kehuSignaturePads) return;
  window.kehuSignaturePads = true;

  function setUp(canvas) {
    if (canvas.dataset.ready) return;
    canvas.dataset.ready = "1";
    var form = canvas.closest("form");
    var input = form.querySelector("[data-signature-input]");
    var clear = form.querySelector("[data-signature-clear]");
    var ctx = canvas.getContext("2d");
    var drawing = false;
    var drawn = false;

    function fit() {
      var ratio = Math.min(window.devicePixelRatio || 1, 2);
      var width = canvas.clientWidth || 600;
      var height = canvas.clientHeight || 200;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.lineWidth = 2.5;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.strokeStyle = "#111";
      drawn = false;
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    }

    canvas.style.touchAction = "none";
    canvas.addEventListener("pointerdown", function (event) {
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      var p = point(event);
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
      ctx.lineTo(p.x + 0.1, p.y + 0.1);
      ctx.stroke();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = point(event);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () { drawing = false; });
    });
    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        drawn = false;
        input.value = "";
      });
    }
    form.addEventListener("submit", function () {
      input.value = drawn ? canvas.toDataURL("image/png") : "";
    }, true);
    // htmx reads the form's values at its own submit handler: set them first.
    form.addEventListener("htmx:configRequest", function (event) {
      var value = drawn ? canvas.toDataURL("image/png") : "";
      input.value = value;
      event.detail.parameters.signature = value;
    });
    fit();
  }

  function setUpAll(root) {
    (root || document).querySelectorAll("canvas[data-signature-pad]").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () { setUpAll(document); });
  document.addEventListener("htmx:load", function (event) { setUpAll(event.target); });
  if (document.readyState !== "loading") setUpAll(document);
})();
