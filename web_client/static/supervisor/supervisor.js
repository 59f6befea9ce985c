// Supervisor page (/supervisor): sign in; the live dashboard (queues, last hour's chart,
// agents; dashboard.js) and the live calls, both from `dashboard.snapshot`; listen in to
// a connected call silently, whisper to the staff member or barge in; move a waiting
// caller to another department or agent (reassign_dialog.js). Protocol v1, namespace
// /supervisor.
//
// Monitor: monitor.start {session_id, mode}, then one RTCPeerConnection whose offer has,
// in this order, video, audio, video, audio: the server sends the kiosk's media on the
// first pair and the staff member's on the second. Silent: all four recvonly. Whisper
// and barge: the first audio section is sendrecv and carries the supervisor's
// microphone (whisper: the staff member hears it; barge: both parties do).
import { getCatalog } from "../shared/api.js";
import { SignInForm } from "../components/sign_in_form.js";
import { Dashboard } from "./dashboard.js";
import { ReassignDialog } from "./reassign_dialog.js";
import { all, byId, el, formatDuration, showOnly } from "../shared/dom.js";
import { addStrings, applyTranslations, hasString, localName, setLanguage, t } from "../shared/i18n.js";
import { DEFAULT_LANGUAGE, LANGUAGES, PREFIX, STRINGS } from "./strings.js";
import { playQuietly } from "../shared/local_media.js";
import { MediaLink } from "../shared/rtc.js";
import { clearAuth, restoreAuth, saveAuth } from "../shared/signin.js";
import { connect, connectErrorCode } from "../shared/socket.js";

const AUTH_KEY = "smartcounter.supervisor.auth";
const LANG_KEY = "smartcounter.supervisor.lang";
const SUBSCRIBE_RETRY_MS = 3000;
const CALL_STATES = ["queued", "ringing", "connected"];
const MODES = ["silent", "whisper", "barge"];
const MIC = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// ---------------------------------------------------------------- strings

addStrings(STRINGS, PREFIX);
let lang = DEFAULT_LANGUAGE;

/** The string `key` of this page in the current language, `{name}` placeholders from vars. */
function s(key, vars) {
  return t(PREFIX + key, vars);
}

function errorString(err) {
  if (err && err.code === "microphone") return s("micFailed");
  const key = `error.${err && err.code}`;
  if (hasString(PREFIX + key)) return s(key);
  // A server message for a code we have no string for is more useful than nothing.
  return err && err.message ? `${s("error.generic")} (${err.message})` : s("error.generic");
}

// ---------------------------------------------------------------- state

const dom = {};
const state = {
  auth: null, // {token, role, display_name, expires_at}
  catalog: null,
  snapshot: null, // the last dashboard.snapshot
  clockOffset: 0, // server clock − this clock, seconds
  calls: new Map(), // session_id → call of the snapshot
  rows: new Map(), // session_id → {row, cells…, buttons}
  monitor: null, // {sessionId, mode, link, mic, answeredAt, startedAt}
  status: { key: null, kind: "info", text: null, vars: null },
  mediaKey: null,
  subscribed: false,
  subscribeTimer: null,
};
let client = null;
let signIn = null; // SignInForm
let ticker = null;
let dashboard = null;
let reassign = null;

window.smartcounter = {
  get pc() {
    return state.monitor && state.monitor.link ? state.monitor.link.pc : null;
  },
  get socket() {
    return client ? client.socket : null;
  },
  get sessionId() {
    return state.monitor ? state.monitor.sessionId : null;
  },
  /** The monitor's mode (silent, whisper, barge) or null. */
  get mode() {
    return state.monitor ? state.monitor.mode : null;
  },
  /** performance.now() when the answer to the monitor's rtc.offer arrived (or null). */
  get answeredAt() {
    return state.monitor ? state.monitor.answeredAt : null;
  },
  /** The last dashboard.snapshot (or null). */
  get snapshot() {
    return state.snapshot;
  },
};

/** Now on the server's clock (epoch seconds), from the last snapshot's `at`. */
function serverNow() {
  return Date.now() / 1000 + state.clockOffset;
}

// ---------------------------------------------------------------- text & status

/** Status line: a string key (with vars), or (key null) a ready-made text. */
function setStatus(key, kind = "info", text = null, vars = null) {
  state.status = { key, kind, text, vars };
  dom.status.textContent = key ? s(key, vars) : text || "";
  dom.status.dataset.kind = kind;
  if (key) dom.status.dataset.key = key;
  else delete dom.status.dataset.key;
}

