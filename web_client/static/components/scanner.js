// The kiosk's scanner and document upload, for the ID card and every other document.
//
// A scanner is any object with `scan(options)` returning a Promise of a File/Blob (JPEG,
// PNG or PDF bytes) or null when nothing was scanned; `options.kind` says what is being
// scanned (`id_card`, `form`, `supporting`). The kiosk uses file inputs
// (`FileInputScanner`, one per kind of control) unless a driver puts its own in
// `window.smartcounter.scanner`.
//
// `ScanControl` is one "Scan …" button with its progress bar and status line: it asks
// the scanner, uploads what it gives, and shows each step (machine-readable in
// data-state on the status line).
import { HttpError } from "../shared/api.js";
import { t } from "../shared/i18n.js";

// ---------------------------------------------------------------- scanners

/**
 * A file input standing in for a scanner. `scan()` opens the file chooser and resolves
 * with the chosen file, or null if the person cancels (or a newer scan() replaces this
 * one). A file put in the input without scan() (a test driver, an assistive tool) goes
 * to `onUnrequested(file)`.
 */
export class FileInputScanner {
  constructor(input, onUnrequested = null) {
    this.input = input;
    this.onUnrequested = onUnrequested;
    this.pending = null;
    input.addEventListener("change", () => {
      const file = (input.files && input.files[0]) || null;
      input.value = ""; // choosing the same file again fires change again
      const resolve = this.pending;
      this.pending = null;
      if (resolve) resolve(file);
      else if (file && this.onUnrequested) this.onUnrequested(file);
    });
    input.addEventListener("cancel", () => this.settle(null));
  }

  settle(value) {
    const resolve = this.pending;
    this.pending = null;
    if (resolve) resolve(value);
  }

  /** Must be called from a user gesture (a click): browsers open choosers only then. */
  scan() {
    this.settle(null);
    return new Promise((resolve) => {
      this.pending = resolve;
      this.input.click();
    });
  }
}

/**
 * The kiosk's default scanner: the ID card's file input for `kind: "id_card"`, the
 * documents' file input (which also takes PDF) for anything else.
 */
export class FileInputScanners {
  constructor(idScanner, documentScanner) {
    this.idScanner = idScanner;
    this.documentScanner = documentScanner;
  }

  /** @param {{kind?: string}} [options] */
  scan({ kind } = {}) {
    return (kind === "id_card" ? this.idScanner : this.documentScanner).scan();
  }
}

/** Is `scanner` usable as a scanner (has a scan() method)? */
export function isScanner(scanner) {
  return Boolean(scanner) && typeof scanner.scan === "function";
}

// ---------------------------------------------------------------- upload

const DEFAULT_NAMES = { "image/png": "scan.png", "application/pdf": "scan.pdf" };

/**
 * POST a document to /api/v1/sessions/{sid}/documents (multipart: kind, file) with
 * the kiosk's device token. `onProgress(fraction)` follows the upload (0..1); `signal`
 * (an AbortSignal) cancels it. Resolves with {document_id, sha256, pages, kind};
 * rejects with an HttpError (.status 0 for a network failure, .code "aborted" when
 * cancelled).
 */
