// The supervisor's live dashboard (what `dashboard.snapshot` and `dashboard.history`
// carry, docs/protocol.md /supervisor): one card per department (waiting, longest wait,
// answered, abandoned, average speed of answer, service level, agents by state), the
// last hour's chart of callers waiting and longest wait, and the agents with the time in
// their state. The live calls and the monitor are supervisor.js's.
//
// Labels that never change with the data carry data-i18n (the key from ctx.key(key)) and
// are translated with the rest of the page by shared/i18n.js; everything else is redrawn
// by render() (also on a language switch).
import { drawLineChart, durationAxis, integerAxis } from "./chart.js";
import { el, formatDuration } from "../shared/dom.js";

export const AGENT_STATES = ["available", "ringing", "busy", "wrapup", "away"];
const SERIES_COLOURS = 8; // .series-0 … .series-7 in supervisor.css
const HISTORY_MINUTES = 60;
const CHART_HEIGHT = 170;
// The server sends a snapshot at least every 10 s: past this the page says it is stale.
const STALE_AFTER_S = 15;

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** "1:05" for seconds; "—" for null. */
function durationOrNone(seconds, none) {
  return seconds == null || !Number.isFinite(Number(seconds)) ? none : formatDuration(Number(seconds));
}

export class Dashboard {
  /**
   * ctx: {s(key, vars), key(key) (its key in shared/i18n.js), lang(), departmentName(id),
   * serverNow()}.
   * dom: {root, cards, updated, targetHint, chartWaiting, chartLongest, chartBox, legend,
   *       agentsBody, agentsCount, agentsEmpty}.
   */
  constructor(ctx, dom) {
    this.ctx = ctx;
    this.dom = dom;
    this.snapshot = null;
    this.receivedAt = 0; // Date.now() / 1000 when the snapshot arrived
    this.history = null;
    this.cards = new Map(); // department id → card entry
    this.agentRows = new Map(); // staff id → row entry
    this.legendButtons = new Map(); // department id → button
    this.hidden = new Set(); // departments hidden in the charts
    this.chartWidth = 0;
    this.resizePending = false;
    if (typeof ResizeObserver === "function") {
      this.resizeObserver = new ResizeObserver(() => this.onResize());
      this.resizeObserver.observe(dom.chartBox);
    }
  }

  // ------------------------------------------------------------ input

  setSnapshot(snapshot) {
    this.snapshot = snapshot;
    this.receivedAt = Date.now() / 1000;
    this.renderCards();
    this.renderAgents();
    this.renderLegend();
    this.drawCharts();
    this.renderUpdated();
  }

  setHistory(history) {
    this.history = history;
    this.renderLegend();
    this.drawCharts();
  }

  /** Forget everything (sign-out). */
  reset() {
    this.snapshot = null;
    this.history = null;
    this.receivedAt = 0;
    for (const entry of this.cards.values()) entry.card.remove();
    this.cards.clear();
    for (const entry of this.agentRows.values()) entry.row.remove();
    this.agentRows.clear();
    this.dom.legend.replaceChildren();
    this.legendButtons.clear();
    this.dom.chartWaiting.replaceChildren();
    this.dom.chartLongest.replaceChildren();
    this.dom.root.dataset.updatedAt = "";
    this.renderUpdated();
  }

  /** Redraw everything in the current language. */
  render() {
    this.renderCards();
    this.renderAgents();
    this.renderLegend();
    this.drawCharts();
    this.renderUpdated();
  }

  /** Once a second: the live times. */
  tick() {
    if (!this.snapshot) {
      this.renderUpdated();
      return;
    }
    for (const entry of this.cards.values()) this.renderLongest(entry);
    for (const entry of this.agentRows.values()) this.renderAgentTime(entry);
    this.renderUpdated();
  }

  /** Seconds since the snapshot arrived. */
  age() {
    return this.receivedAt ? Math.max(0, Date.now() / 1000 - this.receivedAt) : 0;
  }

  departments() {
    return (this.snapshot && Array.isArray(this.snapshot.departments) && this.snapshot.departments) || [];
  }

