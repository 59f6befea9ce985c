// The console's list of applications awaiting a decision (GET /api/v1/cases?state=
// submitted, the staff member's departments), usable in or out of a call, with Approve
// and Reject (with a reason) → `case.decide`.
import { apiFetch } from "../shared/api.js";
import { byTestId, el } from "../shared/dom.js";
import { errorKey, getLanguage, t } from "../shared/i18n.js";

const REFRESH_MS = 60000;

/**
 * root: the panel; token(): the staff token (null when signed out); request(event,
 * payload): an acknowledged /staff event; names: {department(id), service(id)}.
 */
export class CasesPanel {
  constructor(root, { token, request, names }) {
    this.root = root;
    this.token = token;
    this.request = request;
    this.names = names;
    this.dom = {
      list: byTestId("cases-list", root),
      message: byTestId("cases-message", root),
      refresh: byTestId("cases-refresh", root),
    };
    this.dom.refresh.addEventListener("click", () => this.refresh());
    this.timer = null;
    this.clear();
  }

  /** Signed out: nothing listed, no refreshing. */
  clear() {
    clearInterval(this.timer);
    this.timer = null;
    this.cases = [];
    this.rows = new Map(); // receipt_no → {state, busy, reason, errorKey, node}
    this.status = "idle"; // idle | loading | loaded | failed
    this.generation = (this.generation || 0) + 1;
    this.render();
  }

  /** Signed in: load now and every minute (not while the staff member types a reason). */
  start() {
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (!this.root.contains(document.activeElement) || document.activeElement === this.dom.refresh) {
        this.refresh();
      }
    }, REFRESH_MS);
  }

  async refresh() {
    const token = this.token();
    if (!token) return;
    const generation = this.generation;
    this.status = this.status === "loaded" ? "refreshing" : "loading";
    this.render();
    try {
      const answer = await apiFetch("/api/v1/cases?state=submitted", { token });
      if (generation !== this.generation) return;
      this.cases = Array.isArray(answer && answer.cases) ? answer.cases : [];
      // Rows decided here stay (with their result) until the next refresh drops them.
      const listed = new Set(this.cases.map((c) => c.receipt_no));
      for (const [receiptNo, row] of this.rows) {
        if (!listed.has(receiptNo) && row.state === "submitted") this.rows.delete(receiptNo);
      }
      this.status = "loaded";
    } catch (err) {
      if (generation !== this.generation) return;
      console.warn("cases failed", err);
      this.status = "failed";
    }
    this.render();
  }

  row(receiptNo) {
    let row = this.rows.get(receiptNo);
    if (!row) {
      row = { state: "submitted", busy: false, reason: "", errorKey: null, node: null };
      this.rows.set(receiptNo, row);
    }
    return row;
  }

  async decide(receiptNo, decision) {
    const row = this.row(receiptNo);
    if (row.busy || row.state !== "submitted") return;
    const reason = row.reason.trim();
    if (decision === "rejected" && !reason) {
      row.errorKey = "console.cases.needReason";
      this.renderRow(this.find(receiptNo));
      row.node.querySelector("input").focus();
      return;
    }
    row.busy = true;
    row.errorKey = null;
    this.renderRow(this.find(receiptNo));
    const payload = { receipt_no: receiptNo, decision };
    if (reason) payload.reason = reason;
    try {
      const ack = await this.request("case.decide", payload);
      row.state = ack.state || decision;
    } catch (err) {
      row.errorKey = errorKey(err);
      if (err.code === "conflict") row.state = "decided";
    } finally {
      row.busy = false;
    }
    this.renderRow(this.find(receiptNo));
  }

  find(receiptNo) {
    return this.cases.find((c) => c.receipt_no === receiptNo) || null;
  }

  renderRow(item) {
    if (!item) return null;
    const row = this.row(item.receipt_no);
    if (!row.node) {
      const reason = el("input", {
        type: "text",
        class: "case-reason",
        maxlength: 1000,
        dataset: { testid: "case-reason" },
      });
      reason.addEventListener("input", () => {
        row.reason = reason.value;
      });
      row.node = el(
        "li",
        {
          class: "case-row",
          dataset: { testid: "case-row", receiptNo: item.receipt_no, sessionId: item.session_id || "" },
        },
        el(
          "div",
          { class: "case-main" },
          el("strong", { class: "case-no", dataset: { testid: "case-row-receipt-no" } }, item.receipt_no),
          el("span", { class: "case-what" }),
          el("span", { class: "case-when hint" }),
          el("span", { class: "case-state", dataset: { testid: "case-state" } }),
        ),
        el(
          "div",
          { class: "case-actions" },
          el("button", {
            type: "button",
            class: "button button-ok",
            dataset: { testid: "case-approve" },
            onclick: () => this.decide(item.receipt_no, "approved"),
          }),
          reason,
          el("button", {
            type: "button",
            class: "button button-danger",
            dataset: { testid: "case-reject" },
            onclick: () => this.decide(item.receipt_no, "rejected"),
          }),
        ),
        el("p", { class: "error-text case-error", role: "alert", dataset: { testid: "case-error" } }),
      );
    }
    const node = row.node;
    const [what, when, state] = node.querySelectorAll(".case-what, .case-when, .case-state");
    what.textContent = [this.names.service(item.service_id), this.names.department(item.department_id)]
      .filter(Boolean)
      .join(" · ");
    const submitted = Number(item.submitted_at);
    when.textContent = [
      Number.isFinite(submitted)
        ? t("console.cases.submitted", { time: new Date(submitted * 1000).toLocaleString(getLanguage()) })
        : "",
      t("console.cases.documents", { count: Array.isArray(item.documents) ? item.documents.length : 0 }),
    ]
      .filter(Boolean)
      .join(" · ");
    node.dataset.state = row.state;
    node.dataset.busy = String(row.busy);
    const stateKey = `console.cases.state.${row.state}`;
    state.textContent = t(stateKey) === stateKey ? "" : t(stateKey);
    state.dataset.state = row.state;
    const [approve, reject] = node.querySelectorAll("button");
    const reason = node.querySelector("input");
    approve.textContent = t("console.cases.approve");
    reject.textContent = t("console.cases.reject");
    reason.placeholder = t("console.cases.reason");
    reason.setAttribute("aria-label", t("console.cases.reason"));
    const open = row.state === "submitted" && !row.busy;
    approve.disabled = reject.disabled = !open;
    reason.disabled = row.state !== "submitted";
    const error = node.querySelector(".case-error");
    error.hidden = !row.errorKey;
    error.textContent = row.errorKey ? t(row.errorKey) : "";
    return node;
  }

  render() {
    const { list, message, refresh } = this.dom;
    // Listed: the cases of the last answer, and those decided here since.
    const shown = [...this.cases];
    list.replaceChildren(...shown.map((item) => this.renderRow(item)).filter(Boolean));
    const waiting = shown.filter((c) => this.row(c.receipt_no).state === "submitted").length;
    list.dataset.count = String(waiting);
    this.root.dataset.status = this.status;
    refresh.disabled = this.status === "loading" || this.status === "refreshing" || !this.token();
    const key =
      this.status === "loading"
        ? "console.cases.loading"
        : this.status === "failed"
          ? "console.cases.failed"
          : this.status !== "idle" && shown.length === 0
            ? "console.cases.none"
            : null;
    message.hidden = !key;
    message.dataset.state = this.status;
    message.textContent = key ? t(key) : "";
  }
}
