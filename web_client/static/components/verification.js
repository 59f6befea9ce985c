// Identity verification in the browser (issue 4).
//
// Kiosk side: the head-turn challenges (the ID card scan itself is a `ScanControl` of
//   components/scanner.js, asking the scanner for `kind: "id_card"`).
// Console side: `VerificationPanel`, the staff member's view of a call's verification
//   (documents received, start, live updates, head-turn requests, presence warnings).
import { getLanguage, t } from "../shared/i18n.js";

export const CHALLENGES = ["turn_left", "turn_right"];

// ---------------------------------------------------------------- kiosk

// The scanner interface and the upload live in scanner.js (they serve every document
// kind); re-exported here for the code that knew them from this module.
export { FileInputScanner, isScanner, uploadDocument, uploadErrorKey } from "./scanner.js";

// ---------------------------------------------------------------- console: panel

const REASONS = [
  "no_face",
  "no_challenge",
  "several_faces",
  "face_not_steady",
  "identity_changed",
  "challenge_failed",
  "passive_liveness_failed",
  "no_match",
  "id_no_face",
  "id_several_faces",
  "unreadable_image",
];

/** "true" / "false" / "undecided" for a data attribute. */
export function passedWord(value) {
  if (value === true) return "true";
  if (value === false) return "false";
  return "undecided";
}

function formatNumber(value, digits = 3) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

function numberAttr(value) {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : "";
}

function isImageDataUrl(value) {
  return typeof value === "string" && /^data:image\/(jpeg|png|webp);base64,/.test(value);
}

/**
 * The console's verification panel for the current call. Elements are found by id
 * under `root`; `request(event, payload)` sends an acknowledged /staff event.
 */
export class VerificationPanel {
  constructor(root, request) {
    this.root = root;
    this.request = request;
    const q = (id) => {
      const node = root.querySelector(`#${id}`);
      if (!node) throw new Error(`missing element #${id}`);
      return node;
    };
    this.dom = {
      documents: q("verify-documents"),
      noDocuments: q("verify-no-documents"),
      start: q("verify-start"),
      status: q("verify-status"),
      statusText: q("verify-status-text"),
      facePresent: q("verify-face-present"),
      reason: q("verify-reason"),
      error: q("verify-error"),
      match: q("verify-match"),
      matchScore: q("verify-match-score"),
      matchResult: q("verify-match-result"),
      liveness: q("verify-liveness"),
      livenessResult: q("verify-liveness-result"),
      passive: q("verify-passive"),
      passiveScore: q("verify-passive-score"),
      passiveResult: q("verify-passive-result"),
      challenge: q("verify-challenge"),
      challengeText: q("verify-challenge-text"),
      consistency: q("verify-consistency"),
      consistencyText: q("verify-consistency-text"),
      consistencyResult: q("verify-consistency-result"),
      idFace: q("verify-id-face"),
      idFaceEmpty: q("verify-id-face-empty"),
      liveFace: q("verify-live-face"),
      liveFaceEmpty: q("verify-live-face-empty"),
      askLeft: q("verify-challenge-left"),
      askRight: q("verify-challenge-right"),
      presence: q("verify-presence"),
    };
    this.dom.start.addEventListener("click", () => this.start());
    this.dom.askLeft.addEventListener("click", () => this.ask("turn_left"));
    this.dom.askRight.addEventListener("click", () => this.ask("turn_right"));
    this.sessionId = null;
    this.reset();
  }

  /** Forget everything (a new call, or none: sessionId null). */
  reset(sessionId = null) {
    this.sessionId = sessionId;
    this.documents = [];
    this.status = "idle";
    this.report = null;
    this.idFace = null;
    this.liveFace = null;
    this.presence = null;
    this.error = null;
    this.asking = false;
    this.generation = (this.generation || 0) + 1;
    this.render();
  }

  get latestIdDocument() {
    const ids = this.documents.filter((d) => d.kind === "id_card");
    return ids.length ? ids[ids.length - 1] : null;
  }

  /** A session record from GET /api/v1/sessions/{sid} (after a reload mid-call). */
  restore(record) {
    if (!record || record.session_id !== this.sessionId) return;
    for (const document of record.documents || []) {
      this.addDocument(document, document.created_at ? document.created_at * 1000 : Date.now());
    }
    if (record.verification && typeof record.verification === "object") {
      this.applyReport(record.verification);
    }
    this.render();
  }