  agents() {
    return (this.snapshot && Array.isArray(this.snapshot.agents) && this.snapshot.agents) || [];
  }

  agent(staffId) {
    return this.agents().find((a) => a.staff_id === staffId) || null;
  }

  department(id) {
    return this.departments().find((d) => d.id === id) || null;
  }

  // ------------------------------------------------------------ header

  renderUpdated() {
    const { s } = this.ctx;
    const snapshot = this.snapshot;
    const root = this.dom.root;
    if (!snapshot) {
      this.dom.updated.textContent = s("notUpdated");
      root.dataset.stale = "false";
      this.dom.targetHint.textContent = "";
      return;
    }
    root.dataset.updatedAt = String(snapshot.at);
    const age = this.age();
    const stale = age > STALE_AFTER_S;
    root.dataset.stale = String(stale);
    this.dom.updated.dataset.stale = String(stale);
    this.dom.updated.textContent = stale
      ? s("stale", { seconds: Math.floor(age) })
      : s("updatedAt", { time: this.clock(num(snapshot.at) * 1000, true) });
    const windowMinutes = Math.round(num(snapshot.window_s) / 60);
    this.dom.targetHint.textContent = s("targetHint", {
      target: formatDuration(num(snapshot.target_s)),
      window:
        windowMinutes % 60 === 0
          ? s("hours", { n: windowMinutes / 60 })
          : s("minutes", { n: windowMinutes }),
    });
  }

  /** Local clock time of epoch milliseconds, 24-hour. */
  clock(ms, seconds = false) {
    /** @type {Intl.DateTimeFormatOptions} */
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (seconds) options.second = "2-digit";
    try {
      return new Date(ms).toLocaleTimeString(this.ctx.lang(), options);
    } catch {
      return new Date(ms).toLocaleTimeString();
    }
  }

  // ------------------------------------------------------------ department cards

  makeCard(id) {
    const label = (key) => el("span", { class: "metric-label", dataset: { i18n: this.ctx.key(key) } }, this.ctx.s(key));
    const stat = (key, testid, extra = "") => {
      const value = el("dd", { dataset: { testid } });
      const term = el("dt", { title: this.ctx.s(key), dataset: { i18n: this.ctx.key(key), i18nAttr: `title:${this.ctx.key(key)}` } }, this.ctx.s(key));
      return { value, node: el("div", { class: `dept-stat ${extra}`.trim() }, term, value) };
    };
    const entry = {
      id,
      name: el("h3", { class: "dept-name", dataset: { testid: "dept-name" } }),
      alert: el("span", { class: "dept-alert", dataset: { i18n: this.ctx.key("overTarget") } }, this.ctx.s("overTarget")),
      waiting: el("span", { class: "metric-value", dataset: { testid: "dept-waiting" } }, "0"),
      longest: el("span", { class: "metric-value", dataset: { testid: "dept-longest", seconds: "0" } }, "0:00"),
      answered: stat("answered", "dept-answered"),
      abandoned: stat("abandoned", "dept-abandoned"),
      asa: stat("asa", "dept-asa", "dept-stat-row"),
      sl: stat("serviceLevel", "dept-sl", "dept-stat-row"),
      slTarget: el("span", { class: "sl-target" }),
      chips: new Map(),
    };
    entry.alert.hidden = true;
    entry.sl.value.append(entry.slTarget);
    entry.slText = el("span", { class: "sl-value" });
    entry.sl.value.prepend(entry.slText);
    entry.slBar = el("span", { class: "sl-bar-fill" });
    const chipList = el("ul", {
      class: "agent-chips",
      "aria-label": this.ctx.s("agentsByState"),
      dataset: { i18nAttr: `aria-label:${this.ctx.key("agentsByState")}` },
    });
    chipList.setAttribute("aria-label", this.ctx.s("agentsByState"));
    for (const agentState of AGENT_STATES) {
      const count = el("span", { class: "chip-count" }, "0");
      const chip = el(
        "li",
        { class: "agent-chip", dataset: { state: agentState, testid: `dept-agents-${agentState}` } },
        count,
        " ",
        el("span", { class: "chip-label", dataset: { i18n: this.ctx.key(`agent.${agentState}`) } }, this.ctx.s(`agent.${agentState}`)),
      );
      entry.chips.set(agentState, { chip, count });
      chipList.append(chip);
    }
    entry.card = el(
      "article",
      { class: "dept-card", dataset: { testid: `dept-${id}`, department: id } },
      el("header", { class: "dept-head" }, entry.name, entry.alert),
      el(
        "div",
        { class: "dept-main" },
        el("div", { class: "dept-metric dept-metric-waiting" }, entry.waiting, label("waiting")),
        el("div", { class: "dept-metric dept-metric-longest" }, entry.longest, label("longestWait")),
      ),
      el("dl", { class: "dept-stats" }, entry.answered.node, entry.abandoned.node, entry.asa.node, entry.sl.node),
      el("div", { class: "sl-bar", "aria-hidden": "true" }, entry.slBar),
      chipList,
    );
    return entry;
  }

