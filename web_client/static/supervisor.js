// Supervisor page (/supervisor): sign in, see the live calls, listen in silently to a
// connected call (both directions). Protocol v1, namespace /supervisor.
//
// Silent monitor: monitor.start {session_id, mode:"silent"}, then one recvonly
// RTCPeerConnection whose offer has, in this order, video, audio, video, audio: the
// server sends the kiosk's media on the first pair and the staff member's on the second.
// Nothing is sent to the parties.
import { apiFetch, getCatalog, login } from "./api.js";
import { byId, el, formatDuration, showOnly } from "./dom.js";
import { localName } from "./i18n.js";
import { playQuietly } from "./media.js";
import { loadIceConfig, waitForIceGathering } from "./rtc.js";
import { clearAuth, restoreAuth, saveAuth } from "./signin.js";
import { connect, connectErrorCode } from "./socket.js";

const LANGUAGES = ["zh-Hans", "zh-Hant", "en"];
const DEFAULT_LANGUAGE = "zh-Hans";
const AUTH_KEY = "smartcounter.supervisor.auth";
const LANG_KEY = "smartcounter.supervisor.lang";
const POLL_MS = 2000;
const OFFER_TIMEOUT_MS = 15000;
const CALL_STATES = ["queued", "ringing", "connected"];

// ---------------------------------------------------------------- strings

