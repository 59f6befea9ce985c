// Small line charts in SVG, drawn by hand (no library, nothing inline: colours come
// from CSS classes, so the page runs under `style-src 'self'`).
//
// drawLineChart(svg, {
//   width, height,                      // pixels (the SVG gets them as its size and viewBox)
//   x: {min, max, ticks: [{value, label}]},
//   y: {max, ticks: [value, ...], format: (value) => "label"},
//   series: [{id, className, points: [[x, y], ...] (x ascending), hidden}],
//   gap,                                // consecutive points further apart than this in x
//                                       // are not joined (a hole in the data)
//   emptyText,                          // shown when no series has a point
// })
// Every series is a <g data-testid="chart-series-<id>"> with data-points (how many),
// data-last (the last y) and data-hidden.

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 14, bottom: 24, left: 40 };

export function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, String(value));
  }
  if (text != null) node.textContent = String(text);
  return node;
}

/**
 * An axis for whole numbers (e.g. people waiting): {max, ticks} with at most `count`
 * steps of 1, 2, 5, 10, … and max at least `minimum`.
 */
export function integerAxis(value, minimum = 2, count = 4) {
  const top = Math.max(Math.ceil(Number(value) || 0), minimum);
  let step = 1;
  for (let power = 1; top / step > count; power *= 10) {
    step = [1, 2, 5].map((m) => m * power).find((x) => top / x <= count) || 10 * power;
  }
  const max = Math.ceil(top / step) * step;
  const ticks = [];
  for (let tick = 0; tick <= max; tick += step) ticks.push(tick);
  return { max, ticks };
}

const DURATION_STEPS_S = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

/** An axis for durations in seconds: {max, ticks} on round steps (15 s, 30 s, 1 min, …). */
export function durationAxis(seconds, minimum = 60, count = 4) {
  const top = Math.max(Number(seconds) || 0, minimum);
  const step = DURATION_STEPS_S.find((x) => top / x <= count) || Math.ceil(top / count / 3600) * 3600;
  const max = Math.ceil(top / step) * step;
  const ticks = [];
  for (let tick = 0; tick <= max; tick += step) ticks.push(tick);
  return { max, ticks };
}

/** Split points into runs whose neighbours are at most `gap` apart in x. */
function runs(points, gap) {
  const out = [];
  let current = [];
  let previous = null;
  for (const point of points) {
    if (previous !== null && point[0] - previous[0] > gap) {
      out.push(current);
      current = [];
    }
    current.push(point);
    previous = point;
  }
  if (current.length) out.push(current);
  return out;
}

export function drawLineChart(svg, options) {
  const { width, height, x, y, series, gap = 1, emptyText = "" } = options;
  svg.replaceChildren();
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const plotW = Math.max(10, width - MARGIN.left - MARGIN.right);
  const plotH = Math.max(10, height - MARGIN.top - MARGIN.bottom);
  const xSpan = x.max - x.min || 1;
  const px = (value) => MARGIN.left + ((value - x.min) / xSpan) * plotW;
  const py = (value) => MARGIN.top + plotH - (Math.min(value, y.max) / (y.max || 1)) * plotH;
  const format = y.format || ((value) => String(value));

  const grid = svgEl("g", { class: "chart-grid" });
  for (const value of y.ticks) {
    const at = py(value).toFixed(1);
    grid.append(svgEl("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: at, y2: at }));
    grid.append(
      svgEl("text", { class: "chart-y-label", x: MARGIN.left - 6, y: at, dy: "0.32em" }, format(value)),
    );
  }
  for (const tick of x.ticks) {
    const at = px(tick.value).toFixed(1);
    grid.append(svgEl("line", { class: "chart-x-tick", x1: at, x2: at, y1: MARGIN.top, y2: MARGIN.top + plotH }));
    grid.append(
      svgEl("text", { class: "chart-x-label", x: at, y: MARGIN.top + plotH + 16 }, tick.label),
    );
  }
  grid.append(
    svgEl("line", {
      class: "chart-axis",
      x1: MARGIN.left,
      x2: MARGIN.left + plotW,
      y1: MARGIN.top + plotH,
      y2: MARGIN.top + plotH,
    }),
  );
  svg.append(grid);

  let anyPoint = false;
  for (const item of series) {
    const points = item.points.filter((p) => p[0] >= x.min && p[0] <= x.max);
    const group = svgEl("g", {
      class: `chart-series ${item.className || ""}`.trim(),
      dataset: {
        testid: `chart-series-${item.id}`,
        series: item.id,
        points: String(points.length),
        last: points.length ? String(points[points.length - 1][1]) : "",
        hidden: String(Boolean(item.hidden)),
      },
    });
    if (item.hidden) group.setAttribute("visibility", "hidden");
    if (points.length && !item.hidden) anyPoint = true;
    for (const run of runs(points, gap)) {
      if (run.length === 1) {
        const [[vx, vy]] = run;
        group.append(svgEl("circle", { class: "chart-dot", cx: px(vx).toFixed(1), cy: py(vy).toFixed(1), r: 2.5 }));
        continue;
      }
      const d = run
        .map(([vx, vy], i) => `${i ? "L" : "M"}${px(vx).toFixed(1)} ${py(vy).toFixed(1)}`)
        .join(" ");
      group.append(svgEl("path", { class: "chart-line", d }));
    }
    if (points.length) {
      const [lx, ly] = points[points.length - 1];
      group.append(svgEl("circle", { class: "chart-dot chart-last", cx: px(lx).toFixed(1), cy: py(ly).toFixed(1), r: 3 }));
    }
    svg.append(group);
  }
  if (!anyPoint && emptyText) {
    svg.append(
      svgEl(
        "text",
        { class: "chart-empty", x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2 },
        emptyText,
      ),
    );
  }
}
