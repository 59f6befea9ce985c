// The console's document viewer: one page at a time (page images loaded with the staff
// member's token), zoom, rotation, and marks drawn with the mouse (a rectangle or an
// arrow) that go to the kiosk at once as `document.annotate` — the page's whole set of
// marks each time, in fractions of the unrotated page.
import { byTestId } from "../shared/dom.js";
import { normaliseShape, pageUrl, pageWidthFor, renderShapes, showImage, unrotate } from "../components/document_pages.js";
import { t } from "../shared/i18n.js";

const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];
const DEFAULT_RATIO = 297 / 210; // height / width of an A4 page, until the image says
const MIN_SIZE = 0.01; // smaller marks are taken as a slip of the mouse

/**
 * root: the viewer element (children found by data-testid); images: AuthorizedImages
 * with the staff token; annotate(documentId, page, shapes) → Promise (rejects with a
 * RequestError); onMessage(key, kind, vars): a line for the staff member.
 */
export class DocumentViewer {
  constructor(root, { images, annotate, onMessage }) {
    this.root = root;
    this.images = images;
    this.annotate = annotate;
    this.onMessage = onMessage;
    const q = (id) => byTestId(id, root);
    this.dom = {
      prev: q("viewer-prev"),
      next: q("viewer-next"),
      page: q("viewer-page"),
      zoomIn: q("viewer-zoom-in"),
      zoomOut: q("viewer-zoom-out"),
      zoom: q("viewer-zoom"),
      rotate: q("viewer-rotate"),
      tools: [...root.querySelectorAll("[data-tool]")].filter((n) => n.tagName === "BUTTON"),
      label: q("viewer-label"),
      clear: q("viewer-clear"),
      stage: q("viewer-stage"),
      empty: q("viewer-empty"),
      box: q("viewer-box"),
      pageEl: q("viewer-page-el"),
      image: q("viewer-image"),
      overlay: q("viewer-annotations"),
      draw: q("viewer-draw"),
      message: q("viewer-message"),
    };
    const d = this.dom;
    d.prev.addEventListener("click", () => this.goTo(this.page - 1));
    d.next.addEventListener("click", () => this.goTo(this.page + 1));
    d.zoomIn.addEventListener("click", () => this.setZoom(1));
    d.zoomOut.addEventListener("click", () => this.setZoom(-1));
    d.rotate.addEventListener("click", () => {
      this.rotation = (this.rotation + 90) % 360;
      this.render();
    });
    for (const button of d.tools) {
      button.addEventListener("click", () => {
        this.tool = button.dataset.tool;
        this.renderTools();
      });
    }
    d.clear.addEventListener("click", () => this.send([]));
    d.draw.addEventListener("pointerdown", (e) => this.drawStart(e));
    d.draw.addEventListener("pointermove", (e) => this.drawMove(e));
    d.draw.addEventListener("pointerup", (e) => this.drawEnd(e));
    d.draw.addEventListener("pointercancel", () => this.drawCancel());
    // Shown, or resized: lay out again, and load a sharper image if the page grew.
    new ResizeObserver(() => this.doc && this.render()).observe(d.stage);
    this.tool = "rect";
    this.reset();
  }

  /** No document (a new call). */
  reset() {
    this.doc = null;
    this.page = 1;
    this.zoom = 1;
    this.rotation = 0;
    this.shapes = new Map(); // "docId:page" → shapes sent
    this.drawing = null;
    this.ratio = DEFAULT_RATIO;
    this.loaded = null; // URL shown
    this.render();
  }

  /** Show `doc` ({document_id, pages, kind}) at `page`. */
  show(doc, page = 1) {
    if (!doc) {
      this.doc = null;
    } else {
      if (!this.doc || this.doc.document_id !== doc.document_id) {
        this.zoom = 1;
        this.rotation = 0;
      }
      this.doc = doc;
      this.page = Math.min(Math.max(1, page), doc.pages || 1);
    }
    this.render();
  }

  goTo(page) {
    if (!this.doc || page < 1 || page > (this.doc.pages || 1)) return;
    this.page = page;
    this.drawing = null;
    this.render();
  }

  setZoom(step) {
    const at = ZOOMS.indexOf(this.zoom);
    const next = ZOOMS[Math.min(ZOOMS.length - 1, Math.max(0, at + step))];
    if (next === this.zoom) return;
    this.zoom = next;
    this.render();
  }

  get key() {
    return this.doc ? `${this.doc.document_id}:${this.page}` : "";
  }

  get pageShapes() {
    return this.shapes.get(this.key) || [];
  }

  // ---------------------------------------------------------------- drawing

  /** The pointer as fractions (x, y) of the unrotated page. */
  pointAt(event) {
    const rect = this.dom.box.getBoundingClientRect();
    const u = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const v = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    return unrotate(u, v, this.rotation);
  }

  drawStart(event) {
    if (!this.doc || this.drawing || event.button !== 0) return;
    event.preventDefault();
    try {
      this.dom.draw.setPointerCapture(event.pointerId);
    } catch {
      // synthetic pointers cannot be captured
    }
    const [x, y] = this.pointAt(event);
    this.drawing = { pointerId: event.pointerId, key: this.key, x0: x, y0: y, x1: x, y1: y };
    this.renderShapes();
  }

  drawMove(event) {
    if (!this.drawing || event.pointerId !== this.drawing.pointerId) return;
    [this.drawing.x1, this.drawing.y1] = this.pointAt(event);
    this.renderShapes();
  }

  drawEnd(event) {
    const drawing = this.drawing;
    if (!drawing || event.pointerId !== drawing.pointerId) return;
    [drawing.x1, drawing.y1] = this.pointAt(event);
    this.drawing = null;
    const shape = this.shapeOf(drawing);
    if (!shape || drawing.key !== this.key) {
      this.renderShapes();
      return;
    }
    const label = this.dom.label.value.trim();
    if (label) shape.label = label;
    this.dom.label.value = "";
    this.send([...this.pageShapes, normaliseShape(shape)]);
  }