  renderCards() {
    const { s, departmentName } = this.ctx;
    const seen = new Set();
    let previous = null;
    const none = s("none");
    const targetS = num(this.snapshot && this.snapshot.target_s);
    for (const dept of this.departments()) {
      if (!dept || typeof dept.id !== "string") continue;
      seen.add(dept.id);
      let entry = this.cards.get(dept.id);
      if (!entry) {
        entry = this.makeCard(dept.id);
        this.cards.set(dept.id, entry);
      }
      entry.dept = dept;
      const card = entry.card;
      const agents = dept.agents || {};
      Object.assign(card.dataset, {
        waiting: String(num(dept.waiting)),
        longestWait: String(Math.floor(num(dept.longest_wait_s))),
        answered: String(num(dept.answered)),
        abandoned: String(num(dept.abandoned)),
        asa: dept.asa_s == null ? "" : String(dept.asa_s),
        serviceLevel: dept.service_level == null ? "" : String(dept.service_level),
      });
      for (const agentState of AGENT_STATES) {
        const count = num(agents[agentState]);
        card.dataset[`agents${agentState[0].toUpperCase()}${agentState.slice(1)}`] = String(count);
        const chip = entry.chips.get(agentState);
        chip.count.textContent = String(count);
        chip.chip.dataset.count = String(count);
      }
      entry.name.textContent = departmentName(dept.id);
      entry.name.title = entry.name.textContent;
      entry.waiting.textContent = String(num(dept.waiting));
      entry.answered.value.textContent = String(num(dept.answered));
      entry.abandoned.value.textContent = String(num(dept.abandoned));
      entry.asa.value.textContent = durationOrNone(dept.asa_s, none);
      const sl = dept.service_level;
      entry.slText.textContent = sl == null ? none : `${Math.round(num(sl) * 100)}%`;
      entry.slTarget.textContent = sl == null ? "" : ` (≤ ${formatDuration(targetS)})`;
      entry.slBar.style.width = sl == null ? "0%" : `${Math.max(0, Math.min(100, num(sl) * 100))}%`;
      entry.slBar.parentElement.dataset.empty = String(sl == null);
      this.renderLongest(entry);
      const wanted = previous ? previous.nextSibling : this.dom.cards.firstChild;
      if (card !== wanted) this.dom.cards.insertBefore(card, wanted);
      previous = card;
    }
    for (const [id, entry] of this.cards) {
      if (seen.has(id)) continue;
      entry.card.remove();
      this.cards.delete(id);
    }
  }

  /** The longest wait, counted on from the snapshot while someone waits. */
  renderLongest(entry) {
    const dept = entry.dept;
    if (!dept) return;
    const waiting = num(dept.waiting) > 0;
    const seconds = waiting ? num(dept.longest_wait_s) + this.age() : 0;
    const whole = Math.floor(seconds);
    if (entry.longest.dataset.seconds !== String(whole) || !entry.longest.textContent) {
      entry.longest.textContent = formatDuration(whole);
      entry.longest.dataset.seconds = String(whole);
    }
    const target = num(this.snapshot && this.snapshot.target_s);
    const over = waiting && target > 0 && seconds > target;
    entry.card.dataset.overTarget = String(over);
    entry.alert.hidden = !over;
    entry.card.classList.toggle("has-waiting", waiting);
  }

