// The console's casework panel for the current call: the documents the kiosk sent (with
// thumbnails), the viewer with marks (document_viewer.js), a rescan request, a signature
// request and the signature when it comes, printing at the kiosk and its status, and
// lodging the application (its receipt number).
import { DocumentViewer } from "./document_viewer.js";
import { byTestId, el } from "../shared/dom.js";
import { AuthorizedImages, pageUrl } from "../components/document_pages.js";
import { t } from "../shared/i18n.js";

const THUMB_WIDTH = 240;

/**
 * root: the panel (children found by data-testid); request(event, payload): an
 * acknowledged /staff event; token(): the staff token; onLodged(receiptNo): after
 * case.submit.
 */
export class CaseworkPanel {
  constructor(root, { request, token, onLodged }) {
    this.root = root;
    this.request = request;
    this.onLodged = onLodged;
    this.images = new AuthorizedImages(token);
    const q = (id) => byTestId(id, root);
    this.dom = {
      list: q("docs-list"),
      none: q("docs-none"),
      selected: q("docs-selected"),
      rescanReason: q("rescan-reason"),
      rescan: q("rescan-request"),
      signTitle: q("sign-title"),
      sign: q("sign-request"),
      print: q("print-send"),
      note: q("casework-note"),
      signatures: q("signatures"),
      printJobs: q("print-jobs"),
      lodge: q("case-lodge"),
      receipt: q("case-receipt"),
      receiptNo: q("case-receipt-no"),
    };
    this.viewer = new DocumentViewer(q("doc-viewer"), {
      images: this.images,
      annotate: (documentId, page, shapes) =>
        this.request("document.annotate", { session_id: this.sessionId, document_id: documentId, page, shapes }),
      onMessage: (key, kind, vars) => this.setNote(key, kind, vars),
    });
    const d = this.dom;
    d.rescan.addEventListener("click", () => this.requestRescan());
    d.sign.addEventListener("click", () => this.requestSignature());
    d.print.addEventListener("click", () => this.sendPrint());
    d.lodge.addEventListener("click", () => this.lodge());
    this.reset(null);
  }

  /** A new call (sessionId), or none. */
  reset(sessionId = null) {
    this.sessionId = sessionId;
    this.documents = [];
    this.selectedId = null;
    this.signatures = []; // {request_id, document_id, title, state, image_url}
    this.printJobs = []; // {job_id, document_id, status}
    this.receiptNo = null;
    this.busy = new Set(); // actions waiting for their ack
    this.note = null;
    this.images.clear();
    this.viewer.reset();
    this.dom.rescanReason.value = "";
    this.dom.signTitle.value = "";
    this.render();
  }

  /** The session record after a reload mid-call: its documents (thumbnails by token). */
  restore(record) {
    if (!record || record.session_id !== this.sessionId) return;
    for (const document of record.documents || []) this.addDocument(document);
    this.render();
  }

  addDocument(msg) {
    if (!msg || !msg.document_id || this.find(msg.document_id)) return;
    const document = {
      document_id: msg.document_id,
      kind: msg.kind,
      pages: Number(msg.pages) || 1,
      sha256: msg.sha256,
      thumb: typeof msg.thumbnail_url === "string" ? msg.thumbnail_url : null,
    };
    this.documents.push(document);
    if (!document.thumb) {
      this.images
        .get(pageUrl(document.document_id, 1, THUMB_WIDTH))
        .then((url) => {
          document.thumb = url;
          this.renderList();
        })
        .catch((err) => console.warn("thumbnail failed", err));
    }
    if (!this.selectedId) this.select(document.document_id);
  }

  find(documentId) {
    return this.documents.find((d) => d.document_id === documentId) || null;
  }

  get selected() {
    return this.find(this.selectedId);
  }

  select(documentId) {
    this.selectedId = documentId;
    const document = this.selected;
    this.viewer.show(
      document ? { document_id: document.document_id, pages: document.pages, kind: document.kind } : null,
    );
    this.render();
  }

  kindName(kind) {
    const key = `console.docs.kind.${kind}`;
    return t(key) === key ? String(kind || "") : t(key);
  }

  // ---------------------------------------------------------------- server events

  onDocumentAdded(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    this.addDocument(msg);
    this.render();
  }

