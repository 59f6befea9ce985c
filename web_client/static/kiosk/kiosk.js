// Kiosk page (/kiosk#token=...): pick a department and a service, wait in the queue,
// talk to an officer on video, scan the ID card and follow the head-turn prompt of the
// identity check, scan documents, see the officer's marks, sign, get the receipt number
// and prints (case_panel.js). Protocol v1, namespace /kiosk.
import { getCatalog } from "../shared/api.js";
import { all, byId, el, showOnly } from "../shared/dom.js";
import { applyTranslations, errorKey, getLanguage, localName, setLanguage, t, tIn } from "../shared/i18n.js";
import { attachStream, detachStream, getLocalMedia, playQuietly, replayOnGesture } from "../shared/local_media.js";
import { MediaLink } from "../shared/rtc.js";
import { connect, connectErrorCode } from "../shared/socket.js";
import { KioskCasework } from "./case_panel.js";
import { FileInputScanner, FileInputScanners, isScanner, ScanControl } from "../components/scanner.js";
import { CHALLENGES } from "../components/verification.js";

const DEFAULT_LANGUAGE = "zh-Hant";
const ENDED_SCREEN_MS = 6000;
const ENDED_WITH_RECEIPT_MS = 30000; // time to note the receipt number
const IDLE_RESET_MS = 120000;
const CATALOG_RETRY_MS = 5000;
const SESSION_KEY = "smartcounter.kiosk.session";
const DEFAULT_CHALLENGE_TIMEOUT_S = 6;
const CHALLENGE_TICK_MS = 200;

const dom = {};
const screens = {};

// phase: idle | requesting | waiting | call | ended
const state = {
  token: null,
  catalog: null,
  departmentId: null,
  serviceId: null,
  sessionId: null,
  phase: "idle",
  cancelling: false,
  adoptNextSession: false,
  staff: null,
  localStream: null,
  localMediaPromise: null,
  cameraFailed: false,
  media: null,
  status: { key: null, kind: "info" },
  notice: null,
  mediaKey: null,
  resumeTries: 0,
  endedReceipt: null, // the receipt number of the call that just ended
};
let client = null;
let endedTimer = null;
let idleTimer = null;
// The scanner: anything with scan({kind}) → Promise<File|Blob|null> (see scanner.js).
let scanner = null;
// The "Scan ID card" and "Scan document" controls of the call (ScanControl).
let idScan = null;
let docScan = null;
let docKind = "form"; // the kind the next "Scan document" sends: form | supporting
// Documents, marks, signature, receipt, printing of the call (KioskCasework).
let casework = null;
// The head-turn prompt on screen: {kind, total, deadline} or null.
let challenge = null;
let challengeTimer = null;

window.smartcounter = {
  get pc() {
    return state.media ? state.media.pc : null;
  },
  get socket() {
    return client ? client.socket : null;
  },
  get sessionId() {
    return state.sessionId;
  },
  /** The scanner; a driver replaces it with its own {scan({kind}) → Promise<Blob|null>}. */
  get scanner() {
    return scanner;
  },
  set scanner(value) {
    if (!isScanner(value)) throw new TypeError("a scanner needs a scan() method");
    scanner = value;
  },
};

// ---------------------------------------------------------------- text & status

function setStatus(key, kind = "info") {
  state.status = { key, kind };
  renderStatus();
}

function renderStatus() {
  let { key, kind } = state.status;
  // A missing camera matters more than "ready": keep saying so until it is fixed.
  if (state.cameraFailed && (key === "kiosk.ready" || !key)) {
    key = "kiosk.cameraFailed";
    kind = "error";
  }
  dom.status.textContent = key ? t(key) : "";
  dom.status.dataset.kind = kind;
}

function setNotice(key) {
  state.notice = key;
  dom.waitingNotice.hidden = !key;
  dom.waitingNotice.textContent = key ? t(key) : "";
}

function setMediaState(key) {
  state.mediaKey = key;
  dom.callMediaState.textContent = key ? t(key) : "";
}

