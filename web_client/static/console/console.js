// Staff console (/console): sign in, set presence, answer calls from kiosks on video,
// verify the caller's identity against their ID card, work on the call's documents
// (case_panel.js), wrap up, decide applications (case_list.js). Protocol v1, namespace /staff.
import { apiFetch, getCatalog } from "../shared/api.js";
import { SignInForm } from "../components/sign_in_form.js";
import { all, byId, formatDuration, showOnly } from "../shared/dom.js";
import { applyTranslations, errorKey, getLanguage, localName, setLanguage, t } from "../shared/i18n.js";
import { attachStream, detachStream, getLocalMedia, replayOnGesture, stopStream } from "../shared/local_media.js";
import { CasesPanel } from "./case_list.js";
import { CaseworkPanel } from "./case_panel.js";
import { startRinging, stopRinging, unlockAudio } from "./ringer.js";
import { MediaLink } from "../shared/rtc.js";
import { clearAuth, restoreAuth, saveAuth } from "../shared/signin.js";
import { connect, connectErrorCode, requestOn } from "../shared/socket.js";
import { VerificationPanel } from "../components/verification.js";

const DEFAULT_LANGUAGE = "zh-Hans";
const AUTH_KEY = "smartcounter.console.auth";
const LANG_KEY = "smartcounter.console.lang";
const PRESENCE_STATES = ["available", "ringing", "busy", "wrapup", "away"];

const dom = {};
const state = {
  auth: null, // {token, role, departments, expires_at, display_name}
  catalog: null,
  presence: "away",
  offer: null, // call.offer payload + receivedAt (ms)
  call: null, // {session_id, department_id, service_id, kiosk, startedAt}
  wrapup: null, // {session_id, reason}
  localStream: null,
  localMediaPromise: null,
  media: null,
  status: { key: null, kind: "info" },
  mediaKey: null,
  connectedOnce: false,
};
let client = null;
let signIn = null; // SignInForm
let ticker = null;
let verification = null; // VerificationPanel of the current call
let casework = null; // CaseworkPanel of the current call
let cases = null; // CasesPanel: applications awaiting a decision

window.smartcounter = {
  get pc() {
    return state.media ? state.media.pc : null;
  },
  get socket() {
    return client ? client.socket : null;
  },
  get sessionId() {
    return state.call ? state.call.session_id : null;
  },
};

// ---------------------------------------------------------------- text & status

function setStatus(key, kind = "info") {
  state.status = { key, kind };
  dom.status.textContent = key ? t(key) : "";
  dom.status.dataset.kind = kind;
}

function setMediaState(key) {
  state.mediaKey = key;
  dom.callMediaState.textContent = key ? t(key) : "";
}