  addDocument(document, receivedAt = Date.now()) {
    if (!document || !document.document_id) return;
    if (this.documents.some((d) => d.document_id === document.document_id)) return;
    this.documents.push({
      document_id: document.document_id,
      kind: document.kind,
      pages: document.pages,
      sha256: document.sha256,
      receivedAt,
    });
  }

  onDocumentAdded(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    this.addDocument(msg);
    this.render();
  }

  onUpdate(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    this.applyReport(msg);
    this.render();
  }

  applyReport(msg) {
    if (["pending", "passed", "failed"].includes(msg.status)) this.status = msg.status;
    this.report = msg;
    if (isImageDataUrl(msg.id_face)) this.idFace = msg.id_face;
    if (isImageDataUrl(msg.live_face)) this.liveFace = msg.live_face;
    if (msg.status === "pending") this.presence = null;
  }

  onPresence(msg) {
    if (!msg || msg.session_id !== this.sessionId) return;
    if (["present", "absent", "changed"].includes(msg.state)) this.presence = msg.state;
    this.render();
  }

  async start() {
    const document = this.latestIdDocument;
    const sessionId = this.sessionId;
    if (!document || !sessionId || this.status === "starting") return;
    const generation = this.generation;
    this.status = "starting";
    this.report = null;
    this.liveFace = null;
    this.idFace = null;
    this.presence = null;
    this.error = null;
    this.render();
    try {
      await this.request("verification.start", {
        session_id: sessionId,
        id_document_id: document.document_id,
      });
    } catch (err) {
      if (generation !== this.generation) return;
      // An unusable ID arrives as a failed update with its reason (before this answer):
      // that says it better than the refusal.
      const explained = this.status === "failed" && err.code === "bad_request";
      if (!explained) this.error = { action: "start", code: err.code, message: err.message };
      if (this.status === "starting") this.status = "idle";
    }
    this.render();
  }

  async ask(kind) {
    const sessionId = this.sessionId;
    if (!sessionId || this.status !== "pending" || this.asking) return;
    const generation = this.generation;
    this.asking = true;
    this.error = null;
    this.render();
    try {
      await this.request("verification.challenge", { session_id: sessionId, challenge: kind });
    } catch (err) {
      if (generation === this.generation) {
        this.error = { action: "challenge", code: err.code, message: err.message };
      }
    } finally {
      if (generation === this.generation) this.asking = false;
    }
    this.render();
  }

  errorText(error) {
    for (const key of [`console.verify.error.${error.action}.${error.code}`, `console.verify.error.${error.code}`]) {
      if (t(key) !== key) return t(key);
    }
    const generic = `error.${error.code}`;
    return t(generic) !== generic ? t(generic) : t("error.generic");
  }