export function uploadDocument({ sessionId, token, file, kind, onProgress, signal, timeoutMs = 120000 }) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new HttpError(0, "aborted", "upload cancelled"));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/sessions/${encodeURIComponent(sessionId)}/documents`);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.timeout = timeoutMs;
    const onAbort = () => xhr.abort();
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal && signal.removeEventListener("abort", onAbort);
    if (onProgress) {
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
      });
    }
    xhr.addEventListener("load", () => {
      done();
      const body = xhr.response && typeof xhr.response === "object" ? xhr.response : null;
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
        return;
      }
      const error = (body && body.error) || {};
      reject(new HttpError(xhr.status, error.code || "internal", error.message || `HTTP ${xhr.status}`));
    });
    xhr.addEventListener("error", () => {
      done();
      reject(new HttpError(0, "unavailable", "network error while uploading"));
    });
    xhr.addEventListener("timeout", () => {
      done();
      reject(new HttpError(0, "timeout", "the upload timed out"));
    });
    xhr.addEventListener("abort", () => {
      done();
      reject(new HttpError(0, "aborted", "upload cancelled"));
    });
    const form = new FormData();
    form.append("kind", kind);
    form.append("file", file, file.name || DEFAULT_NAMES[file.type] || "scan.jpg");
    xhr.send(form);
  });
}

/** The message key for a failed upload, under `prefix` (e.g. "kiosk.scan"). */
export function uploadErrorKey(err, prefix = "kiosk.scan") {
  const status = err && err.status;
  if (status === 413) return `${prefix}.error.tooLarge`;
  if (status === 415) return `${prefix}.error.unsupported`;
  if (status === 422) return `${prefix}.error.unreadable`;
  if (status === 409) return `${prefix}.error.ended`;
  if (status === 0) return `${prefix}.error.network`;
  return `${prefix}.error.generic`;
}

// ---------------------------------------------------------------- one scan button

/**
 * A "Scan …" control of the kiosk.
 *   dom: {button, progress, status} (the status line carries data-state: idle, scanning,
 *     uploading, checking, done (with data-document-id), cancelled, error (with
 *     data-error and data-http-status));
 *   keys: the message key prefix ("kiosk.scan" → kiosk.scan.scanning, …);
 *   context(): {sessionId, token} while a call is on, else null;
 *   scanner(): the scanner to ask; kind(): the document kind to send;
 *   onUploaded(answer): after a successful upload ({document_id, sha256, pages, kind}).
 */
export class ScanControl {
  constructor({ dom, keys, context, scanner, kind, onUploaded = null }) {
    this.dom = dom;
    this.keys = keys;
    this.context = context;
    this.scanner = scanner;
    this.kind = kind;
    this.onUploaded = onUploaded;
    this.state = "idle";
    this.key = null;
    this.vars = null;
    this.documentId = null;
    this.error = null;
    this.controller = null;
    this.scanning = false;
    dom.button.addEventListener("click", () => this.scan());
  }

  set(state, key = null, vars = null) {
    this.state = state;
    this.key = key;
    this.vars = vars;
    this.render();
  }

  render() {
    const { status, progress, button } = this.dom;
    status.dataset.state = this.state;
    status.dataset.kind = this.state === "error" ? "error" : this.state === "done" ? "ok" : "info";
    status.textContent = this.key ? t(this.key, this.vars) : "";
    if (this.documentId) status.dataset.documentId = this.documentId;
    else delete status.dataset.documentId;
    if (this.error) {
      status.dataset.error = this.error.code || "";
      status.dataset.httpStatus = String(this.error.status ?? "");
    } else {
      delete status.dataset.error;
      delete status.dataset.httpStatus;
    }
    const uploading = this.state === "uploading" || this.state === "checking";
    progress.hidden = !uploading;
    button.disabled = uploading || !this.context();
  }

  /** Forget the last scan and stop an upload in progress (the call ended). */
  reset() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.scanning = false;
    this.attempt = (this.attempt || 0) + 1;
    this.documentId = null;
    this.error = null;
    this.dom.progress.value = 0;
    this.set("idle");
  }

  /** The button: ask the scanner for a picture, then upload it. */
  async scan(kind = this.kind()) {
    const context = this.context();
    if (!context || this.controller) return;
    // A press while the scanner is still asked starts over (the older ask is dropped).
    const attempt = (this.attempt = (this.attempt || 0) + 1);
    const current = () => this.scanning && this.attempt === attempt && this.isCurrent(context);
    this.error = null;
    this.scanning = true;
    this.set("scanning", `${this.keys}.scanning`);
    let file;
    try {
      file = await this.scanner().scan({ kind });
    } catch (err) {
      console.warn("scan failed", err);
      if (current()) {
        this.scanning = false;
        this.error = { code: "scanner", status: null };
        this.set("error", `${this.keys}.error.generic`);
      }
      return;
    }
    if (!current()) return; // reset or started over meanwhile
    this.scanning = false;
    if (!file) {
      this.set("cancelled", `${this.keys}.cancelled`);
      return;
    }
    await this.upload(file, kind);
  }

  isCurrent(context) {
    const now = this.context();
    return Boolean(now) && now.sessionId === context.sessionId;
  }

  /** Send a scanned file as a document of the call. */
  async upload(file, kind = this.kind()) {
    const context = this.context();
    if (!context || this.controller) return;
    this.scanning = false;
    const controller = new AbortController();
    this.controller = controller;
    this.error = null;
    this.documentId = null;
    this.dom.progress.value = 0;
    this.set("uploading", `${this.keys}.uploading`, { percent: 0 });
    try {
      const uploaded = await uploadDocument({
        sessionId: context.sessionId,
        token: context.token,
        file,
        kind,
        signal: controller.signal,
        onProgress: (fraction) => {
          if (this.controller !== controller) return;
          this.dom.progress.value = fraction;
          if (fraction >= 1) this.set("checking", `${this.keys}.checking`);
          else this.set("uploading", `${this.keys}.uploading`, { percent: Math.floor(fraction * 100) });
        },
      });
      if (this.controller !== controller) return;
      this.controller = null;
      this.documentId = uploaded.document_id;
      this.set("done", `${this.keys}.done`);
      if (this.onUploaded) this.onUploaded({ kind, ...uploaded });
    } catch (err) {
      if (this.controller !== controller) return; // reset meanwhile (the call ended)
      this.controller = null;
      console.warn("upload failed", err);
      this.error = { code: err.code, status: err.status };
      this.set("error", uploadErrorKey(err, this.keys));
    }
  }
}
