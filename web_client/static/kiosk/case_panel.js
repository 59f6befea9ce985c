// The kiosk's side of the casework in a call: the documents scanned in this call (with
// thumbnails), the page view with the officer's marks, the rescan prompt, the signature
// pad, the receipt number, the decision, and printing (print.job → the browser's print
// → print.done). kiosk.js owns the call; this module owns what happens to documents in it.
import { apiFetch } from "../shared/api.js";
import { byId, el } from "../shared/dom.js";
import { AuthorizedImages, normaliseShape, pageUrl, pageWidthFor, renderShapes, showImage } from "../components/document_pages.js";
import { t } from "../shared/i18n.js";
import { printImages } from "../components/printing.js";
import { SignaturePad } from "./signature_pad.js";

const THUMB_WIDTH = 240;
const PRINT_WIDTH = 1600;
// The kinds the kiosk itself uploads: the ones its list shows (not the officer's results).
const SCANNED_KINDS = ["id_card", "form", "supporting"];

/**
 * context(): {sessionId, token} during a call, else null; token(): the device token;
 * request(event, payload): an acknowledged /kiosk event; rescan(kind): start a scan of
 * that kind (the officer asked for one).
 */
export class KioskCasework {
  constructor({ context, token, request, rescan }) {
    this.context = context;
    this.request = request;
    this.rescan = rescan;
    this.images = new AuthorizedImages(token);
    this.dom = {
      list: byId("kiosk-docs"),
      view: byId("doc-view"),
      viewTitle: byId("doc-view-title"),
      viewNote: byId("doc-view-note"),
      viewStage: byId("doc-view-stage"),
      viewPage: byId("doc-view-page"),
      viewImage: byId("doc-view-image"),
      viewOverlay: byId("doc-view-overlay"),
      viewMessage: byId("doc-view-message"),
      viewPrev: byId("doc-view-prev"),
      viewNext: byId("doc-view-next"),
      viewClose: byId("doc-view-close"),
      receipt: byId("receipt"),
      receiptNo: byId("receipt-no"),
      decision: byId("decision"),
      rescanPrompt: byId("rescan-prompt"),
      rescanText: byId("rescan-text"),
      rescanReason: byId("rescan-reason"),
      rescanScan: byId("rescan-scan"),
      printStatus: byId("print-status"),
      note: byId("casework-note"),
      signature: byId("signature"),
      signatureFor: byId("signature-for"),
      signaturePad: byId("signature-pad"),
      signatureMessage: byId("signature-message"),
      signatureClear: byId("signature-clear"),
      signatureConfirm: byId("signature-confirm"),
    };
    new ResizeObserver(() => this.fitPage()).observe(this.dom.viewStage);
    this.pad = new SignaturePad(this.dom.signaturePad, { onChange: () => this.renderSignature() });
    this.dom.viewClose.addEventListener("click", () => this.closeView());
    this.dom.viewPrev.addEventListener("click", () => this.turnPage(-1));
    this.dom.viewNext.addEventListener("click", () => this.turnPage(1));
    this.dom.rescanScan.addEventListener("click", () => {
      if (this.rescanAsk) this.rescan(this.rescanAsk.kind);
    });
    this.dom.signatureClear.addEventListener("click", () => {
      this.pad.clear();
      this.signature.messageKey = null;
      this.renderSignature();
    });
    this.dom.signatureConfirm.addEventListener("click", () => this.submitSignature());
    this.reset();
  }

  /** Forget the call's casework (the kiosk went back to the start). */
  reset() {
    this.documents = [];
    this.annotations = new Map(); // "docId:page" → shapes
    this.view = null; // {documentId, page}
    this.rescanAsk = null; // {document_id, kind, reason}
    this.signature = null; // {request_id, document_id, title, sending, messageKey}
    this.receiptNo = null;
    this.decision = null; // {decision, message}
    this.printJob = null; // {job_id, state}
    this.noteKey = null;
    this.images.clear();
    this.pad.clear();
    this.render();
  }

  /** Listen to the casework events of the kiosk's socket. */
  listen(socket) {
    socket.on("document.annotation", (msg) => this.onAnnotation(msg));
    socket.on("document.rescan_requested", (msg) => this.onRescan(msg));
    socket.on("signature.requested", (msg) => this.onSignatureRequested(msg));
    socket.on("case.receipt", (msg) => this.onReceipt(msg));
    socket.on("case.decided", (msg) => this.onDecided(msg));
    socket.on("print.job", (msg) => this.onPrintJob(msg));
  }

  ours(msg) {
    const context = this.context();
    return Boolean(msg && context && msg.session_id === context.sessionId);
  }