function setMediaState(key) {
  state.mediaKey = key;
  dom.monitorMediaState.textContent = key ? s(key) : "";
}

function translatePage() {
  applyTranslations();
  document.title = s("title");
}

function switchLanguage(next) {
  lang = LANGUAGES.includes(next) ? next : DEFAULT_LANGUAGE;
  setLanguage(lang);
  localStorage.setItem(LANG_KEY, lang);
  for (const button of all(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  translatePage();
  const { key, kind, text, vars } = state.status;
  setStatus(key, kind, text, vars);
  setMediaState(state.mediaKey);
  dashboard.render();
  renderRows();
  renderMonitor();
  reassign.render();
}

// ---------------------------------------------------------------- catalog names

function departmentName(id) {
  const department = state.catalog && state.catalog.departments.find((d) => d.id === id);
  return department ? localName(department.name, lang) : id || "";
}

function serviceName(id) {
  for (const department of (state.catalog && state.catalog.departments) || []) {
    const service = (department.services || []).find((x) => x.id === id);
    if (service) return localName(service.name, lang);
  }
  return id || "";
}

function agentName(staffId) {
  if (!staffId) return "";
  const agent = dashboard.agent(staffId);
  return (agent && agent.display_name) || staffId;
}

async function loadCatalog() {
  try {
    const catalog = await getCatalog();
    state.catalog = { departments: (catalog && catalog.departments) || [] };
    dashboard.render();
    renderRows();
    renderMonitor();
    reassign.render();
  } catch (err) {
    console.warn("catalog failed", err);
    setTimeout(() => state.auth && !state.catalog && loadCatalog(), 5000);
  }
}

// ---------------------------------------------------------------- dashboard

function onSnapshot(snapshot) {
  if (!snapshot || typeof snapshot !== "object" || !state.auth) return;
  state.snapshot = snapshot;
  const at = Number(snapshot.at);
  if (Number.isFinite(at) && at > 0) state.clockOffset = at - Date.now() / 1000;
  dashboard.setSnapshot(snapshot);
  renderCalls(Array.isArray(snapshot.calls) ? snapshot.calls : []);
  reassign.render();
}

function onHistory(history) {
  if (!history || typeof history !== "object" || !state.auth) return;
  dashboard.setHistory(history);
}

async function subscribe() {
  clearTimeout(state.subscribeTimer);
  const current = client;
  if (!current || !current.socket.connected) return;
  try {
    await current.request("dashboard.subscribe", {}, 10000);
    if (client !== current) return;
    state.subscribed = true;
    if (state.status.key === "subscribeFailed") setStatus("connected");
  } catch (err) {
    if (client !== current) return;
    console.warn("dashboard.subscribe failed", err);
    state.subscribed = false;
    setStatus("subscribeFailed", "warn");
    state.subscribeTimer = setTimeout(subscribe, SUBSCRIBE_RETRY_MS);
  }
}

// ---------------------------------------------------------------- live calls

function secondsSince(epochSeconds) {
  const at = Number(epochSeconds);
  return at ? Math.max(0, serverNow() - at) : 0;
}

function makeRow(sid) {
  const button = (testid, onclick, extra = "") =>
    el("button", { type: "button", class: `button button-small ${extra}`.trim(), dataset: { testid }, onclick });
  const entry = {
    stateBadge: el("span", { class: "state-badge" }),
    department: el("td"),
    service: el("td"),
    site: el("td"),
    staff: el("td"),
    time: el("td", { class: "call-time" }),
    button: button(`monitor-${sid}`, () => startMonitor(sid, "silent")),
    whisper: button(`whisper-${sid}`, () => startMonitor(sid, "whisper"), "button-secondary"),
    barge: button(`barge-${sid}`, () => startMonitor(sid, "barge"), "button-secondary"),
    reassign: button(`reassign-${sid}`, () => reassign.open(sid), "button-secondary"),
  };
  entry.row = el(
    "tr",
    { dataset: { testid: `call-${sid}`, session: sid } },
    el("td", {}, entry.stateBadge),
    entry.department,
    entry.service,
    entry.site,
    entry.staff,
    entry.time,
    el(
      "td",
      { class: "call-actions" },
      el("span", { class: "call-buttons" }, entry.button, entry.whisper, entry.barge, entry.reassign),
    ),
  );
  return entry;
}

function updateRow(entry, call) {
  if (!call) return;
  const known = CALL_STATES.includes(call.state);
  Object.assign(entry.row.dataset, {
    state: call.state,
    department: call.department_id || "",
    staff: call.staff_id || "",
    since: String(call.since || ""),
  });
  entry.stateBadge.dataset.state = call.state;
  entry.stateBadge.textContent = known ? s(`state.${call.state}`) : call.state;
  entry.department.textContent = departmentName(call.department_id);
  entry.service.textContent = serviceName(call.service_id);
  entry.site.textContent = call.kiosk_id || "";
  entry.staff.textContent = agentName(call.staff_id) || "—";
  entry.time.textContent = formatDuration(secondsSince(call.since));
  const connected = call.state === "connected";
  const waiting = call.state === "queued" || call.state === "ringing";
  const monitor = state.monitor && state.monitor.sessionId === call.session_id ? state.monitor : null;
  entry.row.classList.toggle("monitored", Boolean(monitor));
  entry.button.hidden = !connected;
  entry.button.disabled = Boolean(monitor);
  entry.button.textContent = monitor ? s(`active.${monitor.mode}`) : s("listen");
  // While this call is monitored, the panel switches the mode.
  entry.whisper.hidden = !connected || Boolean(monitor);
  entry.whisper.textContent = s("whisper");
  entry.barge.hidden = !connected || Boolean(monitor);
  entry.barge.textContent = s("barge");
  entry.reassign.hidden = !waiting;
  entry.reassign.textContent = s("reassign");
}

function renderRows() {
  for (const [sid, entry] of state.rows) updateRow(entry, state.calls.get(sid));
}

/** Update the table in place (rows and buttons stay the same nodes while a call lasts). */
function renderCalls(list) {
  const seen = new Set();
  let previous = null;
  for (const call of list) {
    if (!call || typeof call.session_id !== "string") continue;
    const sid = call.session_id;
    seen.add(sid);
    state.calls.set(sid, call);
    let entry = state.rows.get(sid);
    if (!entry) {
      entry = makeRow(sid);
      state.rows.set(sid, entry);
    }
    updateRow(entry, call);
    // Keep the server's order (oldest first).
    const wanted = previous ? previous.nextSibling : dom.callsBody.firstChild;
    if (entry.row !== wanted) dom.callsBody.insertBefore(entry.row, wanted);
    previous = entry.row;
  }
  for (const [sid, entry] of state.rows) {
    if (seen.has(sid)) continue;
    entry.row.remove();
    state.rows.delete(sid);
    state.calls.delete(sid);
  }
  dom.callsCount.textContent = String(seen.size);
  dom.callsEmpty.hidden = seen.size > 0;
  // The call we listen to is over (or no longer connected): stop.
  const monitor = state.monitor;
  if (monitor) {
    const call = state.calls.get(monitor.sessionId);
    if (!call || call.state !== "connected") stopMonitor("monitorEnded");
  }
  renderMonitor();
}

function onReassigned(ack, payload) {
  const department = departmentName(ack.department_id || payload.department_id);
  if (ack.offered_to) {
    setStatus("reassignOffered", "info", null, { department, agent: agentName(ack.offered_to) });
  } else {
    setStatus("reassignDone", "info", null, { department });
  }
}

// ---------------------------------------------------------------- monitoring

function renderMonitor() {
  const monitor = state.monitor;
  dom.monitorPanel.hidden = !monitor;
  if (!monitor) return;
  dom.monitorPanel.dataset.mode = monitor.mode;
  dom.monitorPanel.dataset.sessionId = monitor.sessionId;
  dom.monitorHeading.dataset.i18n = PREFIX + `monitoring.${monitor.mode}`;
  dom.monitorHeading.textContent = s(`monitoring.${monitor.mode}`);
  dom.monitorModeBadge.dataset.i18n = PREFIX + `modeBadge.${monitor.mode}`;
  dom.monitorModeBadge.textContent = s(`modeBadge.${monitor.mode}`);
  dom.monitorModeBadge.dataset.mode = monitor.mode;
  for (const button of dom.modeButtons) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === monitor.mode));
  }
  const track = monitor.mic && monitor.mic.getAudioTracks()[0];
  dom.monitorMic.hidden = !track;
  if (track) {
    const muted = !track.enabled;
    dom.monitorMic.dataset.state = muted ? "muted" : "on";
    dom.monitorMicState.textContent = s(muted ? "micMuted" : "micOn");
    dom.monitorMicToggle.textContent = s(muted ? "unmuteMic" : "muteMic");
    dom.monitorMicToggle.setAttribute("aria-pressed", String(muted));
  }
  const call = state.calls.get(monitor.sessionId);
  if (!call) return;
  dom.monitorInfo.textContent = [departmentName(call.department_id), serviceName(call.service_id), call.kiosk_id || ""]
    .filter(Boolean)
    .join(" · ");
  dom.monitorStaffName.textContent = call.staff_id ? `(${agentName(call.staff_id)})` : "";
  dom.monitorDuration.textContent = formatDuration(secondsSince(call.since));
}