  // ------------------------------------------------------------ agents

  renderAgents() {
    const { s, departmentName } = this.ctx;
    const seen = new Set();
    let previous = null;
    for (const agent of this.agents()) {
      if (!agent || typeof agent.staff_id !== "string") continue;
      seen.add(agent.staff_id);
      let entry = this.agentRows.get(agent.staff_id);
      if (!entry) {
        entry = {
          name: el("td", { class: "agent-name" }),
          badge: el("span", { class: "state-badge agent-state", dataset: { testid: "agent-state" } }),
          departments: el("td", { class: "agent-departments" }),
          time: el("td", { class: "agent-time", dataset: { testid: "agent-time" } }),
        };
        entry.row = el(
          "tr",
          { dataset: { testid: `agent-${agent.staff_id}`, staff: agent.staff_id } },
          entry.name,
          el("td", {}, entry.badge),
          entry.departments,
          entry.time,
        );
        this.agentRows.set(agent.staff_id, entry);
      }
      entry.agent = agent;
      entry.row.dataset.state = agent.state;
      entry.row.dataset.since = String(agent.since);
      entry.name.textContent = agent.display_name || agent.staff_id;
      entry.badge.dataset.state = agent.state;
      entry.badge.textContent = s(`agent.${agent.state}`);
      entry.departments.textContent = (agent.departments || []).map((d) => departmentName(d)).join("、");
      this.renderAgentTime(entry);
      const wanted = previous ? previous.nextSibling : this.dom.agentsBody.firstChild;
      if (entry.row !== wanted) this.dom.agentsBody.insertBefore(entry.row, wanted);
      previous = entry.row;
    }
    for (const [id, entry] of this.agentRows) {
      if (seen.has(id)) continue;
      entry.row.remove();
      this.agentRows.delete(id);
    }
    this.dom.agentsCount.textContent = String(seen.size);
    this.dom.agentsEmpty.hidden = seen.size > 0 || !this.snapshot;
  }

  renderAgentTime(entry) {
    const since = num(entry.agent && entry.agent.since);
    const seconds = since ? Math.max(0, this.ctx.serverNow() - since) : 0;
    entry.time.textContent = formatDuration(seconds);
    entry.time.dataset.seconds = String(Math.floor(seconds));
  }

  // ------------------------------------------------------------ chart

  renderLegend() {
    const { departmentName } = this.ctx;
    const ids = this.departments().map((d) => d.id);
    if (!ids.length && this.history) ids.push(...(this.history.departments || []).map((d) => d.id));
    let previous = null;
    ids.forEach((id, index) => {
      let button = this.legendButtons.get(id);
      if (!button) {
        button = el(
          "button",
          {
            type: "button",
            class: "legend-button",
            dataset: { testid: `chart-legend-${id}`, department: id },
            onclick: () => this.toggleSeries(id),
          },
          el("span", { class: `legend-swatch series-${index % SERIES_COLOURS}`, "aria-hidden": "true" }),
          el("span", { class: "legend-name" }),
        );
        this.legendButtons.set(id, button);
      }
      button.lastChild.textContent = departmentName(id);
      button.setAttribute("aria-pressed", String(!this.hidden.has(id)));
      const wanted = previous ? previous.nextSibling : this.dom.legend.firstChild;
      if (button !== wanted) this.dom.legend.insertBefore(button, wanted);
      previous = button;
    });
    for (const [id, button] of this.legendButtons) {
      if (ids.includes(id)) continue;
      button.remove();
      this.legendButtons.delete(id);
    }
  }

  toggleSeries(id) {
    if (this.hidden.has(id)) this.hidden.delete(id);
    else this.hidden.add(id);
    this.renderLegend();
    this.drawCharts();
  }

  onResize() {
    if (this.resizePending) return;
    this.resizePending = true;
    requestAnimationFrame(() => {
      this.resizePending = false;
      const width = Math.floor(this.dom.chartWaiting.parentElement.clientWidth);
      if (width && width !== this.chartWidth) this.drawCharts();
    });
  }