  render() {
    const { dom } = this;
    const report = this.report || {};
    const active = Boolean(this.sessionId);

    // documents
    dom.documents.replaceChildren();
    const ids = this.documents.filter((d) => d.kind === "id_card");
    const latest = this.latestIdDocument;
    ids.forEach((document, index) => {
      const item = window.document.createElement("li");
      item.className = "verify-document";
      item.dataset.testid = "verify-document";
      item.dataset.documentId = document.document_id;
      item.dataset.kind = document.kind;
      item.dataset.pages = String(document.pages ?? "");
      item.dataset.latest = String(document === latest);
      const name = window.document.createElement("strong");
      name.textContent = t("console.verify.document", { n: index + 1 });
      const detail = window.document.createElement("span");
      detail.className = "hint";
      detail.textContent = t("console.verify.documentDetail", {
        pages: document.pages ?? "?",
        time: new Date(document.receivedAt).toLocaleTimeString(getLanguage()),
      });
      item.append(name, " ", detail);
      dom.documents.append(item);
    });
    dom.documents.dataset.count = String(ids.length);
    dom.noDocuments.hidden = ids.length > 0;

    // start
    const running = this.status === "starting" || this.status === "pending";
    dom.start.disabled = !active || !latest || running;

    // status
    dom.status.dataset.status = this.status;
    dom.statusText.textContent = t(`console.verify.status.${this.status}`);
    const facePresent = running && typeof report.face_present === "boolean" ? report.face_present : null;
    dom.facePresent.hidden = facePresent === null;
    dom.facePresent.dataset.present = String(facePresent);
    dom.facePresent.textContent =
      facePresent === null ? "" : t(facePresent ? "console.verify.faceInView" : "console.verify.noFaceInView");
    const reason = this.status === "failed" && report.reason ? String(report.reason) : "";
    dom.reason.hidden = !reason;
    dom.reason.dataset.reason = reason;
    dom.reason.textContent = !reason
      ? ""
      : REASONS.includes(reason)
        ? t(`console.verify.reason.${reason}`)
        : t("console.verify.reason.unknown", { reason });

    // error of the last request
    dom.error.hidden = !this.error;
    dom.error.dataset.code = this.error ? String(this.error.code || "") : "";
    dom.error.textContent = this.error ? this.errorText(this.error) : "";

    // match
    const match = (this.report && report.match) || {};
    const hasReport = Boolean(this.report);
    dom.match.dataset.passed = hasReport ? passedWord(match.passed) : "";
    dom.match.dataset.score = numberAttr(match.score);
    dom.match.dataset.threshold = numberAttr(match.threshold);
    dom.matchScore.textContent = hasReport
      ? t("console.verify.score", { score: formatNumber(match.score), threshold: formatNumber(match.threshold) })
      : "—";
    setResult(dom.matchResult, hasReport ? match.passed : undefined);

    // liveness
    const liveness = (this.report && report.liveness) || {};
    dom.liveness.dataset.passed = hasReport ? passedWord(liveness.passed) : "";
    dom.liveness.dataset.passivePassed = hasReport ? passedWord(liveness.passive_passed) : "";
    dom.liveness.dataset.challengePassed = hasReport ? passedWord(liveness.challenge_passed) : "";
    setResult(dom.livenessResult, hasReport ? liveness.passed : undefined);

    dom.passive.dataset.passed = hasReport ? passedWord(liveness.passive_passed) : "";
    dom.passive.dataset.score = numberAttr(liveness.score);
    dom.passiveScore.textContent = hasReport
      ? t("console.verify.score", { score: formatNumber(liveness.score), threshold: formatNumber(liveness.threshold) })
      : "—";
    setResult(dom.passiveResult, hasReport ? liveness.passive_passed : undefined);

    const challenge = report.challenge && typeof report.challenge === "object" ? report.challenge : null;
    dom.challenge.dataset.kind = challenge ? String(challenge.kind || "") : "";
    dom.challenge.dataset.state = challenge ? String(challenge.state || "") : hasReport ? "none" : "";
    dom.challenge.dataset.yawChange = challenge ? numberAttr(challenge.yaw_change) : "";
    if (!hasReport) dom.challengeText.textContent = "—";
    else if (!challenge) dom.challengeText.textContent = t("console.verify.challenge.none");
    else {
      const parts = [
        t(`console.verify.challenge.${challenge.kind}`),
        t(`console.verify.challengeState.${challenge.state}`),
      ];
      if (challenge.reason) {
        const key = `console.verify.challengeReason.${challenge.reason}`;
        parts.push(t(key) === key ? String(challenge.reason) : t(key));
      }
      dom.challengeText.textContent = parts.join(" · ");
    }

    const consistency = liveness.consistency && typeof liveness.consistency === "object" ? liveness.consistency : null;
    dom.consistency.dataset.passed = consistency ? passedWord(consistency.passed) : "";
    dom.consistencyText.textContent = consistency
      ? t("console.verify.consistencyDetail", {
          usable: consistency.usable_frames ?? 0,
          frames: consistency.frames ?? 0,
          several: consistency.several_faces_frames ?? 0,
          identity: formatNumber(consistency.identity_min, 2),
        })
      : "—";
    // While pending the rules have not decided consistency yet: show it undecided.
    setResult(
      dom.consistencyResult,
      consistency ? (this.status === "pending" && !consistency.passed ? null : consistency.passed) : undefined,
    );

    // faces
    showImage(dom.idFace, dom.idFaceEmpty, this.idFace);
    showImage(dom.liveFace, dom.liveFaceEmpty, this.liveFace);

    // head-turn requests
    const canAsk = active && this.status === "pending" && !this.asking;
    dom.askLeft.disabled = !canAsk;
    dom.askRight.disabled = !canAsk;

    // presence after verification
    dom.presence.hidden = !this.presence;
    dom.presence.dataset.state = this.presence || "";
    dom.presence.textContent = this.presence ? t(`console.verify.presence.${this.presence}`) : "";
  }
}

function setResult(node, passed) {
  node.dataset.passed = passed === undefined ? "" : passedWord(passed);
  node.textContent = passed === undefined ? "" : t(`console.verify.result.${passedWord(passed)}`);
}

function showImage(img, empty, src) {
  if (src) {
    if (img.getAttribute("src") !== src) img.src = src;
    img.hidden = false;
    empty.hidden = true;
  } else {
    img.removeAttribute("src");
    img.hidden = true;
    empty.hidden = false;
  }
}