/** Play a video with sound; if the browser refuses (autoplay policy), play it muted. */
function playWithSound(video) {
  video.muted = false;
  const promise = video.play();
  if (!promise || !promise.catch) return;
  promise.catch((err) => {
    if (!err || err.name !== "NotAllowedError" || !video.srcObject) return;
    video.muted = true;
    playQuietly(video);
    dom.monitorUnmute.hidden = false;
    setMediaState("soundBlocked");
  });
}

function unmute() {
  dom.monitorUnmute.hidden = true;
  if (state.mediaKey === "soundBlocked") setMediaState(null);
  playWithSound(dom.kioskVideo);
  playWithSound(dom.staffVideo);
}

function toggleMic() {
  const track = state.monitor && state.monitor.mic && state.monitor.mic.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  renderMonitor();
}

function onLinkState(monitor, linkState) {
  if (state.monitor !== monitor) return;
  if (linkState === "gave_up") {
    setMediaState("mediaFailed");
    return;
  }
  if (linkState === "negotiating") return;
  dom.monitorPanel.dataset.connection = linkState;
  if (linkState === "connected") {
    if (state.mediaKey !== "soundBlocked") setMediaState(null);
  } else if (linkState === "disconnected" || linkState === "failed") {
    setMediaState("mediaReconnecting"); // the media link offers again
  }
}