function switchLanguage(lang) {
  setLanguage(lang);
  applyTranslations();
  for (const button of all(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  renderStatus();
  setNotice(state.notice);
  setMediaState(state.mediaKey);
  idScan.render();
  docScan.render();
  renderDocKinds();
  casework.render();
  renderEndedReceipt();
  renderChallenge();
  renderDepartments();
  renderServices();
  renderSessionLabels();
}

// ---------------------------------------------------------------- screens

function show(screen) {
  showOnly(screens, screen);
  document.body.dataset.screen = screen;
  placeSelfView(screen === "call");
  if (screen !== "call") {
    // Out of the call: no prompt stays up, and the next call starts with fresh scans.
    hideChallenge();
    resetCallExtras();
  }
}

/**
 * In a call the self view sits in a corner of the officer's video (picture in picture),
 * leaving the side column to the call's controls; elsewhere in the corner of the page.
 */
function placeSelfView(inCall) {
  const home = inCall ? dom.callStage : dom.kioskMain;
  if (dom.selfView.parentElement === home) return;
  home.append(dom.selfView); // a synchronous move: the video keeps playing
  dom.selfView.classList.toggle("self-view-pip", inCall);
  if (dom.selfVideo.srcObject && dom.selfVideo.paused) playQuietly(dom.selfVideo);
}

function findDepartment(id) {
  return state.catalog ? state.catalog.departments.find((d) => d.id === id) || null : null;
}

function findService(id) {
  if (!state.catalog) return null;
  for (const department of state.catalog.departments) {
    const service = (department.services || []).find((s) => s.id === id);
    if (service) return { department, service };
  }
  return null;
}

function renderDepartments() {
  dom.departmentList.replaceChildren();
  if (!state.catalog) return;
  for (const department of state.catalog.departments) {
    dom.departmentList.append(
      el(
        "button",
        {
          type: "button",
          class: "tile",
          dataset: { testid: `dept-${department.id}` },
          onclick: () => chooseDepartment(department.id),
        },
        localName(department.name, getLanguage()),
      ),
    );
  }
}

function renderServices() {
  dom.serviceList.replaceChildren();
  const department = findDepartment(state.departmentId);
  dom.servicesHeading.textContent = department ? localName(department.name, getLanguage()) : "";
  if (!department) return;
  const services = department.services || [];
  if (!services.length) {
    dom.serviceList.append(el("p", { class: "hint" }, t("kiosk.noServices")));
  }
  for (const service of services) {
    dom.serviceList.append(
      el(
        "button",
        {
          type: "button",
          class: "tile",
          dataset: { testid: `service-${service.id}` },
          disabled: state.phase !== "idle",
          onclick: () => requestCall(service.id),
        },
        localName(service.name, getLanguage()),
      ),
    );
  }
}

function renderSessionLabels() {
  const found = state.serviceId ? findService(state.serviceId) : null;
  dom.waitingService.textContent = found
    ? `${localName(found.department.name, getLanguage())} · ${localName(found.service.name, getLanguage())}`
    : "";
  dom.staffName.textContent = (state.staff && state.staff.display_name) || t("kiosk.officer");
  const department = state.staff ? findDepartment(state.staff.department_id) : null;
  dom.callDepartment.textContent = department ? localName(department.name, getLanguage()) : "";
}

function chooseDepartment(id) {
  if (state.phase !== "idle") return;
  state.departmentId = id;
  renderServices();
  show("services");
}

function goHome() {
  state.departmentId = null;
  show("departments");
  renderServices();
}

function showQueue(position, etaSeconds) {
  if (position !== undefined) {
    dom.queuePosition.textContent = Number.isFinite(position) ? String(position) : "—";
  }
  if (etaSeconds !== undefined) {
    dom.queueEta.textContent = Number.isFinite(etaSeconds)
      ? String(Math.max(1, Math.ceil(etaSeconds / 60)))
      : "—";
    dom.queueEta.dataset.etaS = Number.isFinite(etaSeconds) ? String(etaSeconds) : "";
  }
}

function showWaiting(noticeKey = null) {
  state.phase = "waiting";
  dom.cancel.disabled = false;
  setNotice(noticeKey);
  renderSessionLabels();
  show("waiting");
}

// ---------------------------------------------------------------- session bookkeeping

function saveSession() {
  if (!state.sessionId) {
    sessionStorage.removeItem(SESSION_KEY);
    return;
  }
  sessionStorage.setItem(
    SESSION_KEY,
    JSON.stringify({ session_id: state.sessionId, service_id: state.serviceId, staff: state.staff }),
  );
}

function restoreSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (saved && typeof saved.session_id === "string") {
      state.sessionId = saved.session_id;
      state.serviceId = saved.service_id || null;
      state.staff = saved.staff || null;
      showQueue(NaN, NaN);
      showWaiting();
    }
  } catch {
    sessionStorage.removeItem(SESSION_KEY);
  }
}

