// Draws every <div data-chart="ID"> with the ECharts options in the JSON script #ID
// (templates/partials/_chart.html); no inline script and no eval (CSP, htmx allowEval
// off), so options carry data and string formatters only. A data item or series with a
// "url" is a drill-down: clicking it opens the customers behind the figure.
(function () {
  "use strict";
  function draw(root) {
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
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