/**
 * A monitor's peer connection: kiosk video, kiosk audio (the supervisor's voice goes out
 * on it in whisper and barge), staff video, staff audio, in that order (the server
 * reads them so), shown in the two videos.
 */
function monitorPeerConnection(ice, monitor) {
  const pc = new RTCPeerConnection(ice);
  const micTrack = monitor.mic && monitor.mic.getAudioTracks()[0];
  const kioskVideo = pc.addTransceiver("video", { direction: "recvonly" });
  const kioskAudio = micTrack
    ? pc.addTransceiver(micTrack, { direction: "sendrecv", streams: [monitor.mic] })
    : pc.addTransceiver("audio", { direction: "recvonly" });
  const staffVideo = pc.addTransceiver("video", { direction: "recvonly" });
  const staffAudio = pc.addTransceiver("audio", { direction: "recvonly" });
  dom.kioskVideo.srcObject = new MediaStream([kioskVideo.receiver.track, kioskAudio.receiver.track]);
  dom.staffVideo.srcObject = new MediaStream([staffVideo.receiver.track, staffAudio.receiver.track]);
  playWithSound(dom.kioskVideo);
  playWithSound(dom.staffVideo);
  return pc;
}

async function getMicrophone() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: MIC, video: false });
  } catch (err) {
    const error = /** @type {Error & {code?: string}} */ (new Error(`microphone: ${err && err.name}`));
    error.code = "microphone";
    throw error;
  }
}