  onSignatureCompleted(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    let item = this.signatures.find((s) => s.request_id === msg.request_id);
    if (!item) {
      item = { request_id: msg.request_id, document_id: null, title: "" };
      this.signatures.push(item);
    }
    item.state = "signed";
    item.signature_id = msg.signature_id;
    item.image_url = typeof msg.image_url === "string" ? msg.image_url : null;
    this.renderSignatures();
  }

  onPrintStatus(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    let job = this.printJobs.find((j) => j.job_id === msg.job_id);
    if (!job) {
      job = { job_id: msg.job_id, document_id: null };
      this.printJobs.push(job);
    }
    job.status = msg.status;
    this.renderPrintJobs();
  }

  // ---------------------------------------------------------------- actions

  /** Send `event`; `busyKey` disables its button meanwhile. Resolves with the ack or null. */
  async act(busyKey, event, payload) {
    if (!this.sessionId || this.busy.has(busyKey)) return null;
    const sessionId = this.sessionId;
    this.busy.add(busyKey);
    this.render();
    try {
      const ack = await this.request(event, { session_id: sessionId, ...payload });
      return sessionId === this.sessionId ? ack : null;
    } catch (err) {
      if (sessionId === this.sessionId) {
        this.setNote("console.docs.error", "error", { message: err.message || err.code });
      }
      return null;
    } finally {
      this.busy.delete(busyKey);
      if (sessionId === this.sessionId) this.render();
    }
  }

  async requestRescan() {
    const document = this.selected;
    if (!document) return;
    const reason = this.dom.rescanReason.value.trim();
    const ack = await this.act("rescan", "document.request_rescan", { document_id: document.document_id, reason });
    if (!ack) return;
    this.dom.rescanReason.value = "";
    this.setNote("console.rescan.sent", "ok");
  }

  async requestSignature() {
    const document = this.selected;
    if (!document) return;
    const title = this.dom.signTitle.value.trim() || this.kindName(document.kind);
    const ack = await this.act("sign", "signature.request", { document_id: document.document_id, title });
    if (!ack) return;
    this.dom.signTitle.value = "";
    if (!this.signatures.some((s) => s.request_id === ack.request_id)) {
      this.signatures.push({
        request_id: ack.request_id,
        document_id: document.document_id,
        title,
        state: "requested",
      });
    } else {
      const item = this.signatures.find((s) => s.request_id === ack.request_id);
      Object.assign(item, { document_id: document.document_id, title });
    }
    this.renderSignatures();
  }

  async sendPrint() {
    const document = this.selected;
    if (!document) return;
    const ack = await this.act("print", "print.send", { document_id: document.document_id });
    if (!ack) return;
    let job = this.printJobs.find((j) => j.job_id === ack.job_id);
    if (!job) {
      job = { job_id: ack.job_id, status: "queued" };
      this.printJobs.push(job);
    }
    job.document_id = document.document_id;
    this.renderPrintJobs();
  }

  async lodge() {
    if (this.receiptNo) return;
    const ack = await this.act("lodge", "case.submit", {});
    if (!ack || typeof ack.receipt_no !== "string") return;
    this.receiptNo = ack.receipt_no;
    this.setNote("console.case.lodged", "ok");
    this.render();
    if (this.onLodged) this.onLodged(ack.receipt_no);
  }

  // ---------------------------------------------------------------- rendering

  setNote(key, kind = "info", vars = null) {
    this.note = key ? { key, kind, vars } : null;
    this.renderNote();
  }

  renderNote() {
    const { note } = this.dom;
    note.hidden = !this.note;
    note.dataset.kind = this.note ? this.note.kind : "";
    note.dataset.key = this.note ? this.note.key : "";
    note.textContent = this.note ? t(this.note.key, this.note.vars) : "";
  }

  documentName(documentId) {
    const index = this.documents.findIndex((d) => d.document_id === documentId);
    if (index < 0) return "";
    return `${index + 1}. ${this.kindName(this.documents[index].kind)}`;
  }