  /**
   * The current minute and, per department, [[minute, waiting], …] and
   * [[minute, longest wait in seconds], …] (the history, the current minute live).
   */
  seriesData() {
    const nowMinute = Math.floor(this.ctx.serverNow() / 60);
    const byDept = new Map();
    const order = this.departments().map((d) => d.id);
    for (const entry of (this.history && this.history.departments) || []) {
      if (!entry || typeof entry.id !== "string") continue;
      if (!order.includes(entry.id)) order.push(entry.id);
      const samples = new Map();
      for (const sample of entry.samples || []) {
        if (sample && Number.isFinite(Number(sample.minute))) samples.set(Number(sample.minute), sample);
      }
      byDept.set(entry.id, samples);
    }
    // The current minute from the live snapshot.
    if (this.snapshot) {
      const liveMinute = Math.floor(num(this.snapshot.at) / 60);
      for (const dept of this.departments()) {
        if (!byDept.has(dept.id)) byDept.set(dept.id, new Map());
        byDept.get(dept.id).set(liveMinute, {
          minute: liveMinute,
          waiting: num(dept.waiting),
          longest_wait_s: num(dept.longest_wait_s),
        });
      }
    }
    const series = order.map((id, index) => {
      const samples = [...(byDept.get(id) || new Map()).values()].sort((a, b) => a.minute - b.minute);
      return {
        id,
        index,
        waiting: samples.map((x) => [x.minute, num(x.waiting)]),
        longest: samples.map((x) => [x.minute, Math.round(num(x.longest_wait_s))]),
      };
    });
    return { nowMinute, series };
  }

  drawCharts() {
    const { s } = this.ctx;
    const box = this.dom.chartWaiting.parentElement;
    const width = Math.max(240, Math.floor(box.clientWidth || 0));
    this.chartWidth = Math.floor(box.clientWidth || 0);
    const { nowMinute, series: data } = this.seriesData();
    const xMin = nowMinute - (HISTORY_MINUTES - 1);
    const ticks = [];
    for (let minute = nowMinute; minute >= xMin; minute -= 15) {
      ticks.unshift({ value: minute, label: minute === nowMinute ? s("chartNow") : this.clock(minute * 60000) });
    }
    const shown = data.filter((d) => !this.hidden.has(d.id));
    const visible = (pick) => shown.flatMap((d) => d[pick].filter((p) => p[0] >= xMin).map((p) => p[1]));
    const waitingAxis = integerAxis(Math.max(0, ...visible("waiting")), 2);
    const longestAxis = durationAxis(Math.max(0, ...visible("longest")));
    const series = (pick) =>
      data.map((d) => ({
        id: `${pick}-${d.id}`,
        className: `series-${d.index % SERIES_COLOURS}`,
        points: d[pick],
        hidden: this.hidden.has(d.id),
      }));
    const common = { width, height: CHART_HEIGHT, x: { min: xMin, max: nowMinute, ticks }, gap: 1, emptyText: s("chartEmpty") };
    drawLineChart(this.dom.chartWaiting, {
      ...common,
      y: waitingAxis,
      series: series("waiting"),
    });
    drawLineChart(this.dom.chartLongest, {
      ...common,
      y: { ...longestAxis, format: (v) => formatDuration(v) },
      series: series("longest"),
    });
    this.labelChart(this.dom.chartWaiting, "chartWaiting", data, "waiting", (v) => String(v));
    this.labelChart(this.dom.chartLongest, "chartLongest", data, "longest", (v) => formatDuration(v));
  }

  /** The chart's accessible name: its title and each department's latest value. */
  labelChart(svg, titleKey, data, pick, format) {
    const { s, departmentName } = this.ctx;
    const values = data
      .filter((d) => d[pick].length)
      .map((d) => `${departmentName(d.id)} ${format(d[pick][d[pick].length - 1][1])}`)
      .join(", ");
    svg.setAttribute("aria-label", s("chartSummary", { chart: s(titleKey), values: values || s("none") }));
  }
}