  /** The call ended: close what needs the call (the pad, the page view). */
  endCall() {
    this.signature = null;
    this.view = null;
    this.render();
  }

  /**
   * The page was reloaded (or the socket came back) mid-call: read the call's documents and
   * receipt back from the server and show them as if their events had arrived live.
   */
  async restore() {
    const context = this.context();
    if (!context) return;
    let record;
    try {
      const path = `/api/v1/sessions/${encodeURIComponent(context.sessionId)}`;
      record = await apiFetch(path, { token: context.token });
    } catch (err) {
      console.warn("session read-back failed", err);
      return;
    }
    if (!record || !this.ours({ session_id: context.sessionId })) return; // the call moved on
    for (const document of Array.isArray(record.documents) ? record.documents : []) {
      if (SCANNED_KINDS.includes(document.kind)) this.addDocument(document);
    }
    const found = record.case;
    if (found && typeof found.receipt_no === "string") {
      this.onReceipt({ session_id: context.sessionId, receipt_no: found.receipt_no });
      if (!this.decision) {
        this.onDecided({ session_id: context.sessionId, decision: found.state, receipt_no: found.receipt_no });
      }
    }
  }

  // ---------------------------------------------------------------- documents

  /** A document this kiosk uploaded in the call ({document_id, kind, pages, sha256}). */
  addDocument(answer) {
    if (!answer || !answer.document_id || this.find(answer.document_id)) return;
    this.documents.push({
      document_id: answer.document_id,
      kind: answer.kind,
      pages: Number(answer.pages) || 1,
      thumb: null,
    });
    if (this.rescanAsk && this.rescanAsk.kind === answer.kind) this.rescanAsk = null;
    this.render();
    this.loadThumb(answer.document_id);
  }

  find(documentId) {
    return this.documents.find((d) => d.document_id === documentId) || null;
  }

  async loadThumb(documentId) {
    try {
      const url = await this.images.get(pageUrl(documentId, 1, THUMB_WIDTH));
      const document = this.find(documentId);
      if (!document) return;
      document.thumb = url;
      this.renderList();
    } catch (err) {
      console.warn("thumbnail failed", err);
    }
  }

  kindName(kind) {
    const key = `kiosk.docs.kind.${kind}`;
    return t(key) === key ? String(kind || "") : t(key);
  }

  // ---------------------------------------------------------------- page view

  openView(documentId, page = 1) {
    const document = this.find(documentId);
    const pages = document ? document.pages : page;
    this.view = { documentId, page: Math.min(Math.max(1, page), Math.max(pages, page)) };
    this.renderView();
  }

  closeView() {
    this.view = null;
    this.renderView();
  }

  turnPage(step) {
    if (!this.view) return;
    const document = this.find(this.view.documentId);
    const pages = document ? document.pages : this.view.page;
    const page = this.view.page + step;
    if (page < 1 || page > pages) return;
    this.view = { ...this.view, page };
    this.renderView();
  }

  onAnnotation(msg) {
    if (!this.ours(msg) || !msg.document_id || !(Number(msg.page) >= 1)) return;
    const shapes = (Array.isArray(msg.shapes) ? msg.shapes : []).map(normaliseShape).filter(Boolean);
    this.annotations.set(`${msg.document_id}:${msg.page}`, shapes);
    const document = this.find(msg.document_id);
    if (document && document.pages < msg.page) document.pages = msg.page;
    this.openView(msg.document_id, Number(msg.page));
  }

  async renderView() {
    const { view } = this;
    const d = this.dom;
    d.view.hidden = !view;
    if (!view) {
      d.view.dataset.documentId = "";
      d.view.dataset.page = "";
      d.viewImage.removeAttribute("src");
      renderShapes(d.viewOverlay, [], "kiosk-annotation");
      return;
    }
    const document = this.find(view.documentId);
    const pages = document ? document.pages : view.page;
    d.view.dataset.documentId = view.documentId;
    d.view.dataset.page = String(view.page);
    d.view.dataset.pages = String(pages);
    d.viewTitle.textContent = [
      document ? this.kindName(document.kind) : "",
      t("kiosk.view.page", { page: view.page, pages }),
    ]
      .filter(Boolean)
      .join(" · ");
    d.viewPrev.disabled = view.page <= 1;
    d.viewNext.disabled = view.page >= pages;
    d.viewPrev.hidden = d.viewNext.hidden = pages <= 1;
    const shapes = this.annotations.get(`${view.documentId}:${view.page}`) || [];
    d.viewNote.hidden = shapes.length === 0;
    d.viewImage.dataset.loaded = "false";
    d.viewMessage.textContent = t("kiosk.view.loading");
    d.viewMessage.hidden = false;
    renderShapes(d.viewOverlay, shapes, "kiosk-annotation");
    const width = pageWidthFor(Math.min(d.view.clientWidth || 800, 1200) * (window.devicePixelRatio || 1));
    try {
      const url = await this.images.get(pageUrl(view.documentId, view.page, width));
      if (this.view !== view) return;
      await showImage(d.viewImage, url);
      if (this.view !== view) return;
      d.viewImage.dataset.loaded = "true";
      d.viewMessage.hidden = true;
      this.fitPage();
    } catch (err) {
      if (this.view !== view) return;
      console.warn("page failed", err);
      d.viewMessage.textContent = t("kiosk.view.failed");
    }
  }