async function startMonitor(sessionId, mode = "silent") {
  if (!client || !state.auth || !MODES.includes(mode)) return;
  if (state.monitor && state.monitor.sessionId === sessionId && state.monitor.mode === mode) return;
  if (state.monitor) await stopMonitor(null);
  const monitor = { sessionId, mode, link: null, mic: null, answeredAt: null, startedAt: Date.now() };
  state.monitor = monitor;
  renderRows();
  renderMonitor();
  setStatus("monitorStarting");
  setMediaState("mediaConnecting");
  dom.monitorUnmute.hidden = true;
  let started = false;
  try {
    if (mode !== "silent") {
      const mic = await getMicrophone();
      if (state.monitor !== monitor) {
        for (const track of mic.getTracks()) track.stop();
        return;
      }
      monitor.mic = mic;
      renderMonitor();
    }
    await client.request("monitor.start", { session_id: sessionId, mode });
    started = true;
    if (state.monitor !== monitor) return;
    // The same media link as the kiosk's and the console's (shared/rtc.js): a monitor
    // whose ICE fails offers again, as theirs do.
    monitor.link = new MediaLink({
      token: state.auth.token,
      sessionId,
      request: client.request,
      offerFields: { purpose: "monitor" },
      peerConnection: (ice) => monitorPeerConnection(ice, monitor),
      onStatus: (linkState) => onLinkState(monitor, linkState),
      onAnswered: () => {
        monitor.answeredAt = performance.now();
      },
    });
    await monitor.link.start();
    if (state.monitor !== monitor) return;
    setStatus(`monitorStarted.${mode}`);
  } catch (err) {
    if (state.monitor !== monitor) return;
    console.warn("monitoring failed", err);
    closeMonitor();
    if (started && client) {
      client.request("monitor.stop", { session_id: sessionId }, 5000).catch(() => {});
    }
    setStatus(null, "error", `${s("monitorFailed")} ${errorString(err)}`);
  }
}

/** Forget the monitor locally: close its peer connection, the microphone, the videos. */
function closeMonitor() {
  const monitor = state.monitor;
  state.monitor = null;
  if (monitor && monitor.link) monitor.link.close();
  if (monitor && monitor.mic) for (const track of monitor.mic.getTracks()) track.stop();
  for (const video of [dom.kioskVideo, dom.staffVideo]) {
    video.pause();
    video.srcObject = null;
  }
  dom.monitorUnmute.hidden = true;
  setMediaState(null);
  delete dom.monitorPanel.dataset.connection;
  delete dom.monitorPanel.dataset.mode;
  delete dom.monitorPanel.dataset.sessionId;
  renderRows();
  renderMonitor();
}

async function stopMonitor(messageKey = "monitorStopped") {
  const monitor = state.monitor;
  if (!monitor) return;
  closeMonitor();
  setStatus(messageKey);
  if (client && client.socket.connected) {
    try {
      await client.request("monitor.stop", { session_id: monitor.sessionId }, 5000);
    } catch (err) {
      // conflict: the server already forgot it (the call ended); nothing to undo.
      if (err.code !== "conflict" && err.code !== "not_found") console.warn("monitor.stop failed", err);
    }
  }
}

// ---------------------------------------------------------------- connection & sign-in

function connectSocket() {
  client = connect("/supervisor", state.auth.token);
  const { socket } = client;
  setStatus("connecting");
  socket.on("dashboard.snapshot", onSnapshot);
  socket.on("dashboard.history", onHistory);
  socket.on("connect", () => {
    if (state.status.key === "connecting" || state.status.key === "reconnecting") setStatus("connected");
    // The server forgets a socket's subscription when it goes: subscribe on every connect.
    subscribe();
  });
  socket.on("connect_error", (err) => {
    if (connectErrorCode(err, socket) === "unauthorized") {
      logout("sessionExpired");
      return;
    }
    setStatus("reconnecting", "warn");
    if (!socket.active) setTimeout(() => client && client.socket === socket && socket.connect(), 5000);
  });
  socket.on("disconnect", (reason) => {
    if (!client || client.socket !== socket) return;
    state.subscribed = false;
    setStatus("reconnecting", "warn");
    // The server forgets a socket's monitors when it goes: the media is gone with it.
    if (state.monitor) closeMonitor();
    if (reason === "io server disconnect") {
      setTimeout(() => client && client.socket === socket && socket.connect(), 3000);
    }
  });
}

function startWork() {
  showOnly({ login: dom.loginView, work: dom.workView }, "work");
  dom.logout.hidden = false;
  dom.signedIn.hidden = false;
  dom.userName.textContent = state.auth.display_name || "";
  if (!state.catalog) loadCatalog();
  dashboard.render();
  connectSocket();
  clearInterval(ticker);
  ticker = setInterval(tick, 1000);
}

/** Once a second: the live times. */
function tick() {
  for (const [sid, entry] of state.rows) {
    const call = state.calls.get(sid);
    if (call) entry.time.textContent = formatDuration(secondsSince(call.since));
  }
  dashboard.tick();
  renderMonitor();
  if (reassign.isOpen) reassign.render();
}

function showLogin(errorKey = null) {
  signIn.show(errorKey ? PREFIX + errorKey : null);
}