function clearSession() {
  hideChallenge();
  resetCallExtras();
  stopMedia();
  state.sessionId = null;
  state.serviceId = null;
  state.staff = null;
  state.cancelling = false;
  state.adoptNextSession = false;
  state.phase = "idle";
  setNotice(null);
  saveSession();
}

/** Is an event for session_id ours? Adopts a new id right after call.request or a transfer. */
function isOurs(sessionId) {
  if (!sessionId) return false;
  if (sessionId === state.sessionId) return true;
  if (state.phase === "requesting" || state.adoptNextSession) {
    state.sessionId = sessionId;
    state.adoptNextSession = false;
    saveSession();
    return true;
  }
  return false;
}

function resetToHome(statusKey = "kiosk.ready", kind = "info") {
  clearTimeout(endedTimer);
  clearSession();
  goHome();
  if (client && client.socket.connected) setStatus(statusKey, kind);
}

// ---------------------------------------------------------------- local media

function ensureLocalMedia() {
  if (state.localStream && state.localStream.getTracks().some((tr) => tr.readyState === "live")) {
    return Promise.resolve(state.localStream);
  }
  if (!state.localMediaPromise) {
    state.localMediaPromise = getLocalMedia()
      .then((stream) => {
        state.localStream = stream;
        state.cameraFailed = false;
        renderStatus();
        attachStream(dom.selfVideo, stream);
        return stream;
      })
      .catch((err) => {
        console.warn("getUserMedia failed", err);
        state.cameraFailed = true;
        renderStatus();
        return null;
      })
      .finally(() => {
        state.localMediaPromise = null;
      });
  }
  return state.localMediaPromise;
}

// ---------------------------------------------------------------- call media

function startMedia() {
  stopMedia();
  const media = new MediaLink({
    token: state.token,
    sessionId: state.sessionId,
    request: client.request,
    getLocalStream: ensureLocalMedia,
    onRemoteStream: (stream) => attachStream(dom.remoteVideo, stream),
    onStatus: (s) => {
      if (media !== state.media) return;
      if (s === "negotiating" || s === "new" || s === "connecting") setMediaState("kiosk.callConnecting");
      else if (s === "connected") setMediaState("kiosk.callConnected");
      else if (s === "failed" || s === "disconnected") setMediaState("media.reconnecting");
      else if (s === "gave_up") setMediaState("media.gaveUp");
    },
  });
  state.media = media;
  media.start().catch((err) => {
    console.warn("media negotiation failed", err);
    if (media === state.media) setMediaState("media.failed");
  });
}

function stopMedia() {
  if (state.media) {
    state.media.close();
    state.media = null;
  }
  detachStream(dom.remoteVideo);
  setMediaState(null);
}

// ---------------------------------------------------------------- actions

