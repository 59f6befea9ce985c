// Citizen's Window (/print): no sign-in. The citizen types the receipt number from the
// kiosk; the page shows the application's state and, once approved, the result
// documents with a Print button each (POST /api/v1/print/lookup; the documents come as
// short-lived signed URLs). zh-Hant (default) and en.
import { apiFetch } from "../shared/api.js";
import { all, byId, el } from "../shared/dom.js";
import { applyTranslations, setLanguage, t } from "../shared/i18n.js";
import { printImages } from "../components/printing.js";

const DEFAULT_LANGUAGE = "zh-Hant";
const IDLE_RESET_MS = 120000; // a public screen: forget the last lookup after a while
const STATES = ["submitted", "approved", "rejected"];

const dom = {};
const state = {
  looking: false,
  answer: null, // the lookup's answer
  message: null, // {code}
  printing: new Map(), // job_id → printing | printed | failed
};
let idleTimer = null;

window.smartcounter = {
  get answer() {
    return state.answer;
  },
};

function switchLanguage(lang) {
  setLanguage(lang);
  applyTranslations();
  for (const button of all(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  document.title = t("print.title");
  render();
}

function messageKey(code) {
  const key = `print.error.${code}`;
  return t(key) === key ? "print.error.generic" : key;
}

async function lookup(event) {
  event.preventDefault();
  const receiptNo = dom.input.value.trim();
  if (state.looking) return;
  if (!receiptNo) {
    state.message = { code: "bad_request" };
    render();
    dom.input.focus();
    return;
  }
  state.looking = true;
  state.message = null;
  render();
  try {
    const answer = await apiFetch("/api/v1/print/lookup", { method: "POST", body: { receipt_no: receiptNo } });
    state.answer = answer && STATES.includes(answer.state) ? answer : null;
    state.printing = new Map();
    if (!state.answer) state.message = { code: "internal" };
  } catch (err) {
    state.answer = null;
    state.message = { code: err.code || "internal", status: err.status };
  } finally {
    state.looking = false;
  }
  render();
  if (state.answer) dom.result.focus({ preventScroll: true });
}

function clearLookup() {
  state.answer = null;
  state.message = null;
  state.printing = new Map();
  dom.input.value = "";
  render();
  dom.input.focus();
}

function documentTitle(job) {
  const key = `print.docTitle.${job.title}`;
  return t(key) === key ? String(job.title || "") : t(key);
}

async function printJob(job, frame) {
  if (state.printing.get(job.job_id) === "printing") return;
  state.printing.set(job.job_id, "printing");
  render();
  let result = "printed";
  try {
    if (job.content_type === "application/pdf") {
      // The browser's PDF viewer in the frame prints the whole document.
      frame.contentWindow.focus();
      frame.contentWindow.print();
    } else {
      await printImages([job.url], { title: documentTitle(job) });
    }
  } catch (err) {
    console.warn("printing failed", err);
    result = "failed";
  }
  state.printing.set(job.job_id, result);
  render();
}

function jobItem(job) {
  const pdf = job.content_type === "application/pdf";
  const view = pdf
    ? el("iframe", {
        class: "result-frame",
        src: job.url,
        title: documentTitle(job),
        dataset: { testid: "result-frame" },
      })
    : el("img", { class: "result-image", src: job.url, alt: documentTitle(job), dataset: { testid: "result-image" } });
  const status = el("p", { class: "result-print-status", role: "status", dataset: { testid: "result-print-status" } });
  const button = el(
    "button",
    {
      type: "button",
      class: "button button-large",
      dataset: { testid: "result-print" },
      onclick: () => printJob(job, view),
    },
    t("print.print"),
  );
  const item = el(
    "li",
    {
      class: "result-doc",
      dataset: {
        testid: "result-doc",
        jobId: job.job_id,
        documentId: job.document_id,
        contentType: job.content_type || "",
      },
    },
    el(
      "div",
      { class: "result-doc-head" },
      el("h3", { class: "result-doc-title" }, documentTitle(job)),
      el("span", { class: "hint" }, t("print.pages", { pages: job.pages ?? 1 })),
      button,
    ),
    status,
    view,
  );
  return { item, button, status };
}

let items = new Map(); // job_id → {item, button, status}; the frames load once per lookup

function renderJobs(answer) {
  const jobs = answer && answer.state === "approved" && Array.isArray(answer.jobs) ? answer.jobs : [];
  const keep = new Map();
  for (const job of jobs) {
    const known = items.get(job.job_id);
    const made = known && known.url === job.url ? known : { ...jobItem(job), url: job.url };
    keep.set(job.job_id, made);
    const printing = state.printing.get(job.job_id) || "";
    made.item.dataset.printState = printing;
    made.button.disabled = printing === "printing";
    made.button.textContent = t("print.print");
    made.status.hidden = !printing || printing === "printing";
    made.status.dataset.state = printing;
    made.status.textContent =
      printing === "printed" ? t("print.printed") : printing === "failed" ? t("print.printFailed") : "";
  }
  items = keep;
  dom.docs.replaceChildren(...[...keep.values()].map((m) => m.item));
  dom.docs.dataset.count = String(jobs.length);
  dom.docsHeading.hidden = jobs.length === 0;
}

function render() {
  const { answer, message } = state;
  document.body.dataset.state = state.looking ? "looking" : answer ? answer.state : message ? "error" : "idle";
  dom.submit.disabled = state.looking;
  dom.submit.textContent = t(state.looking ? "print.looking" : "print.lookup");
  dom.message.hidden = !message;
  dom.message.dataset.code = message ? message.code : "";
  dom.message.textContent = message ? t(messageKey(message.code)) : "";
  dom.result.hidden = !answer;
  dom.result.dataset.state = answer ? answer.state : "";
  dom.result.dataset.receiptNo = answer ? answer.receipt_no : "";
  dom.receiptNo.textContent = answer ? answer.receipt_no : "";
  dom.resultState.dataset.state = answer ? answer.state : "";
  dom.resultState.textContent = answer ? t(`print.state.${answer.state}`) : "";
  renderJobs(answer);
}

function armIdleReset() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (state.answer || state.message || dom.input.value) clearLookup();
    if (document.documentElement.lang !== DEFAULT_LANGUAGE) switchLanguage(DEFAULT_LANGUAGE);
  }, IDLE_RESET_MS);
}

function init() {
  Object.assign(dom, {
    form: byId("lookup-form"),
    input: byId("receipt-input"),
    submit: byId("lookup-submit"),
    message: byId("lookup-message"),
    result: byId("result"),
    receiptNo: byId("result-receipt-no"),
    resultState: byId("result-state"),
    docs: byId("result-docs"),
    docsHeading: byId("result-docs-heading"),
    again: byId("lookup-again"),
  });
  dom.result.tabIndex = -1;
  switchLanguage(DEFAULT_LANGUAGE);
  for (const button of all(".lang-button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  dom.form.addEventListener("submit", lookup);
  dom.again.addEventListener("click", clearLookup);
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, armIdleReset, { capture: true, passive: true });
  }
  armIdleReset();
  dom.input.focus();
}

init();