const STRINGS = {
  en: {
    title: "Smart Counter — Supervisor",
    langSwitch: "Language",
    signedInAs: "Signed in as",
    logout: "Sign out",
    loginTitle: "Supervisor sign-in",
    username: "Username",
    password: "Password",
    login: "Sign in",
    loggingIn: "Signing in…",
    loginFailed: "Wrong username or password.",
    loginError: "Sign-in failed. Please try again.",
    notSupervisor: "This page is for supervisors only. Please use the staff console.",
    sessionExpired: "Your session has expired. Please sign in again.",
    connecting: "Connecting to the server…",
    connected: "Connected.",
    reconnecting: "Connection lost. Reconnecting…",
    liveCalls: "Live calls",
    callsCount: "Calls",
    noCalls: "No live calls at the moment.",
    callsFailed: "The list of calls could not be loaded. Retrying…",
    colState: "State",
    colDepartment: "Department",
    colService: "Service",
    colSite: "Kiosk",
    colStaff: "Staff",
    colTime: "Time",
    colActions: "Actions",
    "state.queued": "Waiting",
    "state.ringing": "Ringing",
    "state.connected": "In call",
    listen: "Listen (silent)",
    listening: "Listening",
    monitoring: "Silent monitoring",
    modeSilent: "Silent — the parties cannot hear you",
    kioskSide: "Citizen (kiosk)",
    staffSide: "Staff",
    callDuration: "Call duration",
    stop: "Stop listening",
    unmute: "Turn sound on",
    monitorStarting: "Connecting to the call…",
    monitorStarted: "Listening to the call.",
    monitorStopped: "Stopped listening.",
    monitorEnded: "The call you were listening to has ended.",
    monitorFailed: "Could not listen to this call.",
    mediaConnecting: "Connecting the media…",
    mediaReconnecting: "The media connection was interrupted.",
    mediaFailed: "The media connection failed.",
    soundBlocked: "The browser blocked the sound. Use “Turn sound on”.",
    "error.bad_request": "The request was not accepted.",
    "error.unauthorized": "Your session has expired. Please sign in again.",
    "error.forbidden": "You are not allowed to do this.",
    "error.not_found": "This call no longer exists.",
    "error.conflict": "This call cannot be monitored now (it is not in a connected call).",
    "error.rate_limited": "Too many attempts. Please wait a moment and try again.",
    "error.unavailable": "This is not available yet.",
    "error.internal": "The server had a problem. Please try again.",
    "error.timeout": "The server did not answer in time. Please try again.",
    "error.disconnected": "Not connected to the server. Please wait…",
    "error.generic": "Something went wrong. Please try again.",
  },
  "zh-Hans": {
    title: "智能柜台 — 班长监听台",
    langSwitch: "语言",
    signedInAs: "当前用户",
    logout: "退出登录",
    loginTitle: "班长登录",
    username: "用户名",
    password: "密码",
    login: "登录",
    loggingIn: "正在登录…",
    loginFailed: "用户名或密码错误。",
    loginError: "登录失败，请重试。",
    notSupervisor: "此页面仅供班长使用，请使用坐席控制台。",
    sessionExpired: "登录已过期，请重新登录。",
    connecting: "正在连接服务器…",
    connected: "已连接。",
    reconnecting: "连接中断，正在重连…",
    liveCalls: "当前通话",
    callsCount: "通话数",
    noCalls: "目前没有进行中的通话。",
    callsFailed: "无法加载通话列表，正在重试…",
    colState: "状态",
    colDepartment: "部门",
    colService: "业务",
    colSite: "终端",
    colStaff: "坐席",
    colTime: "时长",
    colActions: "操作",
    "state.queued": "排队中",
    "state.ringing": "振铃中",
    "state.connected": "通话中",
    listen: "静默监听",
    listening: "监听中",
    monitoring: "静默监听",
    modeSilent: "静默模式 — 双方听不到您",
    kioskSide: "市民（终端）",
    staffSide: "坐席",
    callDuration: "通话时长",
    stop: "停止监听",
    unmute: "打开声音",
    monitorStarting: "正在接入通话…",
    monitorStarted: "正在监听通话。",
    monitorStopped: "已停止监听。",
    monitorEnded: "所监听的通话已结束。",
    monitorFailed: "无法监听此通话。",
    mediaConnecting: "正在连接音视频…",
    mediaReconnecting: "音视频连接中断。",
    mediaFailed: "音视频连接失败。",
    soundBlocked: "浏览器阻止了声音，请点击“打开声音”。",
    "error.bad_request": "请求未被接受。",
    "error.unauthorized": "登录已过期，请重新登录。",
    "error.forbidden": "您无权执行此操作。",
    "error.not_found": "此通话已不存在。",
    "error.conflict": "此通话当前无法监听（不在通话中）。",
    "error.rate_limited": "尝试次数过多，请稍后再试。",
    "error.unavailable": "此功能暂不可用。",
    "error.internal": "服务器出现问题，请重试。",
    "error.timeout": "服务器未及时响应，请重试。",
    "error.disconnected": "未连接到服务器，请稍候…",
    "error.generic": "出现问题，请重试。",
  },
  "zh-Hant": {
    title: "智能櫃台 — 班長監聽台",
    langSwitch: "語言",
    signedInAs: "目前使用者",
    logout: "登出",
    loginTitle: "班長登入",
    username: "使用者名稱",
    password: "密碼",
    login: "登入",
    loggingIn: "正在登入…",
    loginFailed: "使用者名稱或密碼錯誤。",
    loginError: "登入失敗，請重試。",
    notSupervisor: "此頁面僅供班長使用，請使用坐席控制台。",
    sessionExpired: "登入已逾時，請重新登入。",
    connecting: "正在連線伺服器…",
    connected: "已連線。",
    reconnecting: "連線中斷，正在重新連線…",
    liveCalls: "目前通話",
    callsCount: "通話數",
    noCalls: "目前沒有進行中的通話。",
    callsFailed: "無法載入通話清單，正在重試…",
    colState: "狀態",
    colDepartment: "部門",
    colService: "業務",
    colSite: "終端",
    colStaff: "坐席",
    colTime: "時長",
    colActions: "操作",
    "state.queued": "排隊中",
    "state.ringing": "響鈴中",
    "state.connected": "通話中",
    listen: "靜默監聽",
    listening: "監聽中",
    monitoring: "靜默監聽",
    modeSilent: "靜默模式 — 雙方聽不到您",
    kioskSide: "市民（終端）",
    staffSide: "坐席",
    callDuration: "通話時長",
    stop: "停止監聽",
    unmute: "開啟聲音",
    monitorStarting: "正在接入通話…",
    monitorStarted: "正在監聽通話。",
    monitorStopped: "已停止監聽。",
    monitorEnded: "所監聽的通話已結束。",
    monitorFailed: "無法監聽此通話。",
    mediaConnecting: "正在連接影音…",
    mediaReconnecting: "影音連線中斷。",
    mediaFailed: "影音連線失敗。",
    soundBlocked: "瀏覽器封鎖了聲音，請點選「開啟聲音」。",
    "error.bad_request": "請求未被接受。",
    "error.unauthorized": "登入已逾時，請重新登入。",
    "error.forbidden": "您無權執行此操作。",
    "error.not_found": "此通話已不存在。",
    "error.conflict": "此通話目前無法監聽（不在通話中）。",
    "error.rate_limited": "嘗試次數過多，請稍後再試。",
    "error.unavailable": "此功能暫不可用。",
    "error.internal": "伺服器發生問題，請重試。",
    "error.timeout": "伺服器未及時回應，請重試。",
    "error.disconnected": "未連線到伺服器，請稍候…",
    "error.generic": "發生問題，請重試。",
  },
};

let lang = DEFAULT_LANGUAGE;

