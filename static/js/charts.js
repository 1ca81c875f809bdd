// Charts drawn with the vendored Chart.js from JSON blocks on the page, never from inline script (our CSP forbids it).
// A <canvas data-chart-source="ID"> is drawn from <script type="application/json" id="ID">. When HTMX swaps in a
// fresh JSON block (the dashboard polls every few seconds), the existing chart is updated in place, without
// animation, so the canvas never flickers.
(function () {
  "use strict";

  const COLOURS = {
    targeted: "#64748b",
    sent: "#0f766e",
    delivered: "#2563eb",
    read: "#16a34a",
    replied: "#7c3aed",
    failed: "#dc2626",
    skipped: "#d97706",
  };
  const drawn = new Map(); // canvas id -> {chart, json}

  function configureDefaults() {
    const defaults = window.Chart.defaults;
    defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
    defaults.color = "#475569";
    defaults.animation = false; // updates every few seconds must not replay an animation
    defaults.maintainAspectRatio = false; // the .chart-box CSS class sets the height
    defaults.responsive = true;
  }

  function numberFormat(value) {
    return Number(value).toLocaleString();
  }

  function byDataset(a, b) {
    return a.datasetIndex - b.datasetIndex;
  }

  function seriesConfig(data) {
    return {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.datasets.map((set) => ({
          label: set.label,
          data: set.data,
          borderColor: COLOURS[set.key],
          // Sent is a light area behind the other lines: delivered usually matches it and would hide under it.
          backgroundColor: set.key === "sent" ? "rgba(15, 118, 110, 0.12)" : COLOURS[set.key],
          fill: set.key === "sent",
          order: set.key === "sent" ? 10 : 0,
          borderWidth: set.key === "sent" ? 1.5 : 2,
          pointRadius: data.labels.length > 40 ? 0 : 3,
          pointBackgroundColor: COLOURS[set.key],
          pointHoverRadius: 4,
          tension: 0.25,
        })),
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: {
          // Listed in the data's order (sent, delivered, read, failed), not the drawing order.
          legend: { position: "bottom", labels: { usePointStyle: true, boxHeight: 8, sort: byDataset } },
          tooltip: {
            itemSort: byDataset,
            callbacks: { label: (item) => `${item.dataset.label}: ${numberFormat(item.parsed.y)}` },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { autoSkip: true, maxTicksLimit: 12, maxRotation: 0 } },
          y: { beginAtZero: true, ticks: { precision: 0, callback: numberFormat }, grid: { color: "#e2e8f0" } },
        },
      },
    };
  }

  function funnelConfig(data) {
    const set = data.datasets[0];
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: set.label,
          data: set.data,
          backgroundColor: set.keys.map((key) => COLOURS[key]),
          borderRadius: 4,
          barPercentage: 0.8,
        }],
      },
      options: {
        indexAxis: "y",
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${numberFormat(item.parsed.x)} recipients` } },
        },
        scales: {
          x: { beginAtZero: true, ticks: { precision: 0, callback: numberFormat }, grid: { color: "#e2e8f0" } },
          y: { grid: { display: false } },
        },
      },
    };
  }

  const BUILDERS = { series: seriesConfig, funnel: funnelConfig };

  function sourceText(canvas) {
    const source = document.getElementById(canvas.dataset.chartSource);
    return source ? source.textContent : null;
  }

  function draw(canvas) {
    const json = sourceText(canvas);
    if (!json) {
      return;
    }
    const known = drawn.get(canvas.id);
    if (known && known.chart.canvas === canvas) {
      if (known.json !== json) {
        update(known.chart, JSON.parse(json));
        known.json = json;
      }
      return;
    }
    const data = JSON.parse(json);
    const build = BUILDERS[data.kind];
    if (build) {
      drawn.set(canvas.id, { chart: new window.Chart(canvas, build(data)), json: json });
    }
  }

  function update(chart, data) {
    const fresh = BUILDERS[data.kind](data).data;
    chart.data.labels = fresh.labels;
    fresh.datasets.forEach((set, index) => {
      if (chart.data.datasets[index]) {
        chart.data.datasets[index].data = set.data;
      }
    });
    chart.update("none");
  }

  function drawAll() {
    if (!window.Chart) {
      return;
    }
    document.querySelectorAll("canvas[data-chart-source]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (window.Chart) {
      configureDefaults();
    }
    drawAll();
  });
  document.addEventListener("htmx:afterSettle", drawAll);
  document.addEventListener("htmx:oobAfterSwap", drawAll);
})();
