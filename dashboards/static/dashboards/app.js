// Observatory dashboards: charts from the page's JSON island, and small form conveniences.
// No inline scripts anywhere: the Content-Security-Policy allows scripts from our origin only.
(function () {
  "use strict";

  function drawCharts() {
    var island = document.getElementById("chart-data");
    if (!island || !window.Plotly) return;
    var figures = JSON.parse(island.textContent);
    // No mode bar: it styles itself through per-chart <style> elements, which the CSP refuses.
    // Dragging still zooms, and a double click zooms back out.
    var config = {displayModeBar: false, responsive: true};
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var figure = figures[element.dataset.chart];
      if (figure) window.Plotly.newPlot(element, figure.data, figure.layout, config);
    });
  }

  function rangeForms() {
    document.querySelectorAll("[data-range-form]").forEach(function (form) {
      var select = form.querySelector("[data-range-select]");
      var custom = form.querySelector("[data-custom-range]");
      if (select && custom) {
        select.addEventListener("change", function () {
          var isCustom = select.value === "custom";
          custom.classList.toggle("hidden", !isCustom);
          if (!isCustom) form.requestSubmit();
        });
      }
      form.querySelectorAll("[data-autosubmit]").forEach(function (field) {
        field.addEventListener("change", function () { form.requestSubmit(); });
      });
      // Empty fields would only clutter the shared URL.
      form.addEventListener("submit", function () {
        form.querySelectorAll("input, select").forEach(function (field) {
          if (field.name && field.value === "") field.disabled = true;
        });
        if (custom && custom.classList.contains("hidden")) {
          custom.querySelectorAll("input").forEach(function (field) { field.disabled = true; });
        }
      });
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.querySelector(button.dataset.copy);
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent.trim()).then(function () { button.textContent = "Copied"; });
        }
      });
    });
  }

  // Fields emptied out of the URL on submit come back when the browser restores the page.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("[data-range-form] [disabled]").forEach(function (field) { field.disabled = false; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    rangeForms();
    confirmations();
    copyButtons();
  });
  // plotly.js is deferred after this script; charts wait until everything has loaded.
  window.addEventListener("load", drawCharts);
})();