  /** One list item per document, made once (its thumbnail is not fetched again). */
  documentItem(document, index) {
    if (!document.item) {
      const thumb = el("img", { class: "doc-thumb", alt: "", dataset: { testid: "doc-thumb", loaded: "false" } });
      thumb.addEventListener("load", () => {
        thumb.dataset.loaded = "true";
      });
      const name = el("span", { class: "doc-name" });
      const pages = el("span", { class: "hint" });
      const button = el(
        "button",
        {
          type: "button",
          class: "doc-open",
          dataset: { testid: "doc-open" },
          onclick: () => this.select(document.document_id),
        },
        thumb,
        name,
        pages,
      );
      const item = el(
        "li",
        { class: "doc-item", dataset: { testid: "doc-item", documentId: document.document_id, kind: document.kind } },
        button,
      );
      document.item = { item, button, thumb, name, pages };
    }
    const { item, button, thumb, name, pages } = document.item;
    const selected = document.document_id === this.selectedId;
    if (document.thumb && thumb.getAttribute("src") !== document.thumb) thumb.src = document.thumb;
    name.textContent = `${index + 1}. ${this.kindName(document.kind)}`;
    pages.textContent = t("console.docs.pages", { pages: document.pages });
    item.dataset.pages = String(document.pages);
    item.dataset.selected = String(selected);
    button.setAttribute("aria-pressed", String(selected));
    return item;
  }

  renderList() {
    const { list, none } = this.dom;
    list.replaceChildren(...this.documents.map((document, index) => this.documentItem(document, index)));
    list.dataset.count = String(this.documents.length);
    none.hidden = this.documents.length > 0;
  }

  renderSignatures() {
    const { signatures } = this.dom;
    signatures.replaceChildren(
      ...this.signatures.map((item) => {
        const children = [
          el("span", { class: "casework-item-title" }, item.title || this.documentName(item.document_id)),
          el(
            "span",
            { class: "casework-item-state", dataset: { state: item.state } },
            t(item.state === "signed" ? "console.sign.signed" : "console.sign.waiting"),
          ),
        ];
        if (item.image_url) {
          // made once: the signed URL is not cached, so it is not loaded again
          item.image =
            item.image ||
            el("img", { class: "signature-image", src: item.image_url, dataset: { testid: "signature-image" } });
          item.image.alt = t("console.sign.image", { title: item.title || "" });
          children.push(item.image);
        }
        return el(
          "li",
          {
            class: "casework-item",
            dataset: { testid: "signature-item", requestId: item.request_id, state: item.state },
          },
          ...children,
        );
      }),
    );
    signatures.dataset.count = String(this.signatures.length);
    signatures.hidden = this.signatures.length === 0;
  }

  renderPrintJobs() {
    const { printJobs } = this.dom;
    printJobs.replaceChildren(
      ...this.printJobs.map((job) =>
        el(
          "li",
          { class: "casework-item", dataset: { testid: "print-job", jobId: job.job_id, status: job.status } },
          el("span", { class: "casework-item-title" }, this.documentName(job.document_id)),
          el(
            "span",
            { class: "casework-item-state", dataset: { state: job.status } },
            t(`console.print.status.${job.status}`),
          ),
        ),
      ),
    );
    printJobs.dataset.count = String(this.printJobs.length);
    printJobs.hidden = this.printJobs.length === 0;
  }

  render() {
    const d = this.dom;
    const document = this.selected;
    const active = Boolean(this.sessionId);
    this.renderList();
    this.renderSignatures();
    this.renderPrintJobs();
    this.renderNote();
    d.selected.textContent = document ? this.documentName(document.document_id) : t("console.viewer.empty");
    d.selected.dataset.documentId = document ? document.document_id : "";
    d.rescan.disabled = !active || !document || this.busy.has("rescan");
    d.sign.disabled = !active || !document || this.busy.has("sign");
    d.print.disabled = !active || !document || this.busy.has("print");
    d.rescanReason.disabled = !document;
    d.signTitle.disabled = !document;
    if (document && !d.signTitle.value) d.signTitle.placeholder = this.kindName(document.kind);
    d.lodge.disabled = !active || Boolean(this.receiptNo) || this.busy.has("lodge");
    d.receipt.hidden = !this.receiptNo;
    d.receipt.dataset.receiptNo = this.receiptNo || "";
    d.receiptNo.textContent = this.receiptNo || "";
    this.viewer.render();
  }
}