  drawCancel() {
    this.drawing = null;
    this.renderShapes();
  }

  shapeOf(drawing) {
    const { x0, y0, x1, y1 } = drawing;
    if (this.tool === "arrow") {
      if (Math.hypot(x1 - x0, y1 - y0) < MIN_SIZE * 2) return null;
      return { type: "arrow", x1: x0, y1: y0, x2: x1, y2: y1 };
    }
    const w = Math.abs(x1 - x0);
    const h = Math.abs(y1 - y0);
    if (w < MIN_SIZE || h < MIN_SIZE) return null;
    return { type: "rect", x: Math.min(x0, x1), y: Math.min(y0, y1), w, h };
  }

  /** Send the page's marks (all of them) to the kiosk; keep them once it accepted. */
  async send(shapes) {
    if (!this.doc) return;
    const key = this.key;
    const { document_id: documentId } = this.doc;
    const page = this.page;
    const before = this.shapes.get(key) || [];
    this.shapes.set(key, shapes); // shown at once; taken back if refused
    this.renderShapes();
    this.root.dataset.sending = "true";
    try {
      await this.annotate(documentId, page, shapes);
      this.root.dataset.sent = String(Number(this.root.dataset.sent || 0) + 1);
      this.onMessage("console.viewer.sent", "ok");
    } catch (err) {
      if (this.shapes.get(key) === shapes) this.shapes.set(key, before);
      this.onMessage("console.docs.error", "error", { message: err.message || err.code });
    } finally {
      this.root.dataset.sending = "false";
      this.renderShapes();
    }
  }

  // ---------------------------------------------------------------- rendering

  /** Sizes of the page and of its (rotated) box for the stage, the ratio and the zoom. */
  layout() {
    const d = this.dom;
    if (!this.doc) return;
    const turned = this.rotation % 180 !== 0;
    const stageW = Math.max(120, d.stage.clientWidth - 24);
    const stageH = Math.max(120, d.stage.clientHeight - 24);
    // the box's height / width as shown
    const boxRatio = turned ? 1 / this.ratio : this.ratio;
    let boxW = Math.min(stageW, stageH / boxRatio) * this.zoom;
    let boxH = boxW * boxRatio;
    boxW = Math.round(boxW);
    boxH = Math.round(boxH);
    const pageW = turned ? boxH : boxW;
    const pageH = turned ? boxW : boxH;
    d.box.style.width = `${boxW}px`;
    d.box.style.height = `${boxH}px`;
    d.pageEl.style.width = `${pageW}px`;
    d.pageEl.style.height = `${pageH}px`;
    d.pageEl.style.transform = `translate(-50%, -50%) rotate(${this.rotation}deg)`;
    return pageW;
  }

  renderTools() {
    for (const button of this.dom.tools) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === this.tool));
    }
    this.root.dataset.tool = this.tool;
  }

  renderShapes() {
    const draft = this.drawing && this.drawing.key === this.key ? this.shapeOf(this.drawing) : null;
    renderShapes(this.dom.overlay, this.pageShapes, "viewer-annotation", { draft });
  }

  render() {
    const d = this.dom;
    const doc = this.doc;
    const pages = doc ? doc.pages || 1 : 0;
    this.root.dataset.documentId = doc ? doc.document_id : "";
    this.root.dataset.page = doc ? String(this.page) : "";
    this.root.dataset.pages = doc ? String(pages) : "";
    this.root.dataset.zoom = String(this.zoom);
    this.root.dataset.rotation = String(this.rotation);
    d.empty.hidden = Boolean(doc);
    d.box.hidden = !doc;
    d.page.textContent = doc ? t("console.viewer.page", { page: this.page, pages }) : "";
    d.prev.disabled = !doc || this.page <= 1;
    d.next.disabled = !doc || this.page >= pages;
    d.zoomIn.disabled = !doc || this.zoom >= ZOOMS[ZOOMS.length - 1];
    d.zoomOut.disabled = !doc || this.zoom <= ZOOMS[0];
    d.rotate.disabled = !doc;
    d.clear.disabled = !doc;
    d.zoom.textContent = `${Math.round(this.zoom * 100)}%`;
    this.renderTools();
    this.renderShapes();
    if (!doc) {
      d.image.removeAttribute("src");
      d.image.dataset.loaded = "false";
      d.message.hidden = true;
      this.loaded = null;
      return;
    }
    const pageW = this.layout();
    if (!d.stage.clientWidth) return; // not on screen: loaded when shown
    this.load(pageUrl(doc.document_id, this.page, pageWidthFor(pageW * (window.devicePixelRatio || 1))));
  }

  async load(url) {
    const d = this.dom;
    if (this.loaded === url) return;
    this.loaded = url;
    d.image.dataset.loaded = "false";
    d.message.hidden = false;
    d.message.textContent = t("console.viewer.loading");
    try {
      const src = await this.images.get(url);
      if (this.loaded !== url) return;
      await showImage(d.image, src);
      if (this.loaded !== url) return;
      const ratio = d.image.naturalHeight / d.image.naturalWidth;
      d.image.dataset.loaded = "true";
      d.message.hidden = true;
      if (Number.isFinite(ratio) && ratio > 0 && Math.abs(ratio - this.ratio) > 0.001) {
        this.ratio = ratio;
        this.layout();
      }
    } catch (err) {
      if (this.loaded !== url) return;
      console.warn("page image failed", err);
      this.loaded = null;
      d.message.textContent = t("console.viewer.failed");
    }
  }
}