function signedIn(answer, username) {
  state.auth = {
    token: answer.token,
    role: answer.role,
    expires_at: answer.expires_at,
    display_name: answer.display_name || username,
  };
  saveAuth(AUTH_KEY, state.auth);
  startWork();
}

async function logout(messageKey = null) {
  if (state.monitor) await stopMonitor(null);
  reassign.close();
  const current = client;
  client = null;
  if (current) {
    current.socket.removeAllListeners();
    current.socket.disconnect();
  }
  clearInterval(ticker);
  clearTimeout(state.subscribeTimer);
  state.auth = null;
  state.snapshot = null;
  state.subscribed = false;
  state.calls.clear();
  for (const entry of state.rows.values()) entry.row.remove();
  state.rows.clear();
  dom.callsCount.textContent = "0";
  dom.callsEmpty.hidden = false;
  dashboard.reset();
  clearAuth(AUTH_KEY);
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
    userName: byId("user-name"),
    callsBody: byId("calls-body"),
    callsCount: byId("calls-count"),
    callsEmpty: byId("calls-empty"),
    monitorPanel: byId("monitor-panel"),
    monitorHeading: byId("monitor-heading"),
    monitorModeBadge: byId("monitor-mode-badge"),
    monitorInfo: byId("monitor-info"),
    monitorDuration: byId("monitor-duration"),
    monitorStaffName: byId("monitor-staff-name"),
    monitorMediaState: byId("monitor-media-state"),
    monitorUnmute: byId("monitor-unmute"),
    monitorStop: byId("monitor-stop"),
    monitorMic: byId("monitor-mic"),
    monitorMicState: byId("monitor-mic-state"),
    monitorMicToggle: byId("monitor-mic-toggle"),
    modeButtons: [...document.querySelectorAll(".mode-button")],
    kioskVideo: byId("monitor-kiosk-video"),
    staffVideo: byId("monitor-staff-video"),
  });

  dashboard = new Dashboard(
    { s, key: (k) => PREFIX + k, lang: () => lang, departmentName, serverNow },
    {
      root: byId("dashboard"),
      cards: byId("dept-cards"),
      updated: byId("dashboard-updated"),
      targetHint: byId("target-hint"),
      chartBox: byId("chart-box"),
      chartWaiting: byId("chart-waiting"),
      chartLongest: byId("chart-longest"),
      legend: byId("chart-legend"),
      agentsBody: byId("agents-body"),
      agentsCount: byId("agents-count"),
      agentsEmpty: byId("agents-empty"),
    },
  );
  reassign = new ReassignDialog(
    {
      s,
      departmentName,
      serviceName,
      call: (sid) => state.calls.get(sid) || null,
      departments: () => dashboard.departments(),
      agents: () => dashboard.agents(),
      serverNow,
      request: (event, payload) => client.request(event, payload),
      errorString,
      onDone: onReassigned,
    },
    {
      dialog: byId("reassign-dialog"),
      form: byId("reassign-form"),
      info: byId("reassign-call-info"),
      department: byId("reassign-department"),
      staff: byId("reassign-staff"),
      error: byId("reassign-error"),
      submit: byId("reassign-submit"),
      cancel: byId("reassign-cancel"),
    },
  );

  const savedLang = localStorage.getItem(LANG_KEY);
  switchLanguage(LANGUAGES.includes(savedLang) ? savedLang : DEFAULT_LANGUAGE);
  for (const button of all(".lang-button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  signIn = new SignInForm({
    dom,
    role: "supervisor",
    keys: {
      failed: PREFIX + "loginFailed",
      error: PREFIX + "loginError",
      wrongRole: PREFIX + "notSupervisor",
      signingIn: PREFIX + "loggingIn",
      rateLimited: PREFIX + "error.rate_limited",
    },
    onSignedIn: signedIn,
    setStatus: (key) => setStatus(key && key.slice(PREFIX.length)), // this page's keys
  });
  dom.logout.addEventListener("click", () => logout());
  dom.monitorStop.addEventListener("click", () => stopMonitor("monitorStopped"));
  dom.monitorUnmute.addEventListener("click", unmute);
  dom.monitorMicToggle.addEventListener("click", toggleMic);
  for (const button of dom.modeButtons) {
    button.addEventListener("click", () => {
      if (state.monitor) startMonitor(state.monitor.sessionId, button.dataset.mode);
    });
  }

  state.auth = restoreAuth(AUTH_KEY, "supervisor");
  if (state.auth) startWork();
  else showLogin();
}

init();