async function requestCall(serviceId) {
  if (state.phase !== "idle") return;
  if (!client) {
    setStatus("kiosk.noToken", "error");
    return;
  }
  state.phase = "requesting";
  state.serviceId = serviceId;
  renderServices(); // disables the tiles
  setStatus("kiosk.requesting");
  try {
    const ack = await client.request("call.request", {
      service_id: serviceId,
      language: getLanguage(),
    });
    if (state.phase === "idle") return; // reset meanwhile
    state.sessionId = ack.session_id;
    saveSession();
    if (state.phase === "requesting") {
      showQueue(ack.position, ack.eta_s);
      showWaiting();
      setStatus("kiosk.waitingTitle");
    }
  } catch (err) {
    if (state.phase !== "requesting") return;
    state.phase = "idle";
    state.serviceId = null;
    renderServices();
    setStatus(errorKey(err), "error");
  }
}

async function cancelCall() {
  const sessionId = state.sessionId;
  if (!sessionId || state.phase !== "waiting" || state.cancelling) return;
  state.cancelling = true;
  dom.cancel.disabled = true;
  try {
    await client.request("call.cancel", { session_id: sessionId });
  } catch (err) {
    console.warn("call.cancel failed", err);
    if (err.code === "conflict") {
      // Probably connected meanwhile: leave that call instead.
      await client.request("call.hangup", { session_id: sessionId }).catch(() => {});
    }
  }
  if (state.sessionId === sessionId) resetToHome("kiosk.cancelled");
}

async function hangup() {
  const sessionId = state.sessionId;
  if (!sessionId || state.phase !== "call") return;
  dom.hangup.disabled = true;
  try {
    await client.request("call.hangup", { session_id: sessionId });
  } catch (err) {
    console.warn("call.hangup failed", err);
  }
  endCall(sessionId, "hangup");
}

function endCall(sessionId, reason) {
  if (sessionId !== state.sessionId) return;
  const receiptNo = casework.receiptNo; // shown on the end screen too
  clearSession();
  state.endedReceipt = receiptNo;
  state.phase = "ended";
  const reasonKey = `kiosk.endedReason.${reason}`;
  dom.endedReason.dataset.i18n = t(reasonKey) === reasonKey ? "kiosk.endedReason.hangup" : reasonKey;
  dom.endedReason.textContent = t(dom.endedReason.dataset.i18n);
  show("ended");
  renderEndedReceipt();
  setStatus("kiosk.callEnded");
  clearTimeout(endedTimer);
  endedTimer = setTimeout(
    () => {
      if (state.phase === "ended") resetToHome();
    },
    receiptNo ? ENDED_WITH_RECEIPT_MS : ENDED_SCREEN_MS,
  );
}

function enterCall(staff) {
  state.phase = "call";
  if (staff) state.staff = staff;
  saveSession();
  setNotice(null);
  resetCallExtras();
  dom.hangup.disabled = false;
  renderSessionLabels();
  show("call");
  setStatus("kiosk.callConnected");
  startMedia();
}

async function resumeSession() {
  const sessionId = state.sessionId;
  setStatus("kiosk.resuming");
  let ack;
  try {
    ack = await client.request("call.resume", { session_id: sessionId });
  } catch (err) {
    if (sessionId !== state.sessionId) return;
    if (["not_found", "forbidden", "bad_request", "conflict"].includes(err.code)) {
      if (state.phase === "call") endCall(sessionId, "error");
      else resetToHome("kiosk.sessionLost", "warn");
    } else if (state.resumeTries < 5 && client.socket.connected) {
      state.resumeTries += 1;
      setTimeout(() => {
        if (state.sessionId === sessionId && client.socket.connected) resumeSession();
      }, 3000);
    } else {
      setStatus(errorKey(err), "error");
    }
    return;
  }
  state.resumeTries = 0;
  if (sessionId !== state.sessionId) return;
  switch (ack.state) {
    case "queued":
    case "ringing": {
      const wasInCall = state.phase === "call";
      stopMedia();
      if (ack.position !== undefined) showQueue(ack.position, undefined);
      showWaiting(wasInCall ? "kiosk.staffLost" : state.notice);
      setStatus("kiosk.waitingTitle");
      break;
    }
    case "connected":
      if (state.phase !== "call") enterCall(null);
      else {
        setStatus("kiosk.callConnected");
        if (!state.media || !state.media.healthy) startMedia();
        else state.media.restartIfSilent();
      }
      casework.restore(); // the documents and receipt a reload lost (or events missed)
      break;
    case "abandoned":
      resetToHome("kiosk.sessionLost", "warn");
      break;
    default: // closed, or anything else that is over
      if (state.phase === "call") endCall(sessionId, "hangup");
      else resetToHome("kiosk.sessionLost", "warn");
  }
}