/** The string `key` in the current language (English, then the key, as fallbacks). */
function s(key) {
  return STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
}

function errorString(err) {
  const key = `error.${err && err.code}`;
  if (STRINGS.en[key]) return s(key);
  // A server message for a code we have no string for is more useful than nothing.
  return err && err.message ? `${s("error.generic")} (${err.message})` : s("error.generic");
}

// ---------------------------------------------------------------- state

const dom = {};
const state = {
  auth: null, // {token, role, display_name, expires_at}
  catalog: null,
  calls: new Map(), // session_id → call record from GET /api/v1/calls
  rows: new Map(), // session_id → {row, cells..., button}
  monitor: null, // {sessionId, pc, answeredAt, startedAt}
  status: { key: null, kind: "info", text: null },
  mediaKey: null,
  pollTimer: null,
  pollFailed: false,
};
let client = null;
let ticker = null;

window.smartcounter = {
  get pc() {
    return state.monitor ? state.monitor.pc : null;
  },
  get socket() {
    return client ? client.socket : null;
  },
  get sessionId() {
    return state.monitor ? state.monitor.sessionId : null;
  },
  /** performance.now() when the answer to the monitor's rtc.offer arrived (or null). */
  get answeredAt() {
    return state.monitor ? state.monitor.answeredAt : null;
  },
};

// ---------------------------------------------------------------- text & status

/** Status line: a string key, or (key null) a ready-made text. */
function setStatus(key, kind = "info", text = null) {
  state.status = { key, kind, text };
  dom.status.textContent = key ? s(key) : text || "";
  dom.status.dataset.kind = kind;
}

function setMediaState(key) {
  state.mediaKey = key;
  dom.monitorMediaState.textContent = key ? s(key) : "";
}

function translatePage() {
  for (const node of document.querySelectorAll("[data-s]")) node.textContent = s(node.dataset.s);
  for (const node of document.querySelectorAll("[data-s-attr]")) {
    for (const pair of node.dataset.sAttr.split(";")) {
      const [attr, key] = pair.split(":").map((x) => x.trim());
      if (attr && key) node.setAttribute(attr, s(key));
    }
  }
  document.title = s("title");
}