  /** The page as large as the view allows, the marks' overlay exactly over it. */
  fitPage() {
    const { viewStage, viewPage, viewImage } = this.dom;
    const ratio = viewImage.naturalHeight / viewImage.naturalWidth;
    if (!this.view || !(ratio > 0) || !viewStage.clientWidth) return;
    const width = Math.max(50, Math.min(viewStage.clientWidth - 8, (viewStage.clientHeight - 8) / ratio));
    viewPage.style.width = `${Math.floor(width)}px`;
    viewPage.style.height = `${Math.floor(width * ratio)}px`;
  }

  // ---------------------------------------------------------------- rescan

  onRescan(msg) {
    if (!this.ours(msg)) return;
    const document = this.find(msg.document_id);
    this.rescanAsk = {
      document_id: msg.document_id,
      kind: document ? document.kind : "supporting",
      reason: typeof msg.reason === "string" ? msg.reason : "",
    };
    this.renderRescan();
  }

  renderRescan() {
    const ask = this.rescanAsk;
    const d = this.dom;
    d.rescanPrompt.hidden = !ask;
    d.rescanPrompt.dataset.documentId = ask ? ask.document_id : "";
    d.rescanPrompt.dataset.kind = ask ? ask.kind : "";
    if (!ask) return;
    d.rescanText.textContent = t("kiosk.rescan.text", { kind: this.kindName(ask.kind) });
    d.rescanReason.hidden = !ask.reason;
    d.rescanReason.textContent = ask.reason ? t("kiosk.rescan.reason", { reason: ask.reason }) : "";
    d.rescanScan.disabled = !this.context();
  }

  // ---------------------------------------------------------------- signature

  onSignatureRequested(msg) {
    if (!this.ours(msg) || !msg.request_id) return;
    this.signature = {
      request_id: msg.request_id,
      document_id: msg.document_id,
      title: typeof msg.title === "string" ? msg.title : "",
      sending: false,
      messageKey: null,
    };
    this.pad.clear();
    this.view = null;
    this.renderView();
    this.renderSignature();
    requestAnimationFrame(() => this.pad.resize());
  }

  async submitSignature() {
    const signature = this.signature;
    if (!signature || signature.sending) return;
    if (this.pad.isEmpty) {
      signature.messageKey = "kiosk.sign.empty";
      this.renderSignature();
      return;
    }
    signature.sending = true;
    signature.messageKey = "kiosk.sign.sending";
    this.renderSignature();
    const payload = { request_id: signature.request_id, strokes: this.pad.strokesForSubmit() };
    const png = this.pad.pngBase64();
    if (png) payload.png_base64 = png;
    try {
      await this.request("signature.submit", payload);
      if (this.signature !== signature) return;
      this.signature = null;
      this.pad.clear();
      this.setNote("kiosk.sign.done", "ok");
    } catch (err) {
      if (this.signature !== signature) return;
      console.warn("signature.submit failed", err);
      signature.sending = false;
      if (err.code === "conflict" || err.code === "not_found" || err.code === "forbidden") {
        this.signature = null;
        this.setNote("kiosk.sign.cancelled", "error");
      } else {
        signature.messageKey = "kiosk.sign.failed";
      }
    }
    this.renderSignature();
  }

  renderSignature() {
    const signature = this.signature;
    const d = this.dom;
    d.signature.hidden = !signature;
    d.signature.dataset.requestId = signature ? signature.request_id : "";
    d.signature.dataset.state = signature ? (signature.sending ? "sending" : "open") : "";
    if (!signature) return;
    d.signatureFor.textContent = signature.title ? t("kiosk.sign.for", { title: signature.title }) : "";
    d.signatureMessage.textContent = signature.messageKey ? t(signature.messageKey) : "";
    d.signatureMessage.dataset.key = signature.messageKey || "";
    d.signatureConfirm.disabled = signature.sending || this.pad.isEmpty;
    d.signatureClear.disabled = signature.sending;
  }

