// Charts of metric series (uPlot): each <figure class="chart"> reads its series from the
// server, downsampled; zooming in (drag across the plot) reads the zoomed steps again, exactly
// once few enough; a double click zooms back out.
"use strict";

const POINTS = 1000;
// Steps are whole numbers: their axis is never ticked at 0.5.
const STEP_TICKS = [1, 2, 5].flatMap((m) => Array.from({ length: 10 }, (_, e) => m * 10 ** e))
  .sort((a, b) => a - b);
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

async function series(url, run, key, range) {
  const query = new URLSearchParams({ run, key, points: String(POINTS) });
  if (range) {
    query.set("from", String(Math.floor(range[0])));
    query.set("to", String(Math.ceil(range[1])));
  }
  const answer = await fetch(`${url}?${query}`, { headers: { Accept: "application/json" } });
  if (!answer.ok) {
    let message = `${answer.status} ${answer.statusText}`;
    try { message = (await answer.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return answer.json();
}

// An axis value, short and never rounded to nothing: 0.00335 stays 0.00335, 1e-5 reads 1e-5.
function short(value) {
  if (value == null) return "";
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1e5 || size < 1e-3) return value.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(4)));
}

// An x range around a lone step (or time): uPlot would otherwise stretch one point over 0-100.
function around(pad) {
  return (u, min, max) => {
    const xs = u.data[0];
    const lone = xs.length > 0 && xs.every((x) => x === xs[0]);
    return lone ? [xs[0] - pad, xs[0] + pad] : [min, max];
  };
}

// A y range around values that never change: uPlot would draw a rate that stays 0 on 0-100.
function level(u, min, max) {
  if (min == null || min !== max) return uPlot.rangeNum(min, max, 0.1, true);
  return min === 0 ? [0, 1] : [min - Math.abs(min) / 10, max + Math.abs(max) / 10];
}

// Several series on one x axis: the union of their steps, a gap where one has no value.
function aligned(parts) {
  const steps = [...new Set(parts.flatMap((p) => p.steps))].sort((a, b) => a - b);
  const columns = parts.map((p) => {
    const at = new Map(p.steps.map((s, i) => [s, p.values[i]]));
    return steps.map((s) => (at.has(s) ? at.get(s) : null));
  });
  return [steps, ...columns];
}

async function draw(figure) {
  const plot = figure.querySelector(".plot");
  const url = figure.dataset.series;
  const key = figure.dataset.key;
  const runs = figure.dataset.runs ? JSON.parse(figure.dataset.runs) : [figure.dataset.run];
  const names = figure.dataset.names ? JSON.parse(figure.dataset.names) : [key];
  const load = (range) => Promise.all(runs.map((run) => series(url, run, key, range)));
  let chart;
  try {
    const parts = await load(null);
    const width = Math.max(280, plot.clientWidth || 420);
    const options = {
      width,
      height: 220,
      scales: { x: { time: false, range: around(1) }, y: { range: level } },
      axes: [{ label: "step", incrs: STEP_TICKS }, { size: 64, values: (u, splits) => splits.map(short) }],
      series: [{ label: "step" }, ...names.map((name, i) => ({
        label: name, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: runs.length > 1,
        value: (u, v) => short(v),
      }))],
      hooks: {
        setSelect: [async (u) => {
          if (u.select.width < 2) return;
          const range = [u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x")];
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          const zoomed = await load(range);
          u.setData(aligned(zoomed));
          figure.dataset.exact = String(zoomed.every((p) => p.exact));
          figure.dataset.zoomed = String(Number(figure.dataset.zoomed || 0) + 1);
        }],
      },
      cursor: { drag: { x: true, y: false, setScale: false } },
    };
    chart = new uPlot(options, aligned(parts), plot);
    figure.uplot = chart;
    figure.dataset.exact = String(parts.every((p) => p.exact));
    figure.dataset.points = String(parts.reduce((n, p) => n + p.steps.length, 0));
    plot.addEventListener("dblclick", async () => {
      const whole = await load(null);
      chart.setData(aligned(whole));
      figure.dataset.exact = String(whole.every((p) => p.exact));
      figure.dataset.zoomed = "0";
    });
    figure.classList.add("ready");
  } catch (error) {
    plot.textContent = `This chart could not be drawn: ${error.message}`;
    plot.classList.add("error");
    figure.classList.add("ready");
  }
}

// A chart whose data is in the page (data-inline: {x, series: [{label, values, dash}]}), on a
// time axis when data-time is set: a monitor's values against their thresholds.
function drawInline(figure) {
  const plot = figure.querySelector(".plot");
  const data = JSON.parse(figure.dataset.inline);
  const time = figure.dataset.time === "true";
  const pad = time ? 60 : 1;
  figure.dataset.points = String(data.x.length);
  if (data.x.length === 1) {
    // One value: its thresholds still draw as lines across the plot, not as hidden points.
    const [x] = data.x;
    data.x = [x - pad, x, x + pad];
    data.series.forEach((s) => {
      const [v] = s.values;
      s.values = s.dash ? [v, v, v] : [null, v, null];
    });
  }
  const options = {
    width: Math.max(280, plot.clientWidth || 420),
    height: 200,
    padding: [null, time ? 28 : null, null, null],  // the last time label stays inside the box
    scales: { x: { time }, y: { range: level } },
    axes: [{}, { size: 64, values: (u, splits) => splits.map(short) }],
    series: [{ label: time ? "time" : "x" }, ...data.series.map((s, i) => ({
      label: s.label, stroke: s.dash ? "#9ca3af" : COLOURS[i % COLOURS.length], width: 1.5,
      dash: s.dash ? [6, 4] : undefined, points: { show: !s.dash }, spanGaps: true,
      value: (u, v) => short(v),
    }))],
  };
  figure.uplot = new uPlot(options, [data.x, ...data.series.map((s) => s.values)], plot);
  figure.classList.add("ready");
}

function drawAll(root) {
  root.querySelectorAll("figure.chart:not(.ready)").forEach((figure) => {
    if (figure.dataset.inline) drawInline(figure); else draw(figure);
  });
}

// A graph wider than its box opens scrolled to the node it is about, not to its far left.
function centreGraphs(root) {
  root.querySelectorAll(".graph").forEach((box) => {
    const node = box.querySelector(".node.root rect");
    if (!node || box.scrollWidth <= box.clientWidth) return;
    const middle = node.x.baseVal.value + node.width.baseVal.value / 2;
    box.scrollLeft = middle - box.clientWidth / 2;
  });
}

// A column of numbers is headed on the right, over its numbers (cells say so: td.num).
function alignHeaders(root) {
  root.querySelectorAll("table.grid").forEach((table) => {
    const heads = table.tHead?.rows[0]?.cells;
    const rows = table.tBodies[0]?.rows;
    if (!heads || !rows?.length) return;
    [...heads].forEach((head, i) => {
      const cells = [...rows].map((row) => row.cells[i]).filter(Boolean);
      if (cells.length && cells.every((cell) => cell.classList.contains("num"))) {
        head.classList.add("num");
      }
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawAll(document);
  centreGraphs(document);
  alignHeaders(document);
});
document.addEventListener("htmx:afterSwap", (event) => {
  drawAll(event.target);
  alignHeaders(document);
});
// An error answer to an htmx request is shown where the answer would have gone.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status >= 400) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
