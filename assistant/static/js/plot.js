// Training curves as inline SVG: drawn in the page from the history the API stores, so the
// web tier needs no plotting library and the marks stay real DOM that tests can read.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 480;
const HEIGHT = 250;
const MARGIN = { top: 26, right: 14, bottom: 34, left: 54 };
const NOT_METRICS = new Set(["epoch", "step", "lr", "learning_rate"]);
const RUN_STYLES = 6;  // colours for experiments, run-0 ... run-5 in chat.css

function s(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** A finite number, or null for a gap (missing, NaN, inf: the API spells them "nan", "inf"). */
const finite = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** Three significant digits, or scientific notation for very large and very small numbers. */
function formatNumber(value) {
  const size = Math.abs(value);
  if (value !== 0 && (size >= 1e4 || size < 1e-3)) return value.toExponential(1).replace("e+", "e");
  return String(Number(value.toPrecision(3)));
}

function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

/** Round ticks, each labelled with as many decimals as the step between them needs. */
function linearTicks(low, high) {
  const step = niceStep(high - low, 4);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    const size = Math.abs(t);
    ticks.push({ value: t, label: size >= 1e4 || (decimals > 4 && size > 0) ? formatNumber(t) : t.toFixed(decimals) });
  }
  return ticks;
}

/** The y scale of one panel: linear, or log10 when positive values span more than three decades. */
function yScale(values) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  const log = low > 0 && high / low > 1000;
  if (log) {
    [low, high] = [Math.floor(Math.log10(low)), Math.ceil(Math.log10(high))];
  } else {
    // At least 5% of the values' size, so that a flat curve looks flat rather than zoomed-in noise.
    const span = Math.max(high - low, Math.max(Math.abs(low), Math.abs(high)) * 0.05) || 1;
    const middle = (low + high) / 2;
    [low, high] = [Math.min(low, middle - span / 2) - span * 0.08, Math.max(high, middle + span / 2) + span * 0.08];
  }
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const at = (v) => bottom - (((log ? Math.log10(v) : v) - low) / (high - low)) * (bottom - top);
  const ticks = log
    ? Array.from({ length: high - low + 1 }, (_, i) => 10 ** (low + i))
      .filter((_, i, all) => all.length <= 6 || i % 2 === 0).map((value) => ({ value, label: formatNumber(value) }))
    : linearTicks(low, high);
  return { at, ticks, log };
}

function xScale(epochs) {
  const first = epochs[0];
  const last = epochs[epochs.length - 1];
  const at = (e) => MARGIN.left + ((e - first) / Math.max(last - first, 1)) * (WIDTH - MARGIN.left - MARGIN.right);
  const step = Math.max(1, Math.ceil((last - first + 1) / 8));
  const ticks = [];
  for (let e = first; e <= last; e += step) ticks.push(e);
  return { at, ticks };
}

/** One path per unbroken run of finite values, so NaN epochs show as gaps. */
function linePath(epochs, values, x, y) {
  let d = "";
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null) {
      drawing = false;
      return;
    }
    d += `${drawing ? "L" : "M"}${x.at(epochs[i]).toFixed(1)},${y.at(value).toFixed(1)}`;
    drawing = true;
  });
  return d;
}