  // ---------------------------------------------------------------- receipt & decision

  onReceipt(msg) {
    if (!this.ours(msg) || typeof msg.receipt_no !== "string") return;
    this.receiptNo = msg.receipt_no;
    this.renderReceipt();
  }

  onDecided(msg) {
    if (!this.ours(msg) || !["approved", "rejected"].includes(msg.decision)) return;
    if (msg.receipt_no && !this.receiptNo) this.receiptNo = msg.receipt_no;
    this.decision = { decision: msg.decision, message: typeof msg.message === "string" ? msg.message : "" };
    this.renderReceipt();
  }

  renderReceipt() {
    const d = this.dom;
    d.receipt.hidden = !this.receiptNo;
    d.receipt.dataset.receiptNo = this.receiptNo || "";
    d.receiptNo.textContent = this.receiptNo || "";
    const decision = this.decision;
    d.decision.hidden = !decision;
    d.decision.dataset.decision = decision ? decision.decision : "";
    d.decision.replaceChildren();
    if (decision) {
      d.decision.append(el("strong", {}, t(`kiosk.decided.${decision.decision}`)));
      if (decision.message) d.decision.append(" ", t("kiosk.decided.message", { message: decision.message }));
    }
  }

  // ---------------------------------------------------------------- printing

  async onPrintJob(msg) {
    if (!this.ours(msg) || !msg.job_id || !msg.document_id) return;
    const job = { job_id: msg.job_id, state: "printing" };
    this.printJob = job;
    this.renderPrint();
    let status = "printed";
    try {
      const urls = [];
      if (msg.content_type === "application/pdf") {
        const pages = Math.max(1, Number(msg.pages) || 1);
        for (let page = 1; page <= pages; page += 1) {
          urls.push(await this.images.get(pageUrl(msg.document_id, page, PRINT_WIDTH)));
        }
      } else {
        urls.push(msg.url); // a signed URL of the JPEG/PNG itself
      }
      await printImages(urls, { title: t("kiosk.title") });
    } catch (err) {
      console.warn("printing failed", err);
      status = "failed";
    }
    try {
      await this.request("print.done", { job_id: msg.job_id, status });
    } catch (err) {
      console.warn("print.done failed", err);
    }
    job.state = status;
    if (this.printJob === job) this.renderPrint();
  }

  renderPrint() {
    const job = this.printJob;
    const d = this.dom;
    d.printStatus.hidden = !job;
    d.printStatus.dataset.jobId = job ? job.job_id : "";
    d.printStatus.dataset.state = job ? job.state : "";
    d.printStatus.textContent = job ? t(`kiosk.print.${job.state}`) : "";
  }

  // ---------------------------------------------------------------- rendering

  setNote(key, kind = "info") {
    this.noteKey = key ? { key, kind } : null;
    this.renderNote();
  }

  renderNote() {
    const note = this.noteKey;
    this.dom.note.hidden = !note;
    this.dom.note.dataset.key = note ? note.key : "";
    this.dom.note.dataset.kind = note ? note.kind : "";
    this.dom.note.textContent = note ? t(note.key) : "";
  }

  renderList() {
    const { list } = this.dom;
    list.replaceChildren(
      ...this.documents.map((document) => {
        const thumb = el("img", {
          class: "kiosk-doc-thumb",
          alt: "",
          dataset: { testid: "kiosk-doc-thumb", loaded: String(Boolean(document.thumb)) },
        });
        if (document.thumb) thumb.src = document.thumb;
        const button = el(
          "button",
          {
            type: "button",
            class: "kiosk-doc-open",
            dataset: { testid: "kiosk-doc-open" },
            onclick: () => this.openView(document.document_id, 1),
          },
          thumb,
          el("span", { class: "kiosk-doc-caption" }, this.kindName(document.kind)),
          el("span", { class: "kiosk-doc-pages" }, t("kiosk.docs.pages", { pages: document.pages })),
        );
        return el(
          "li",
          {
            class: "kiosk-doc",
            dataset: {
              testid: "kiosk-doc",
              documentId: document.document_id,
              kind: document.kind,
              pages: String(document.pages),
            },
          },
          button,
        );
      }),
    );
    list.dataset.count = String(this.documents.length);
  }

  render() {
    this.renderList();
    this.renderView();
    this.renderRescan();
    this.renderSignature();
    this.renderReceipt();
    this.renderPrint();
    this.renderNote();
  }
}
