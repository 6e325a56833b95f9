// Draws every <div data-chart="ID"> with the ECharts options in the JSON script #ID
// (templates/partials/_chart.html); no inline script and no eval (CSP, htmx allowEval
// off), so options carry data and string formatters only. A data item or series with a
// "url" is a drill-down: clicking it opens the customers behind the figure.
(function () {
  "use strict";
  // Charts drawn so far: those swapped out by htmx (a polled fragment, the live board)
  // are disposed, so a page that refreshes its charts for hours does not pile them up.
  let drawn = [];
  function prune() {
    drawn = drawn.filter(function (chart) {
      if (chart.getDom().isConnected) return true;
      chart.dispose();
      return false;
    });
  }
  function draw(root) {
    prune();
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      const source = document.getElementById(el.dataset.chart);
      if (!source || !window.echarts) return;
      const chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(source.textContent));
      chart.on("click", function (params) {
        const url = params.data && params.data.url;
        if (typeof url === "string" && url.startsWith("/")) window.location.assign(url);
      });
      el.dataset.drawn = "1";
      drawn.push(chart);
    });
  }
  window.addEventListener("resize", function () {
    drawn.forEach(function (chart) { chart.resize(); });
  });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