function switchLanguage(lang) {
  setLanguage(lang);
  localStorage.setItem(LANG_KEY, lang);
  applyTranslations();
  for (const button of all(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  setStatus(state.status.key, state.status.kind);
  setMediaState(state.mediaKey);
  renderPresence();
  render();
  renderTitle();
  if (verification) verification.render();
  if (casework) casework.render();
  if (cases) cases.render();
}

function renderTitle() {
  document.title = state.offer ? `${t("console.incoming")} — ${t("console.title")}` : t("console.title");
}

function departmentName(id) {
  const department = state.catalog && state.catalog.departments.find((d) => d.id === id);
  return department ? localName(department.name, getLanguage()) : id || "";
}

function serviceName(id) {
  if (state.catalog) {
    for (const department of state.catalog.departments) {
      const service = (department.services || []).find((s) => s.id === id);
      if (service) return localName(service.name, getLanguage());
    }
  }
  return id || "";
}

function kioskSite(kiosk) {
  return (kiosk && (kiosk.site || kiosk.id)) || "";
}

// ---------------------------------------------------------------- presence

function setPresence(value) {
  if (typeof value !== "string" || !value) return;
  state.presence = value;
  renderPresence();
  syncCamera();
}

function renderPresence() {
  const value = state.presence;
  dom.presenceState.textContent = value;
  dom.presenceState.dataset.state = value;
  dom.presenceLabel.textContent = PRESENCE_STATES.includes(value)
    ? t(`console.state.${value}`)
    : t("console.state.unknown");
  dom.presenceAvailable.setAttribute("aria-pressed", String(value === "available"));
  dom.presenceAway.setAttribute("aria-pressed", String(value === "away"));
  dom.idleText.textContent = t(value === "away" ? "console.idleAway" : "console.idleAvailable");
}

async function requestPresence(value) {
  if (!client) return;
  try {
    const ack = await client.request("presence.set", { state: value });
    setPresence(ack.state || value);
  } catch (err) {
    setStatus(errorKey(err), "error");
  }
}

// ---------------------------------------------------------------- panels

function render() {
  const { offer, call, wrapup } = state;
  dom.incoming.hidden = !offer;
  dom.callArea.hidden = !call;
  dom.callPanel.hidden = !call;
  dom.wrapupPanel.hidden = !wrapup;
  dom.idlePanel.hidden = Boolean(offer || call || wrapup);
  if (offer) {
    dom.incomingDepartment.textContent = departmentName(offer.department_id);
    dom.incomingService.textContent = serviceName(offer.service_id);
    dom.incomingSite.textContent = kioskSite(offer.kiosk);
  }
  if (call) {
    dom.callInfo.textContent = [
      departmentName(call.department_id),
      serviceName(call.service_id),
      kioskSite(call.kiosk),
    ]
      .filter(Boolean)
      .join(" · ");
  }
  if (wrapup) {
    const key = `console.endedReason.${wrapup.reason}`;
    dom.wrapupReason.textContent = t(key) === key ? "" : t(key);
  }
  tick();
  renderTitle();
}

/** Once a second: the waiting time and the countdown of an offer, the call duration. */
function tick() {
  const now = Date.now();
  const { offer, call } = state;
  if (offer) {
    const elapsed = (now - offer.receivedAt) / 1000;
    dom.incomingWaited.textContent = formatDuration((Number(offer.waited_s) || 0) + elapsed);
    const total = Number(offer.expires_in_s) || 0;
    const left = Math.max(0, total - elapsed);
    dom.incomingCountdown.textContent = String(Math.ceil(left));
    dom.incomingProgress.max = total || 1;
    dom.incomingProgress.value = left;
    if (total && elapsed > total + 2) {
      // The server revokes an expired offer; don't keep a dead one on screen if that is lost.
      clearOffer();
      render();
    }
  }
  if (call) dom.callDuration.textContent = formatDuration((now - call.startedAt) / 1000);
}

function clearOffer() {
  state.offer = null;
  stopRinging();
  dom.accept.disabled = false;
  dom.decline.disabled = false;
}

// ---------------------------------------------------------------- camera & media

function ensureLocalMedia() {
  if (state.localStream && state.localStream.getTracks().some((tr) => tr.readyState === "live")) {
    return Promise.resolve(state.localStream);
  }
  if (!state.localMediaPromise) {
    state.localMediaPromise = getLocalMedia()
      .then((stream) => {
        // Released while we waited (went away, signed out)?
        if (!wantCamera()) {
          stopStream(stream);
          return null;
        }
        state.localStream = stream;
        attachStream(dom.selfVideo, stream);
        return stream;
      })
      .catch((err) => {
        console.warn("getUserMedia failed", err);
        setStatus("console.cameraFailed", "error");
        return null;
      })
      .finally(() => {
        state.localMediaPromise = null;
      });
  }
  return state.localMediaPromise;
}

function wantCamera() {
  return Boolean(state.auth) && (state.call !== null || state.presence !== "away");
}

/** Hold the camera while signed in and not away (faster call set-up), release it otherwise. */
function syncCamera() {
  if (wantCamera()) {
    ensureLocalMedia();
  } else if (state.localStream) {
    stopStream(state.localStream);
    state.localStream = null;
    detachStream(dom.selfVideo);
  }
}

function startMedia() {
  stopMedia();
  const media = new MediaLink({
    token: state.auth.token,
    sessionId: state.call.session_id,
    request: client.request,
    getLocalStream: ensureLocalMedia,
    onRemoteStream: (stream) => attachStream(dom.remoteVideo, stream),
    onStatus: (s) => {
      if (media !== state.media) return;
      if (s === "connected") setMediaState(null);
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

// ---------------------------------------------------------------- call actions

async function accept() {
  const offer = state.offer;
  if (!offer || !client) return;
  dom.accept.disabled = true;
  dom.decline.disabled = true;
  stopRinging();
  ensureLocalMedia(); // start the camera while the server answers
  try {
    await client.request("call.accept", { session_id: offer.session_id });
  } catch (err) {
    if (state.offer !== offer) return;
    if (err.code === "timeout" || err.code === "disconnected") {
      dom.accept.disabled = false;
      dom.decline.disabled = false;
      setStatus(errorKey(err), "error");
    } else {
      clearOffer();
      render();
      setStatus(err.code === "conflict" || err.code === "not_found" ? "console.offerTaken" : errorKey(err), "warn");
    }
    return;
  }
  if (state.offer === offer) clearOffer();
  state.wrapup = null;
  state.call = {
    session_id: offer.session_id,
    department_id: offer.department_id,
    service_id: offer.service_id,
    kiosk: offer.kiosk,
    startedAt: Date.now(),
  };
  dom.hangup.disabled = false;
  verification.reset(offer.session_id);
  casework.reset(offer.session_id);
  if (state.presence !== "busy") setPresence("busy");
  setStatus(null);
  render();
  startMedia();
}

async function decline() {
  const offer = state.offer;
  if (!offer || !client) return;
  dom.accept.disabled = true;
  dom.decline.disabled = true;
  try {
    await client.request("call.decline", { session_id: offer.session_id });
  } catch (err) {
    console.warn("call.decline failed", err);
  }
  if (state.offer === offer) {
    clearOffer();
    render();
  }
}

async function hangup() {
  const call = state.call;
  if (!call || !client) return;
  dom.hangup.disabled = true;
  try {
    await client.request("call.hangup", { session_id: call.session_id });
  } catch (err) {
    console.warn("call.hangup failed", err);
  }
  endCall(call.session_id, "hangup");
}

function endCall(sessionId, reason) {
  if (!state.call || state.call.session_id !== sessionId) return;
  stopMedia();
  state.call = null;
  verification.reset(null);
  casework.reset(null);
  state.wrapup = { session_id: sessionId, reason };
  if (state.presence === "busy") setPresence("wrapup");
  setStatus("console.callEnded");
  render();
}

async function wrapupDone() {
  if (!state.wrapup || !client) return;
  dom.wrapupDone.disabled = true;
  try {
    const ack = await client.request("wrapup.done", {});
    state.wrapup = null;
    setPresence(ack.state);
    setStatus(null);
  } catch (err) {
    if (err.code === "conflict") state.wrapup = null; // not in wrap-up any more
    else setStatus(errorKey(err), "error");
  } finally {
    dom.wrapupDone.disabled = false;
    render();
  }
}

// ---------------------------------------------------------------- server events

// Offers this console has seen revoked (an offer and its revocation may come from two
// nodes and arrive in either order); the last few are enough.
const revokedOffers = new Set();

function onCallOffer(msg) {
  if (!msg || !msg.session_id) return;
  // In a call no offer is meant for us (the server offers only to available staff): a
  // late one from another node, like an offer already revoked, is dropped.
  if (state.call || revokedOffers.has(msg.offer_id)) return;
  state.offer = { ...msg, receivedAt: Date.now() };
  dom.accept.disabled = false;
  dom.decline.disabled = false;
  render();
  startRinging();
  dom.accept.focus({ preventScroll: true });
}

function onOfferRevoked(msg) {
  if (msg && msg.offer_id) {
    revokedOffers.add(msg.offer_id);
    if (revokedOffers.size > 50) revokedOffers.delete(revokedOffers.values().next().value);
  }
  if (!msg || !state.offer || state.offer.session_id !== msg.session_id) return;
  if (msg.offer_id && state.offer.offer_id && msg.offer_id !== state.offer.offer_id) return;
  clearOffer();
  render();
  setStatus("console.offerRevoked", "warn");
}

function onCallEnded(msg) {
  if (!msg) return;
  if (state.offer && state.offer.session_id === msg.session_id) {
    clearOffer();
    render();
  }
  endCall(msg.session_id, msg.reason);
}

// ---------------------------------------------------------------- connection & sign-in

/** After a reload mid-call: take the call back (a new offer replaces the old media). */
async function rejoinCall(sessionId) {
  let record;
  try {
    record = await apiFetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}`, {
      token: state.auth.token,
    });
  } catch (err) {
    console.warn("cannot read the call to rejoin", err);
    return;
  }
  if (record.state !== "connected" || state.call) {
    return;
  }
  state.wrapup = null;
  state.call = {
    session_id: record.session_id,
    department_id: record.department_id,
    service_id: record.service_id,
    kiosk: record.kiosk,
    startedAt: record.answered_at ? record.answered_at * 1000 : Date.now(),
  };
  dom.hangup.disabled = false;
  verification.reset(record.session_id);
  verification.restore(record); // documents and a verification result from before the reload
  casework.reset(record.session_id);
  casework.restore(record);
  render();
  startMedia();
}

function connectSocket() {
  client = connect("/staff", state.auth.token);
  const { socket } = client;
  setStatus("console.connecting");
  socket.on("connect", async () => {
    setStatus("console.connected");
    const wasAvailable = state.connectedOnce && state.presence === "available";
    state.connectedOnce = true;
    // The server's view of our presence (e.g. busy or wrap-up after a reload mid-call).
    const ack = await client.request("presence.get", {}, 5000).catch(() => null);
    if (ack && ack.state) setPresence(ack.state);
    if (ack && ack.state === "busy" && ack.session_id && !state.call) await rejoinCall(ack.session_id);
    else if (state.call && ack && (ack.state !== "busy" || ack.session_id !== state.call.session_id)) {
      endCall(state.call.session_id, "error"); // it ended while we were away
    } else if (state.call && state.media) state.media.restartIfSilent();
    // After a reconnect, say again that we take calls (the server may have set us away).
    if (wasAvailable && (!ack || ack.state === "away")) requestPresence("available");
  });
  socket.on("connect_error", (err) => {
    if (connectErrorCode(err, socket) === "unauthorized") {
      logout("console.sessionExpired");
      return;
    }
    setStatus("console.reconnecting", "warn");
    if (!socket.active) setTimeout(() => client && client.socket === socket && socket.connect(), 5000);
  });
  socket.on("disconnect", (reason) => {
    if (!client || client.socket !== socket) return;
    setStatus("console.reconnecting", "warn");
    if (reason === "io server disconnect") {
      setTimeout(() => client && client.socket === socket && socket.connect(), 3000);
    }
  });
  socket.on("presence.changed", (msg) => msg && setPresence(msg.state));
  socket.on("call.offer", onCallOffer);
  socket.on("call.offer_revoked", onOfferRevoked);
  socket.on("call.ended", onCallEnded);
  socket.on("document.added", (msg) => {
    verification.onDocumentAdded(msg);
    casework.onDocumentAdded(msg);
  });
  socket.on("signature.completed", (msg) => casework.onSignatureCompleted(msg));
  socket.on("print.status", (msg) => casework.onPrintStatus(msg));
  socket.on("verification.update", (msg) => verification.onUpdate(msg));
  socket.on("verification.presence", (msg) => verification.onPresence(msg));
}

async function loadCatalog() {
  try {
    const catalog = await getCatalog();
    state.catalog = { departments: (catalog && catalog.departments) || [] };
    render();
    cases.render();
  } catch (err) {
    console.warn("catalog failed", err);
    setTimeout(() => state.auth && !state.catalog && loadCatalog(), 5000);
  }
}

function startWork() {
  showOnly({ login: dom.loginView, work: dom.workView }, "work");
  dom.logout.hidden = false;
  dom.signedIn.hidden = false;
  dom.staffName.textContent = state.auth.display_name || "";
  state.presence = "away";
  state.connectedOnce = false;
  renderPresence();
  render();
  if (!state.catalog) loadCatalog();
  connectSocket();
  cases.start();
  clearInterval(ticker);
  ticker = setInterval(tick, 1000);
}

function showLogin(errorKey = null) {
  signIn.show(errorKey);
}

function signedIn(answer, username) {
  state.auth = {
    token: answer.token,
    role: answer.role,
    departments: answer.departments || [],
    expires_at: answer.expires_at,
    display_name: answer.display_name || username,
  };
  saveAuth(AUTH_KEY, state.auth);
  startWork();
}

async function logout(messageKey = null) {
  const current = client;
  client = null;
  if (current && current.socket.connected) {
    if (state.call) {
      await current
        .request("call.hangup", { session_id: state.call.session_id }, 2000)
        .catch(() => {});
    }
    if (state.presence !== "away") {
      await current.request("presence.set", { state: "away" }, 2000).catch(() => {});
    }
  }
  if (current) {
    current.socket.removeAllListeners();
    current.socket.disconnect();
  }
  clearInterval(ticker);
  clearOffer();
  stopMedia();
  state.auth = null;
  state.call = null;
  verification.reset(null);
  casework.reset(null);
  cases.clear();
  state.wrapup = null;
  state.presence = "away";
  syncCamera();
  clearAuth(AUTH_KEY);
  render();
  setStatus(null);
  showLogin(messageKey);
}

function init() {
  Object.assign(dom, {
    status: byId("status"),
    loginView: byId("login-view"),
    workView: byId("work-view"),
    loginForm: byId("login-form"),
    username: byId("login-username"),
    password: byId("login-password"),
    loginSubmit: byId("login-submit"),
    loginError: byId("login-error"),
    logout: byId("logout"),
    signedIn: byId("signed-in"),
    staffName: byId("staff-name"),
    presenceState: byId("presence-state"),
    presenceLabel: byId("presence-label"),
    presenceAvailable: byId("presence-available"),
    presenceAway: byId("presence-away"),
    incoming: byId("incoming-call"),
    incomingDepartment: byId("incoming-department"),
    incomingService: byId("incoming-service"),
    incomingSite: byId("incoming-site"),
    incomingWaited: byId("incoming-waited"),
    incomingCountdown: byId("incoming-countdown"),
    incomingProgress: byId("incoming-progress"),
    accept: byId("accept"),
    decline: byId("decline"),
    callArea: byId("call-area"),
    callPanel: byId("call-panel"),
    callInfo: byId("call-info"),
    callDuration: byId("call-duration"),
    callMediaState: byId("call-media-state"),
    remoteVideo: byId("remote-video"),
    selfVideo: byId("self-video"),
    hangup: byId("hangup"),
    wrapupPanel: byId("wrapup-panel"),
    wrapupReason: byId("wrapup-reason"),
    wrapupDone: byId("wrapup-done"),
    idlePanel: byId("idle-panel"),
    idleText: byId("idle-text"),
  });

  const request = (event, payload) => requestOn(client && client.socket, event, payload);
  verification = new VerificationPanel(byId("verify-panel"), request);
  casework = new CaseworkPanel(byId("casework-panel"), {
    request,
    token: () => (state.auth ? state.auth.token : null),
    onLodged: () => cases.refresh(),
  });
  cases = new CasesPanel(byId("cases-panel"), {
    request,
    token: () => (state.auth ? state.auth.token : null),
    names: { department: departmentName, service: serviceName },
  });

  const savedLang = localStorage.getItem(LANG_KEY);
  switchLanguage(savedLang === "en" || savedLang === "zh-Hans" ? savedLang : DEFAULT_LANGUAGE);
  for (const button of all(".lang-button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  signIn = new SignInForm({
    dom,
    role: "staff",
    keys: {
      failed: "console.loginFailed",
      error: "console.loginError",
      wrongRole: "console.notStaff",
      signingIn: "console.loggingIn",
      rateLimited: "error.rate_limited",
    },
    onSignedIn: signedIn,
    setStatus: (key) => setStatus(key),
    beforeSubmit: unlockAudio,
  });
  dom.logout.addEventListener("click", () => logout());
  dom.presenceAvailable.addEventListener("click", () => {
    unlockAudio();
    requestPresence("available");
  });
  dom.presenceAway.addEventListener("click", () => requestPresence("away"));
  dom.accept.addEventListener("click", accept);
  dom.decline.addEventListener("click", decline);
  dom.hangup.addEventListener("click", hangup);
  dom.wrapupDone.addEventListener("click", wrapupDone);
  replayOnGesture([dom.remoteVideo, dom.selfVideo]);

  state.auth = restoreAuth(AUTH_KEY, "staff");
  if (state.auth) startWork();
  else showLogin();
}

init();