// ---------------------------------------------------------------- scans & casework

function callContext() {
  return state.phase === "call" && state.sessionId ? { sessionId: state.sessionId, token: state.token } : null;
}

/** The call is over (or not yet on): no upload goes on, no document stays on screen. */
function resetCallExtras() {
  if (!idScan) return;
  idScan.reset();
  docScan.reset();
  casework.reset();
}

function setDocKind(kind) {
  if (kind !== "form" && kind !== "supporting") return;
  docKind = kind;
  renderDocKinds();
}

function renderDocKinds() {
  for (const button of dom.docKinds) {
    button.setAttribute("aria-pressed", String(button.dataset.kind === docKind));
  }
}

/** The officer asked for a rescan: scan that kind again (from the prompt's button). */
function rescan(kind) {
  if (kind === "id_card") {
    idScan.scan("id_card");
  } else {
    setDocKind(kind);
    docScan.scan(docKind);
  }
}

function renderEndedReceipt() {
  const receiptNo = state.phase === "ended" ? state.endedReceipt : null;
  dom.endedReceipt.hidden = !receiptNo;
  dom.endedReceipt.dataset.receiptNo = receiptNo || "";
  dom.endedReceiptNo.textContent = receiptNo || "";
}

function setUpScans() {
  const ids = new FileInputScanner(dom.idScanInput, (file) => idScan.upload(file));
  const documents = new FileInputScanner(dom.docScanInput, (file) => docScan.upload(file));
  // File inputs stand in for the scanner; a file put in an input directly is uploaded too.
  scanner = new FileInputScanners(ids, documents);
  casework = new KioskCasework({
    context: callContext,
    token: () => state.token,
    request: (event, payload) => client.request(event, payload),
    rescan,
  });
  const added = (answer) => casework.addDocument(answer);
  idScan = new ScanControl({
    dom: { button: dom.idScan, progress: dom.idScanProgress, status: dom.idScanStatus },
    keys: "kiosk.scan",
    context: callContext,
    scanner: () => scanner,
    kind: () => "id_card",
    onUploaded: added,
  });
  docScan = new ScanControl({
    dom: { button: dom.docScan, progress: dom.docScanProgress, status: dom.docScanStatus },
    keys: "kiosk.docscan",
    context: callContext,
    scanner: () => scanner,
    kind: () => docKind,
    onUploaded: added,
  });
  for (const button of dom.docKinds) {
    button.addEventListener("click", () => setDocKind(button.dataset.kind));
  }
}

// ---------------------------------------------------------------- head-turn prompt

function showChallenge(kind, timeoutS) {
  const total = Number(timeoutS) > 0 ? Number(timeoutS) : DEFAULT_CHALLENGE_TIMEOUT_S;
  challenge = { kind, total, deadline: performance.now() + total * 1000 };
  clearInterval(challengeTimer);
  challengeTimer = setInterval(tickChallenge, CHALLENGE_TICK_MS);
  renderChallenge();
}

function hideChallenge() {
  challenge = null;
  clearInterval(challengeTimer);
  challengeTimer = null;
  renderChallenge();
}

function tickChallenge() {
  if (!challenge) return;
  if (performance.now() >= challenge.deadline) hideChallenge();
  else renderCountdown();
}

function renderCountdown() {
  const left = Math.max(0, (challenge.deadline - performance.now()) / 1000);
  const seconds = Math.ceil(left);
  dom.challengeCountdown.textContent = t("kiosk.challenge.seconds", { seconds });
  dom.challengeCountdown.dataset.seconds = String(seconds);
  dom.challengeProgress.max = challenge.total;
  dom.challengeProgress.value = left;
}