function axes(x, y, label) {
  const group = s("g", { class: "axes" });
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const bottom = HEIGHT - MARGIN.bottom;
  for (const tick of y.ticks) {
    const at = y.at(tick.value);
    if (at < MARGIN.top - 1 || at > bottom + 1) continue;
    group.append(s("line", { class: "grid", x1: left, x2: right, y1: at, y2: at }),
      s("text", { class: "tick", x: left - 6, y: at + 4, "text-anchor": "end" }, tick.label));
  }
  for (const t of x.ticks) {
    group.append(s("text", { class: "tick", x: x.at(t), y: bottom + 16, "text-anchor": "middle" }, String(t)));
  }
  group.append(
    s("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }),
    s("text", { class: "axis-label", x: (left + right) / 2, y: HEIGHT - 4, "text-anchor": "middle" }, "epoch"),
    s("text", { class: "panel-title", x: left, y: 14 }, y.log ? `${label} (log scale)` : label),
  );
  return group;
}

/** Marks for what the evidence found: a NaN epoch, a plateau from the start, the validation minimum. */
function eventMarks(event, epochs, series, x, y) {
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const mark = (kind, ...children) => s("g", { class: `event ${kind}`, "data-event": kind }, ...children);
  if (event.kind === "nan") {
    const at = x.at(event.epoch);
    const anchor = at > WIDTH * 0.7 ? "end" : "start";
    return mark("nan",
      s("rect", { x: at, y: top, width: Math.max(WIDTH - MARGIN.right - at, 0), height: bottom - top }),
      s("line", { x1: at, x2: at, y1: top, y2: bottom }),
      s("text", { x: at + (anchor === "start" ? 5 : -5), y: top + 12, "text-anchor": anchor }, event.label));
  }
  const loss = series.find((line) => line.name === (event.kind === "val_min" ? "val_loss" : "loss"));
  if (!loss) return null;
  if (event.kind === "plateau") {
    const values = loss.values.filter((v) => v !== null);
    const upper = y.at(Math.max(...values)) - 8;
    const lower = y.at(Math.min(...values)) + 8;
    return mark("plateau",
      s("rect", { x: MARGIN.left, y: upper, width: WIDTH - MARGIN.left - MARGIN.right, height: lower - upper, rx: 4 }),
      s("text", { x: WIDTH - MARGIN.right - 4, y: upper - 4, "text-anchor": "end" }, event.label));
  }
  const value = loss.values[epochs.indexOf(event.epoch)];
  if (value === null || value === undefined) return null;
  const [cx, cy] = [x.at(event.epoch), y.at(value)];
  const below = cy < top + 40;
  return mark("val_min",
    s("circle", { cx, cy, r: 5 }),
    s("text", { x: cx, y: below ? cy + 18 : cy - 10,
      "text-anchor": cx < WIDTH * 0.3 ? "start" : cx > WIDTH * 0.7 ? "end" : "middle" }, event.label));
}

function panel(label, epochs, series, events) {
  const shown = series.filter((line) => line.values.some((v) => v !== null));
  const values = shown.flatMap((line) => line.values.filter((v) => v !== null));
  if (!values.length) return null;
  const x = xScale(epochs);
  const y = yScale(values);
  const marks = events.map((event) => eventMarks(event, epochs, shown, x, y)).filter(Boolean);
  const title = `${label} over ${epochs.length} epochs` + (events.length ? `: ${events.map((e) => e.label).join("; ")}` : "");
  return s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, class: "panel" },
    axes(x, y, label),
    ...marks.filter((m) => m.dataset.event !== "val_min"),
    ...shown.map((line) => s("path", { class: `line ${line.style}`, d: linePath(epochs, line.values, x, y) })),
    ...marks.filter((m) => m.dataset.event === "val_min"));
}

/** The key under the panels: one entry per line style ({style, label}). */
function legend(entries) {
  return h("ul", { class: "legend" }, ...entries.map((entry) =>
    h("li", {}, h("span", { class: `swatch ${entry.style}`, "aria-hidden": "true" }), entry.label)));
}

function figure(caption, panels, key) {
  return h("figure", { class: "curves" },
    h("div", { class: "panels" }, ...panels.filter(Boolean)),
    h("figcaption", {}, legend(key), caption ? h("p", { class: "caption" }, caption) : null));
}

const humanName = (name) => name.replace(/^val_/, "validation ").replaceAll("_", " ");

/**
 * The uploaded history: loss and validation loss on the left with the events marked, and the
 * first other metric (accuracy, mae, ...) with its validation twin on the right.
 */
export function historyFigure(history, events = []) {
  const names = Object.keys(history).filter((name) => !NOT_METRICS.has(name));
  const length = Math.max(...names.map((name) => history[name].length));
  const epochs = history.epoch || Array.from({ length }, (_, i) => i + 1);
  const lines = (metric) => [metric, `val_${metric}`].filter((name) => name in history).map((name) => ({
    name, style: name.startsWith("val_") ? "validation" : "train", values: history[name].map(finite),
  }));
  const loss = lines("loss");
  const other = names.find((name) => name !== "loss" && !name.startsWith("val_"));
  const second = other ? lines(other) : [];
  const caption = events.length ? `Marked: ${events.map((e) => e.label).join("; ")}.` : "";
  const styles = new Set([...loss, ...second].map((line) => line.style));
  const key = [{ style: "train", label: "training" }, { style: "validation", label: "validation" }]
    .filter((entry) => styles.has(entry.style));
  return figure(caption,
    [panel("loss", epochs, loss, events), second.length ? panel(humanName(other), epochs, second, []) : null], key);
}

/** A reproduction run's experiments side by side: each one's training loss, and its validation loss. */
export function experimentsFigure(experiments) {
  const trained = experiments.filter((experiment) => experiment.history && (experiment.history.loss || []).length);
  if (!trained.length) return null;
  const length = Math.max(...trained.map((experiment) => experiment.history.loss.length));
  const epochs = Array.from({ length }, (_, i) => i + 1);
  const style = (i) => `run-${i % RUN_STYLES}`;
  const lines = (metric) => trained.map((experiment, i) => ({
    name: metric, style: style(i), values: (experiment.history[metric] || []).map(finite),
  }));
  // Drawn last, the baseline ("your setup") stays visible where a fix changed nothing.
  return figure("", [panel("loss", epochs, lines("loss").reverse(), []),
    panel("validation loss", epochs, lines("val_loss").reverse(), [])],
    trained.map((experiment, i) => ({ style: style(i), label: experiment.title || experiment.name })));
}
