// A signature pad on a <canvas>, drawn with pointer events (finger, pen or mouse).
// It keeps the strokes as drawn — [[[x, y, t], …], …] with x, y fractions (0..1) of the
// pad and t milliseconds since the first point — and gives the picture as a PNG
// (transparent background, dark ink).

const MAX_STROKES = 200; // the server's limits (signature.submit)
const MAX_POINTS = 2000;
const MAX_SIDE = 2000;
export const MAX_PNG_BYTES = 150000;

export class SignaturePad {
  constructor(canvas, { onChange = null } = {}) {
    this.canvas = canvas;
    this.onChange = onChange;
    this.strokes = [];
    this.current = null;
    this.startedAt = null;
    this.pointerId = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    canvas.addEventListener("lostpointercapture", (e) => this.up(e));
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(canvas);
  }

  get isEmpty() {
    return !this.strokes.some((stroke) => stroke.length > 0);
  }

  /** Match the canvas's pixels to its size on screen, and redraw. */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const ratio = Math.min(window.devicePixelRatio || 1, 2, MAX_SIDE / Math.max(rect.width, rect.height));
    const width = Math.round(rect.width * ratio);
    const height = Math.round(rect.height * ratio);
    if (this.canvas.width === width && this.canvas.height === height) return;
    this.canvas.width = width;
    this.canvas.height = height;
    this.redraw();
  }

  clear() {
    this.strokes = [];
    this.current = null;
    this.startedAt = null;
    this.redraw();
    this.changed();
  }

  changed() {
    this.canvas.dataset.strokes = String(this.strokes.length);
    this.canvas.dataset.empty = String(this.isEmpty);
    if (this.onChange) this.onChange(this);
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    const now = performance.now();
    if (this.startedAt === null) this.startedAt = now;
    return [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000, Math.round(now - this.startedAt)];
  }

  down(event) {
    if (this.pointerId !== null || this.strokes.length >= MAX_STROKES) return;
    event.preventDefault();
    this.pointerId = event.pointerId;
    try {
      this.canvas.setPointerCapture(event.pointerId);
    } catch {
      // a synthetic pointer cannot be captured; the moves still arrive
    }
    this.current = [this.point(event)];
    this.strokes.push(this.current);
    this.drawDot(this.current[0]);
  }

  move(event) {
    if (event.pointerId !== this.pointerId || !this.current) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      if (this.current.length >= MAX_POINTS) break;
      const previous = this.current[this.current.length - 1];
      const next = this.point(e);
      if (next[0] === previous[0] && next[1] === previous[1]) continue;
      this.current.push(next);
      this.drawSegment(previous, next);
    }
  }

  up(event) {
    if (event.pointerId !== this.pointerId) return;
    this.pointerId = null;
    this.current = null;
    this.changed();
  }

  context() {
    const ctx = this.canvas.getContext("2d");
    const scale = Math.max(this.canvas.width, this.canvas.height);
    ctx.strokeStyle = "#10233f";
    ctx.fillStyle = "#10233f";
    ctx.lineWidth = Math.max(2, scale / 300);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    return ctx;
  }

  /** @param {number[]} point [x, y, t] */
  drawDot([x, y]) {
    const ctx = this.context();
    ctx.beginPath();
    ctx.arc(x * this.canvas.width, y * this.canvas.height, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  /** @param {number[]} from @param {number[]} to */
  drawSegment([x1, y1], [x2, y2]) {
    const ctx = this.context();
    const { width, height } = this.canvas;
    ctx.beginPath();
    ctx.moveTo(x1 * width, y1 * height);
    ctx.lineTo(x2 * width, y2 * height);
    ctx.stroke();
  }

  redraw() {
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    for (const stroke of this.strokes) {
      if (stroke.length === 1) this.drawDot(stroke[0]);
      for (let i = 1; i < stroke.length; i += 1) this.drawSegment(stroke[i - 1], stroke[i]);
    }
  }

  /** The strokes as the protocol wants them (non-empty ones only). */
  strokesForSubmit() {
    return this.strokes.filter((stroke) => stroke.length > 0).map((stroke) => stroke.map((p) => [...p]));
  }

  /** The pad as a PNG, base64 without the data: prefix; smaller if it would be too big. */
  pngBase64() {
    let source = this.canvas;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const base64 = source.toDataURL("image/png").replace(/^data:image\/png;base64,/, "");
      if ((base64.length * 3) / 4 <= MAX_PNG_BYTES) return base64;
      const smaller = document.createElement("canvas");
      smaller.width = Math.max(1, Math.round(source.width / 2));
      smaller.height = Math.max(1, Math.round(source.height / 2));
      smaller.getContext("2d").drawImage(source, 0, 0, smaller.width, smaller.height);
      source = smaller;
    }
    return null; // strokes only
  }
}