function renderChallenge() {
  dom.challengePrompt.hidden = !challenge;
  dom.challengePrompt.dataset.challenge = challenge ? challenge.kind : "";
  if (!challenge) return;
  const lang = getLanguage();
  const other = lang === "en" ? "zh-Hant" : "en";
  const key = `kiosk.challenge.${challenge.kind}`;
  dom.challengeArrow.textContent = challenge.kind === "turn_left" ? "←" : "→";
  dom.challengeText.textContent = t(key);
  dom.challengeText.lang = lang;
  dom.challengeTextOther.textContent = tIn(other, key);
  dom.challengeTextOther.lang = other;
  renderCountdown();
}

// ---------------------------------------------------------------- server events

function onQueueUpdate(msg) {
  if (!msg || !isOurs(msg.session_id)) return;
  showQueue(msg.position, msg.eta_s);
  if (msg.reason === "staff_lost" || state.phase === "call") {
    stopMedia();
    showWaiting("kiosk.staffLost");
    setStatus("kiosk.waitingTitle");
  } else if (state.phase === "requesting") {
    showWaiting();
  }
}

function onCallConnected(msg) {
  if (!msg || state.cancelling || !isOurs(msg.session_id)) return;
  if (state.phase === "call") {
    if (msg.staff) state.staff = msg.staff;
    renderSessionLabels();
    if (!state.media || !state.media.healthy) startMedia();
    return;
  }
  if (state.phase === "requesting" || state.phase === "waiting") enterCall(msg.staff || null);
}

function onChallenge(msg) {
  if (!msg || msg.session_id !== state.sessionId || state.phase !== "call") return;
  if (!CHALLENGES.includes(msg.challenge)) return;
  showChallenge(msg.challenge, msg.timeout_s);
}

function onCallEnded(msg) {
  if (!msg || msg.session_id !== state.sessionId) return;
  if (msg.reason === "transferred") {
    // The session goes back to a queue in another department; queue.update follows.
    hideChallenge();
    resetCallExtras();
    stopMedia();
    state.adoptNextSession = true;
    state.staff = null;
    saveSession();
    showQueue(NaN, NaN);
    showWaiting("kiosk.transferred");
    return;
  }
  endCall(msg.session_id, msg.reason);
}

// ---------------------------------------------------------------- connection

function connectSocket() {
  client = connect("/kiosk", state.token);
  const { socket } = client;
  socket.on("connect", () => {
    state.resumeTries = 0;
    if (state.sessionId) resumeSession();
    else setStatus("kiosk.ready");
  });
  socket.on("connect_error", (err) => {
    const unauthorized = connectErrorCode(err, socket) === "unauthorized";
    setStatus(unauthorized ? "kiosk.unauthorized" : "kiosk.connectFailed", "error");
    // A refusal by the server is not retried by socket.io itself; retry slowly.
    if (!socket.active) setTimeout(() => socket.connect(), unauthorized ? 30000 : 5000);
  });
  socket.on("disconnect", (reason) => {
    setStatus("kiosk.reconnecting", "warn");
    if (reason === "io server disconnect") setTimeout(() => socket.connect(), 3000);
  });
  socket.on("kiosk.token", onTokenRenewed);
  socket.on("queue.update", onQueueUpdate);
  socket.on("call.connected", onCallConnected);
  socket.on("call.ended", onCallEnded);
  socket.on("verification.challenge", onChallenge);
  casework.listen(socket);
}

async function loadCatalog() {
  dom.catalogMessage.hidden = false;
  dom.catalogMessage.dataset.i18n = "kiosk.loadingCatalog";
  dom.catalogMessage.textContent = t("kiosk.loadingCatalog");
  try {
    const catalog = await getCatalog();
    state.catalog = { departments: (catalog && catalog.departments) || [] };
    dom.catalogMessage.hidden = true;
    renderDepartments();
    renderServices();
    renderSessionLabels();
  } catch (err) {
    console.warn("catalog failed", err);
    dom.catalogMessage.dataset.i18n = "kiosk.catalogFailed";
    dom.catalogMessage.textContent = t("kiosk.catalogFailed");
    setTimeout(loadCatalog, CATALOG_RETRY_MS);
  }
}

