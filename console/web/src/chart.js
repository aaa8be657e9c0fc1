// The console's only script: it draws the settlement chart (gross, fees
// and net per day) from the JSON the page embeds, with uPlot. Without it
// the page still shows the same numbers as a table.
import uPlot from "uplot";

const colors = { gross: "#2563eb", fees: "#d97706", net: "#059669" };

// data: {"currency": "CNY", "days": ["2026-11-01", …], "gross": ["12.34", …], "fees": […], "net": […]}
function draw(el, data) {
  const xs = data.days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
  const num = (a) => a.map((v) => Number(v)); // display only: the table has the exact amounts
  const series = [
    {},
    { label: "gross", stroke: colors.gross, width: 2 },
    { label: "fees", stroke: colors.fees, width: 2 },
    { label: "net", stroke: colors.net, width: 2, fill: "rgba(5,150,105,0.08)" },
  ];
  const width = () => Math.max(260, el.clientWidth);
  const plot = new uPlot(
    {
      width: width(),
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      series,
      axes: [{}, { label: data.currency, size: 70 }],
      scales: { x: { time: true } },
      legend: { live: true },
    },
    [xs, num(data.gross), num(data.fees), num(data.net)],
    el,
  );
  addEventListener("resize", () => plot.setSize({ width: width(), height: 240 }));
  el.dataset.drawn = "true";
}

function start() {
  for (const el of document.querySelectorAll("[data-chart]")) {
    const src = document.getElementById(el.dataset.chart);
    if (src) draw(el, JSON.parse(src.textContent));
  }
  document.body.dataset.chartReady = "true";
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
