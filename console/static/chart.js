// A small SVG line chart: a few series over time, one y axis from 0, the
// last value of each series in the legend.  No markup strings: every node
// is made with createElementNS and every label is text.

const NS = "http://www.w3.org/2000/svg";
const W = 480, H = 150, L = 44, R = 8, T = 8, B = 20;
const COLORS = ["#1f5fbf", "#c0392b", "#2e7d32", "#8e44ad", "#d35400", "#00838f", "#6d4c41", "#546e7a"];

function svg(tag, attrs, textContent) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (textContent !== undefined) n.textContent = textContent;
  return n;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function label(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function hhmm(ms) {
  const d = new Date(ms);
  return String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
}

// Draws into container (replacing what it held).  series: [{name, points:
// [[t_ms, value], ...]}]; a null value is a gap.  opts.title, opts.unit.
export function lineChart(container, series, opts = {}) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                            "aria-label": opts.title || "chart" });
  let tmin = Infinity, tmax = -Infinity, vmax = 0;
  for (const s of series) {
    for (const [t, v] of s.points) {
      if (t < tmin) tmin = t;
      if (t > tmax) tmax = t;
      if (v !== null && v > vmax) vmax = v;
    }
  }
  const legend = document.createElement("ul");
  legend.className = "legend";
  if (!Number.isFinite(tmin)) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no samples yet"));
    container.replaceChildren(root, legend);
    return;
  }
  if (tmax === tmin) tmax = tmin + 1000;
  const ymax = niceMax(vmax);
  const x = (t) => L + ((t - tmin) / (tmax - tmin)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);

  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", class: "tick" }, label(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = tmin + ((tmax - tmin) * i) / 4;
    root.append(svg("text", { x: x(t), y: H - 5, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle",
                              class: "tick" }, hhmm(t)));
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      d += (pen ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
      pen = true;
    }
    if (d) root.append(svg("path", { d, stroke: color, class: "line" }));
    const last = [...s.points].reverse().find((p) => p[1] !== null && p[1] !== undefined);
    const item = document.createElement("li");
    const key = document.createElement("span");
    key.className = "swatch";
    key.dataset.color = String(i % COLORS.length);
    const name = document.createElement("span");
    name.textContent = s.name;
    const val = document.createElement("span");
    val.className = "num";
    val.textContent = last ? label(last[1]) + (opts.unit || "") : "–";
    item.append(key, name, val);
    legend.append(item);
  });
  container.replaceChildren(root, legend);
}