/**
 * The server renewed this kiosk's token (the old one is about to expire): keep the new
 * one for reconnects, uploads and the next reload (the URL fragment, never sent to the
 * server).
 */
function onTokenRenewed(data) {
  if (!data || typeof data.token !== "string") return;
  state.token = data.token;
  client.socket.auth.token = data.token;
  history.replaceState(null, "", `${location.pathname}${location.search}#token=${encodeURIComponent(data.token)}`);
}

/** The device token from the URL fragment (#token=...); never sent to the server in a URL. */
function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return params.get("token") || null;
}

/** Back to the start (and the default language) after a while without a touch. */
function armIdleReset() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (state.phase === "idle") {
      goHome();
      if (getLanguage() !== DEFAULT_LANGUAGE) switchLanguage(DEFAULT_LANGUAGE);
    }
    armIdleReset();
  }, IDLE_RESET_MS);
}

function init() {
  Object.assign(dom, {
    status: byId("status"),
    departmentList: byId("department-list"),
    serviceList: byId("service-list"),
    servicesHeading: byId("services-heading"),
    catalogMessage: byId("catalog-message"),
    waitingService: byId("waiting-service"),
    waitingNotice: byId("waiting-notice"),
    queuePosition: byId("queue-position"),
    queueEta: byId("queue-eta"),
    cancel: byId("cancel"),
    back: byId("back"),
    hangup: byId("hangup"),
    staffName: byId("staff-name"),
    callDepartment: byId("call-department"),
    callMediaState: byId("call-media-state"),
    endedReason: byId("ended-reason"),
    remoteVideo: byId("remote-video"),
    selfVideo: byId("self-video"),
    selfView: byId("self-view"),
    callStage: byId("call-stage"),
    kioskMain: byId("kiosk-main"),
    idScan: byId("id-scan"),
    idScanInput: byId("id-scan-input"),
    idScanProgress: byId("id-scan-progress"),
    idScanStatus: byId("id-scan-status"),
    docScan: byId("doc-scan"),
    docScanInput: byId("doc-scan-input"),
    docScanProgress: byId("doc-scan-progress"),
    docScanStatus: byId("doc-scan-status"),
    docKinds: [...document.querySelectorAll(".doc-kind")],
    endedReceipt: byId("ended-receipt"),
    endedReceiptNo: byId("ended-receipt-no"),
    challengePrompt: byId("challenge-prompt"),
    challengeArrow: byId("challenge-arrow"),
    challengeText: byId("challenge-text"),
    challengeTextOther: byId("challenge-text-other"),
    challengeCountdown: byId("challenge-countdown"),
    challengeProgress: byId("challenge-progress"),
  });
  Object.assign(screens, {
    departments: byId("screen-departments"),
    services: byId("screen-services"),
    waiting: byId("screen-waiting"),
    call: byId("screen-call"),
    ended: byId("screen-ended"),
  });

  setUpScans();
  switchLanguage(DEFAULT_LANGUAGE);
  for (const button of all(".lang-button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  dom.back.addEventListener("click", goHome);
  dom.cancel.addEventListener("click", cancelCall);
  dom.hangup.addEventListener("click", hangup);
  screens.ended.addEventListener("click", () => {
    if (state.phase === "ended") resetToHome();
  });
  replayOnGesture([dom.remoteVideo, dom.selfVideo]);
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, armIdleReset, { capture: true, passive: true });
  }
  armIdleReset();

  show("departments");
  ensureLocalMedia();
  loadCatalog();

  state.token = readToken();
  if (!state.token) {
    setStatus("kiosk.noToken", "error");
    return;
  }
  restoreSession();
  setStatus("kiosk.connecting");
  connectSocket();
}

init();
