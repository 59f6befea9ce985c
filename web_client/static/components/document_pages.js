// Documents of a call, shared by the kiosk, the console and the print views: page image
// URLs, images loaded with a Bearer token (fetch → object URL, for <img>), and the
// annotation overlay (SVG over a page, in fractions of the page's width and height).
import { HttpError } from "../shared/api.js";

export const KINDS = ["id_card", "form", "supporting", "result"];
// The widths the server renders pages at (a request is rounded up to one of them).
export const PAGE_WIDTHS = [120, 240, 480, 960, 1600, 2400];

/** The URL of page `page` (1-based) of a document, `width` pixels wide. */
export function pageUrl(documentId, page, width) {
  const path = `/api/v1/documents/${encodeURIComponent(documentId)}/pages/${page}.png`;
  return width ? `${path}?w=${width}` : path;
}

/** The smallest rendered width that shows `pixels` device pixels without upscaling. */
export function pageWidthFor(pixels) {
  return PAGE_WIDTHS.find((w) => w >= pixels) || PAGE_WIDTHS[PAGE_WIDTHS.length - 1];
}

/**
 * Images fetched with an Authorization header, kept as object URLs (an <img> cannot send
 * the header itself). `get(url)` loads once per URL; `clear()` frees them all (a call
 * ended). A Content-Security-Policy must allow them: `img-src 'self' data: blob:`.
 */
export class AuthorizedImages {
  constructor(token) {
    this.token = token; // () => the Bearer token
    this.urls = new Map(); // url → Promise<object URL>
    this.generation = 0;
  }

  get(url) {
    let entry = this.urls.get(url);
    if (!entry) {
      const generation = this.generation;
      entry = fetchImage(url, this.token()).then((objectUrl) => {
        if (generation !== this.generation) {
          URL.revokeObjectURL(objectUrl); // cleared meanwhile
          throw new HttpError(0, "aborted", "cleared");
        }
        return objectUrl;
      });
      entry.catch(() => {
        if (this.urls.get(url) === entry) this.urls.delete(url); // try again next time
      });
      this.urls.set(url, entry);
    }
    return entry;
  }

  clear() {
    this.generation += 1;
    for (const entry of this.urls.values()) {
      entry.then((objectUrl) => URL.revokeObjectURL(objectUrl)).catch(() => {});
    }
    this.urls.clear();
  }
}

/** GET an image with the Bearer token; resolves with an object URL of its bytes. */
export async function fetchImage(url, token, timeoutMs = 20000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(url, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      cache: "no-store",
      credentials: "same-origin",
      signal: controller.signal,
    });
    if (!response.ok) {
      let error = {};
      try {
        error = ((await response.json()) || {}).error || {};
      } catch {
        // not JSON
      }
      throw new HttpError(response.status, error.code || "internal", error.message || `HTTP ${response.status}`);
    }
    return URL.createObjectURL(await response.blob());
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(0, controller.signal.aborted ? "timeout" : "unavailable", String(err));
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve when `img` shows `src` (rejects if it cannot be decoded). */
export function showImage(img, src) {
  if (img.getAttribute("src") === src && img.complete && img.naturalWidth > 0) return Promise.resolve();
  img.src = src;
  return img.decode();
}

// ---------------------------------------------------------------- annotations

const SVG_NS = "http://www.w3.org/2000/svg";
let markerCount = 0;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, String(value));
  }
  return node;
}

const pct = (fraction) => `${(clamp01(fraction) * 100).toFixed(3)}%`;

export function clamp01(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
}

/** A shape as the protocol has it, with its numbers clamped to 0..1 and rounded. */
export function normaliseShape(shape) {
  const r = (v) => Math.round(clamp01(v) * 10000) / 10000;
  const label = typeof shape.label === "string" && shape.label.trim() ? shape.label.trim().slice(0, 200) : null;
  if (shape.type === "rect") {
    const out = { type: "rect", x: r(shape.x), y: r(shape.y), w: r(shape.w), h: r(shape.h) };
    if (label) out.label = label;
    return out;
  }
  if (shape.type === "arrow") {
    const out = { type: "arrow", x1: r(shape.x1), y1: r(shape.y1), x2: r(shape.x2), y2: r(shape.y2) };
    if (label) out.label = label;
    return out;
  }
  return null;
}

/**
 * Draw `shapes` into `overlay` (an <svg> laid exactly over the page; percentages, so it
 * follows the page's size). Each shape gets data-testid `${testPrefix}-rect` /
 * `${testPrefix}-arrow` and its fractions in data-x, data-y, data-w, data-h (rect) or
 * data-x1 … data-y2 (arrow). `draft` marks a shape being drawn.
 */
export function renderShapes(overlay, shapes, testPrefix, { draft = null } = {}) {
  if (!overlay.dataset.marker) overlay.dataset.marker = `arrowhead-${++markerCount}`;
  const markerId = overlay.dataset.marker;
  const defs = svg("defs");
  const marker = svg("marker", {
    id: markerId,
    viewBox: "0 0 10 10",
    refX: 8,
    refY: 5,
    markerWidth: 5,
    markerHeight: 5,
    orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "annotation-arrowhead" }));
  defs.append(marker);
  const nodes = [defs];
  const all = draft ? [...shapes, { ...draft, draft: true }] : shapes;
  for (const shape of all) {
    const group = svg("g", { class: shape.draft ? "annotation annotation-draft" : "annotation" });
    let labelAt = null;
    if (shape.type === "rect") {
      group.append(
        svg("rect", {
          x: pct(shape.x),
          y: pct(shape.y),
          width: pct(shape.w),
          height: pct(shape.h),
          class: "annotation-rect",
          dataset: shape.draft
            ? { draft: "true" }
            : { testid: `${testPrefix}-rect`, x: shape.x, y: shape.y, w: shape.w, h: shape.h },
        }),
      );
      labelAt = [shape.x, shape.y];
    } else if (shape.type === "arrow") {
      group.append(
        svg("line", {
          x1: pct(shape.x1),
          y1: pct(shape.y1),
          x2: pct(shape.x2),
          y2: pct(shape.y2),
          class: "annotation-arrow",
          "marker-end": `url(#${markerId})`,
          dataset: shape.draft
            ? { draft: "true" }
            : { testid: `${testPrefix}-arrow`, x1: shape.x1, y1: shape.y1, x2: shape.x2, y2: shape.y2 },
        }),
      );
      labelAt = [shape.x1, shape.y1];
    } else {
      continue;
    }
    if (shape.label && labelAt) {
      const text = svg("text", { x: pct(labelAt[0]), y: pct(labelAt[1]), dy: "-0.35em", class: "annotation-label" });
      text.textContent = shape.label;
      group.append(text);
    }
    nodes.push(group);
  }
  overlay.replaceChildren(...nodes);
  overlay.dataset.count = String(shapes.length);
}

// ---------------------------------------------------------------- rotation

/**
 * A point in the displayed (rotated by `rotation` degrees clockwise) box, as fractions
 * (u, v) of the box, mapped back to fractions (x, y) of the unrotated page.
 */
export function unrotate(u, v, rotation) {
  switch (((rotation % 360) + 360) % 360) {
    case 90:
      return [v, 1 - u];
    case 180:
      return [1 - u, 1 - v];
    case 270:
      return [1 - v, u];
    default:
      return [u, v];
  }
}