function switchLanguage(next) {
  lang = LANGUAGES.includes(next) ? next : DEFAULT_LANGUAGE;
  document.documentElement.lang = lang;
  localStorage.setItem(LANG_KEY, lang);
  for (const button of document.querySelectorAll(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  translatePage();
  if (!dom.loginError.hidden && dom.loginError.dataset.key) {
    dom.loginError.textContent = s(dom.loginError.dataset.key);
  }
  setStatus(state.status.key, state.status.kind, state.status.text);
  setMediaState(state.mediaKey);
  for (const [sid, entry] of state.rows) updateRow(entry, state.calls.get(sid));
  renderMonitorInfo();
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

async function loadCatalog() {
  try {
    const catalog = await getCatalog();
    state.catalog = { departments: (catalog && catalog.departments) || [] };
    for (const [sid, entry] of state.rows) updateRow(entry, state.calls.get(sid));
    renderMonitorInfo();
  } catch (err) {
    console.warn("catalog failed", err);
    setTimeout(() => state.auth && !state.catalog && loadCatalog(), 5000);
  }
}

// ---------------------------------------------------------------- live calls

function secondsSince(epochSeconds) {
  const at = Number(epochSeconds);
  return at ? Math.max(0, Date.now() / 1000 - at) : 0;
}

/** Connected: time since answered; waiting or ringing: time since the request. */
function callSeconds(call) {
  return call.state === "connected" && call.answered_at
    ? secondsSince(call.answered_at)
    : secondsSince(call.created_at);
}

function makeRow(sid) {
  const entry = {
    stateBadge: el("span", { class: "state-badge" }),
    department: el("td"),
    service: el("td"),
    site: el("td"),
    staff: el("td"),
    time: el("td", { class: "call-time" }),
    button: el("button", {
      type: "button",
      class: "button button-small",
      dataset: { testid: `monitor-${sid}` },
      onclick: () => startMonitor(sid),
    }),
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
    el("td", { class: "call-actions" }, entry.button),
  );
  return entry;
}

function updateRow(entry, call) {
  if (!call) return;
  const known = CALL_STATES.includes(call.state);
  entry.row.dataset.state = call.state;
  entry.stateBadge.dataset.state = call.state;
  entry.stateBadge.textContent = known ? s(`state.${call.state}`) : call.state;
  entry.department.textContent = departmentName(call.department_id);
  entry.service.textContent = serviceName(call.service_id);
  entry.site.textContent = (call.kiosk && (call.kiosk.site || call.kiosk.id)) || "";
  entry.staff.textContent = call.staff_id || "—";
  entry.time.textContent = formatDuration(callSeconds(call));
  const monitored = state.monitor && state.monitor.sessionId === call.session_id;
  entry.row.classList.toggle("monitored", Boolean(monitored));
  entry.button.hidden = call.state !== "connected";
  entry.button.disabled = Boolean(monitored);
  entry.button.textContent = monitored ? s("listening") : s("listen");
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
  renderMonitorInfo();
}

async function pollCalls() {
  if (!state.auth) return;
  const auth = state.auth;
  try {
    const body = await apiFetch("/api/v1/calls", { token: auth.token, timeoutMs: 5000 });
    if (state.auth !== auth) return;
    renderCalls((body && Array.isArray(body.calls) && body.calls) || []);
    if (state.pollFailed) {
      state.pollFailed = false;
      if (state.status.key === "callsFailed") setStatus(null);
    }
  } catch (err) {
    if (state.auth !== auth) return;
    if (err.status === 401) {
      logout("sessionExpired");
      return;
    }
    console.warn("GET /api/v1/calls failed", err);
    state.pollFailed = true;
    setStatus("callsFailed", "warn");
  } finally {
    if (state.auth === auth) {
      clearTimeout(state.pollTimer);
      state.pollTimer = setTimeout(pollCalls, POLL_MS);
    }
  }
}

// ---------------------------------------------------------------- monitoring

function renderMonitorInfo() {
  const monitor = state.monitor;
  dom.monitorPanel.hidden = !monitor;
  if (!monitor) return;
  const call = state.calls.get(monitor.sessionId);
  if (!call) return;
  dom.monitorInfo.textContent = [
    departmentName(call.department_id),
    serviceName(call.service_id),
    (call.kiosk && (call.kiosk.site || call.kiosk.id)) || "",
  ]
    .filter(Boolean)
    .join(" · ");
  dom.monitorStaffName.textContent = call.staff_id ? `(${call.staff_id})` : "";
  dom.monitorDuration.textContent = formatDuration(callSeconds(call));
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

function onPcState(monitor) {
  if (state.monitor !== monitor) return;
  const pcState = monitor.pc.connectionState;
  dom.monitorPanel.dataset.connection = pcState;
  if (pcState === "connected") {
    if (state.mediaKey !== "soundBlocked") setMediaState(null);
  } else if (pcState === "disconnected") {
    setMediaState("mediaReconnecting");
  } else if (pcState === "failed") {
    setMediaState("mediaFailed");
  }
}

async function startMonitor(sessionId) {
  if (!client || !state.auth) return;
  if (state.monitor && state.monitor.sessionId === sessionId) return;
  if (state.monitor) await stopMonitor("monitorStopped");
  const monitor = { sessionId, pc: null, answeredAt: null, startedAt: Date.now() };
  state.monitor = monitor;
  for (const [sid, entry] of state.rows) updateRow(entry, state.calls.get(sid));
  renderMonitorInfo();
  setStatus("monitorStarting");
  setMediaState("mediaConnecting");
  dom.monitorUnmute.hidden = true;
  try {
    const [ice] = await Promise.all([
      loadIceConfig(state.auth.token),
      client.request("monitor.start", { session_id: sessionId, mode: "silent" }),
    ]);
    if (state.monitor !== monitor) return;
    const pc = new RTCPeerConnection(ice);
    monitor.pc = pc;
    // Order matters: kiosk video, kiosk audio, staff video, staff audio.
    const [kioskVideo, kioskAudio, staffVideo, staffAudio] = ["video", "audio", "video", "audio"].map(
      (kind) => pc.addTransceiver(kind, { direction: "recvonly" }),
    );
    pc.addEventListener("connectionstatechange", () => onPcState(monitor));
    dom.kioskVideo.srcObject = new MediaStream([kioskVideo.receiver.track, kioskAudio.receiver.track]);
    dom.staffVideo.srcObject = new MediaStream([staffVideo.receiver.track, staffAudio.receiver.track]);
    playWithSound(dom.kioskVideo);
    playWithSound(dom.staffVideo);

    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    if (state.monitor !== monitor || pc.signalingState === "closed") return;
    const answer = await client.request(
      "rtc.offer",
      { session_id: sessionId, sdp: pc.localDescription.sdp, type: "offer", purpose: "monitor" },
      OFFER_TIMEOUT_MS,
    );
    if (state.monitor !== monitor || pc.signalingState === "closed") return;
    monitor.answeredAt = performance.now();
    await pc.setRemoteDescription({ type: answer.type || "answer", sdp: answer.sdp });
    setStatus("monitorStarted");
  } catch (err) {
    if (state.monitor !== monitor) return;
    console.warn("monitoring failed", err);
    const started = monitor.pc !== null;
    closeMonitor();
    if (started && client) {
      client.request("monitor.stop", { session_id: sessionId }, 5000).catch(() => {});
    }
    setStatus(null, "error", `${s("monitorFailed")} ${errorString(err)}`);
  }
}

/** Forget the monitor locally: close its peer connection, clear the videos. */
function closeMonitor() {
  const monitor = state.monitor;
  state.monitor = null;
  if (monitor && monitor.pc) {
    try {
      monitor.pc.close();
    } catch {
      // already closed
    }
  }
  for (const video of [dom.kioskVideo, dom.staffVideo]) {
    video.pause();
    video.srcObject = null;
  }
  dom.monitorUnmute.hidden = true;
  setMediaState(null);
  delete dom.monitorPanel.dataset.connection;
  for (const [sid, entry] of state.rows) updateRow(entry, state.calls.get(sid));
  renderMonitorInfo();
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
  socket.on("connect", () => {
    if (state.status.key === "connecting" || state.status.key === "reconnecting") setStatus("connected");
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
  connectSocket();
  pollCalls();
  clearInterval(ticker);
  ticker = setInterval(tick, 1000);
}

/** Once a second: call times. */
function tick() {
  for (const [sid, entry] of state.rows) {
    const call = state.calls.get(sid);
    if (call) entry.time.textContent = formatDuration(callSeconds(call));
  }
  renderMonitorInfo();
}

function showLoginError(key) {
  dom.loginError.hidden = !key;
  dom.loginError.textContent = key ? s(key) : "";
  if (key) dom.loginError.dataset.key = key;
  else delete dom.loginError.dataset.key;
}

function showLogin(errorKeyName = null) {
  showOnly({ login: dom.loginView, work: dom.workView }, "login");
  dom.logout.hidden = true;
  dom.signedIn.hidden = true;
  dom.loginSubmit.disabled = false;
  showLoginError(errorKeyName);
  dom.username.focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const username = dom.username.value.trim();
  const password = dom.password.value;
  if (!username || !password) {
    showLoginError("loginFailed");
    return;
  }
  dom.loginSubmit.disabled = true;
  showLoginError(null);
  setStatus("loggingIn");
  try {
    const answer = await login(username, password);
    if (answer.role !== "supervisor") {
      showLogin("notSupervisor");
      setStatus(null);
      return;
    }
    state.auth = {
      token: answer.token,
      role: answer.role,
      expires_at: answer.expires_at,
      display_name: answer.display_name || username,
    };
    saveAuth(AUTH_KEY, state.auth);
    dom.password.value = "";
    startWork();
  } catch (err) {
    const key = err.status === 401 ? "loginFailed" : err.code === "rate_limited" ? "error.rate_limited" : "loginError";
    showLogin(key);
    setStatus(null);
  }
}

async function logout(messageKey = null) {
  if (state.monitor) await stopMonitor(null);
  const current = client;
  client = null;
  if (current) {
    current.socket.removeAllListeners();
    current.socket.disconnect();
  }
  clearInterval(ticker);
  clearTimeout(state.pollTimer);
  state.auth = null;
  state.calls.clear();
  for (const entry of state.rows.values()) entry.row.remove();
  state.rows.clear();
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
    monitorInfo: byId("monitor-info"),
    monitorDuration: byId("monitor-duration"),
    monitorStaffName: byId("monitor-staff-name"),
    monitorMediaState: byId("monitor-media-state"),
    monitorUnmute: byId("monitor-unmute"),
    monitorStop: byId("monitor-stop"),
    kioskVideo: byId("monitor-kiosk-video"),
    staffVideo: byId("monitor-staff-video"),
  });

  const savedLang = localStorage.getItem(LANG_KEY);
  switchLanguage(LANGUAGES.includes(savedLang) ? savedLang : DEFAULT_LANGUAGE);
  for (const button of document.querySelectorAll(".lang-button")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  dom.loginForm.addEventListener("submit", submitLogin);
  dom.logout.addEventListener("click", () => logout());
  dom.monitorStop.addEventListener("click", () => stopMonitor("monitorStopped"));
  dom.monitorUnmute.addEventListener("click", unmute);

  state.auth = restoreAuth(AUTH_KEY, "supervisor");
  if (state.auth) startWork();
  else showLogin();
}

init();
