// String tables and translation helpers of every page: one engine (t(), data-i18n).
// Every visible string goes through t(). Elements in the HTML carry
// data-i18n="key" (text content) and/or data-i18n-attr="attr:key;attr:key".
// Kiosk languages: zh-Hant (default) and en. Console languages: zh-Hans (default) and en.
// The casework's strings (and the Citizen's Window's) are in casework_strings.js.
import { all } from "./dom.js";
import * as casework from "./casework_strings.js";

const en = {
  "app.name": "Smart Counter",
  "lang.zh-Hant": "繁體中文",
  "lang.zh-Hans": "简体中文",
  "lang.en": "English",
  "lang.switch": "Language",
  "video.self": "Your camera",
  "video.remote": "Video of the other party",
  "error.timeout": "The server did not answer in time. Please try again.",
  "error.disconnected": "Not connected to the server. Please wait…",
  "error.rate_limited": "Too many attempts. Please wait a moment and try again.",
  "error.unavailable": "The service is temporarily unavailable. Please try again later.",
  "error.conflict": "This action is no longer possible.",
  "error.generic": "Something went wrong. Please try again.",
  "media.failed": "The video connection failed. Reconnecting…",
  "media.reconnecting": "Video connection interrupted. Reconnecting…",
  "media.gaveUp": "The video connection could not be restored.",

  // kiosk
  "kiosk.title": "Smart Counter",
  "kiosk.subtitle": "Video service with a government officer",
  "kiosk.chooseDepartment": "Please choose a department",
  "kiosk.chooseService": "Please choose a service",
  "kiosk.back": "Back",
  "kiosk.loadingCatalog": "Loading services…",
  "kiosk.catalogFailed": "Services could not be loaded. Retrying…",
  "kiosk.noServices": "No services are available in this department.",
  "kiosk.connecting": "Connecting to the server…",
  "kiosk.ready": "Ready. Touch a department to start.",
  "kiosk.reconnecting": "Connection lost. Reconnecting…",
  "kiosk.noToken": "This kiosk is not set up: no device token. Please contact staff.",
  "kiosk.unauthorized": "This kiosk is not registered / token invalid. Please contact staff.",
  "kiosk.connectFailed": "Cannot reach the server. Retrying…",
  "kiosk.cameraFailed": "The camera or microphone is not available. Please contact staff.",
  "kiosk.requesting": "Requesting an officer…",
  "kiosk.waitingTitle": "Please wait, an officer will be with you shortly",
  "kiosk.position": "Your place in the queue",
  "kiosk.eta": "Estimated waiting time",
  "kiosk.minutes": "min",
  "kiosk.cancel": "Cancel",
  "kiosk.cancelled": "Your request has been cancelled.",
  "kiosk.staffLost": "The connection to the officer was lost. You are first in line again — please wait.",
  "kiosk.transferred": "You are being transferred to another department. Please wait.",
  "kiosk.inCall": "You are connected to",
  "kiosk.officer": "Officer",
  "kiosk.callConnecting": "Connecting video…",
  "kiosk.callConnected": "Connected. Please speak to the officer.",
  "kiosk.hangup": "End call",
  "kiosk.callEnded": "Call ended",
  "kiosk.thanks": "Thank you for using Smart Counter.",
  "kiosk.endedReason.hangup": "The call has ended.",
  "kiosk.endedReason.abandoned": "The request was closed.",
  "kiosk.endedReason.transferred": "The call was transferred.",
  "kiosk.endedReason.error": "The call ended because of a technical problem.",
  "kiosk.resuming": "Reconnected. Restoring your call…",
  "kiosk.sessionLost": "Your previous request could not be restored. Please start again.",
  "kiosk.idCard": "ID card",
  "kiosk.scanId": "Scan ID card",
  "kiosk.scanHint": "When the officer asks, put your ID card on the scanner and press:",
  "kiosk.scan.idle": "",
  "kiosk.scan.scanning": "Scanning your ID card…",
  "kiosk.scan.uploading": "Sending your ID card… {percent}%",
  "kiosk.scan.checking": "Checking the scan…",
  "kiosk.scan.done": "ID card received. The officer can see it now.",
  "kiosk.scan.cancelled": "No ID card was scanned.",
  "kiosk.scan.error.tooLarge": "The scan is too large. Please scan the card again.",
  "kiosk.scan.error.unsupported": "The scan is not a JPEG or PNG picture. Please scan again.",
  "kiosk.scan.error.unreadable": "The scan could not be read. Please scan the card again.",
  "kiosk.scan.error.ended": "The call has ended; the ID card was not sent.",
  "kiosk.scan.error.network": "Connection problem: the ID card was not sent. Please try again.",
  "kiosk.scan.error.generic": "The ID card could not be sent. Please try again.",
  "kiosk.challenge.title": "Identity check",
  "kiosk.challenge.turn_left": "Please turn your head to the left",
  "kiosk.challenge.turn_right": "Please turn your head to the right",
  "kiosk.challenge.hint": "Turn your head slowly, then look back at the screen.",
  "kiosk.challenge.seconds": "{seconds} s",

  // console
  "console.title": "Smart Counter — Staff console",
  "console.loginTitle": "Staff sign-in",
  "console.username": "Username",
  "console.password": "Password",
  "console.login": "Sign in",
  "console.loggingIn": "Signing in…",
  "console.loginFailed": "Wrong username or password.",
  "console.loginError": "Sign-in failed. Please try again.",
  "console.notStaff": "This account is not a staff account.",
  "console.sessionExpired": "Your sign-in has expired. Please sign in again.",
  "console.logout": "Sign out",
  "console.signedInAs": "Signed in as",
  "console.presence": "My status",
  "console.setAvailable": "Available",
  "console.setAway": "Away",
  "console.state.available": "Available — waiting for calls",
  "console.state.ringing": "Incoming call",
  "console.state.busy": "In a call",
  "console.state.wrapup": "Wrap-up",
  "console.state.away": "Away",
  "console.state.unknown": "Unknown",
  "console.connecting": "Connecting…",
  "console.connected": "Connected.",
  "console.reconnecting": "Connection lost. Reconnecting…",
  "console.idleAvailable": "Waiting for the next call.",
  "console.idleAway": "You are away. Set your status to Available to receive calls.",
  "console.incoming": "Incoming call",
  "console.department": "Department",
  "console.service": "Service",
  "console.site": "Kiosk location",
  "console.waited": "Waiting for",
  "console.expiresIn": "Answer within",
  "console.seconds": "s",
  "console.accept": "Accept",
  "console.decline": "Decline",
  "console.offerRevoked": "The incoming call was withdrawn.",
  "console.offerTaken": "The call is no longer available.",
  "console.inCall": "In call",
  "console.callDuration": "Duration",
  "console.hangup": "Hang up",
  "console.callEnded": "Call ended",
  "console.endedReason.hangup": "The call was hung up.",
  "console.endedReason.abandoned": "The citizen left.",
  "console.endedReason.transferred": "The call was transferred.",
  "console.endedReason.error": "The call ended because of a technical problem.",
  "console.wrapup": "Wrap-up",
  "console.wrapupHint": "Finish your notes, then press “Wrap-up done” to take the next call.",
  "console.wrapupDone": "Wrap-up done",
  "console.cameraFailed": "Your camera or microphone is not available.",
  "console.verify.title": "Identity verification",
  "console.verify.documents": "ID cards received",
  "console.verify.noDocuments": "No ID card yet. Ask the citizen to scan it at the kiosk.",
  "console.verify.document": "ID card {n}",
  "console.verify.documentDetail": "{pages} page(s), received {time}",
  "console.verify.start": "Verify identity",
  "console.verify.status.idle": "Not started",
  "console.verify.status.starting": "Starting…",
  "console.verify.status.pending": "Checking — the citizen should look at the camera",
  "console.verify.status.passed": "Verified: a live person who matches the ID card",
  "console.verify.status.failed": "Verification failed",
  "console.verify.faceInView": "Face in view",
  "console.verify.noFaceInView": "No face in view",
  "console.verify.reason.no_face": "No face was seen at the kiosk.",
  "console.verify.reason.no_challenge": "No head-turn check was done in time.",
  "console.verify.reason.several_faces": "Several faces were seen at the kiosk.",
  "console.verify.reason.face_not_steady": "The face was not seen clearly or steadily enough.",
  "console.verify.reason.identity_changed": "The person in front of the camera changed.",
  "console.verify.reason.challenge_failed": "The head-turn check was not passed.",
  "console.verify.reason.passive_liveness_failed": "The live-person check was not passed.",
  "console.verify.reason.no_match": "The face does not match the ID card photo.",
  "console.verify.reason.id_no_face": "No face was found on the ID card.",
  "console.verify.reason.id_several_faces": "The ID card shows several faces.",
  "console.verify.reason.unreadable_image": "The ID card image cannot be read.",
  "console.verify.reason.unknown": "Reason: {reason}",
  "console.verify.match": "Face match",
  "console.verify.liveness": "Liveness",
  "console.verify.passive": "Passive check",
  "console.verify.challenge": "Head turn",
  "console.verify.consistency": "Consistency",
  "console.verify.score": "score {score} (threshold {threshold})",
  "console.verify.result.true": "passed",
  "console.verify.result.false": "failed",
  "console.verify.result.undecided": "undecided",
  "console.verify.challenge.none": "not asked yet",
  "console.verify.challenge.turn_left": "turn left",
  "console.verify.challenge.turn_right": "turn right",
  "console.verify.challengeState.issued": "asked, waiting",
  "console.verify.challengeState.passed": "passed",
  "console.verify.challengeState.failed": "failed",
  "console.verify.challengeReason.timeout": "timed out",
  "console.verify.consistencyDetail": "{usable} of {frames} frames usable, several faces in {several}, lowest same-person score {identity}",
  "console.verify.idFace": "ID card photo",
  "console.verify.liveFace": "Live at the kiosk",
  "console.verify.noImage": "no image yet",
  "console.verify.askLeft": "Ask: turn left",
  "console.verify.askRight": "Ask: turn right",
  "console.verify.presence.absent": "Warning: the verified person has left the kiosk.",
  "console.verify.presence.changed": "Warning: a different person is now at the kiosk.",
  "console.verify.presence.present": "The verified person is at the kiosk again.",
  "console.verify.error.unavailable": "Identity verification is not available on this server.",
  "console.verify.error.start.conflict": "The call's video is not connected yet. Try again in a moment.",
  "console.verify.error.challenge.conflict": "No verification is in progress.",
  "console.verify.error.not_found": "The ID card was not found in this call.",
  "console.verify.error.bad_request": "This ID card cannot be used for verification.",
};

const zhHant = {
  "app.name": "智能櫃台",
  "lang.zh-Hant": "繁體中文",
  "lang.zh-Hans": "简体中文",
  "lang.en": "English",
  "lang.switch": "語言",
  "video.self": "你的鏡頭畫面",
  "video.remote": "對方的視像畫面",
  "error.timeout": "伺服器沒有及時回應，請再試一次。",
  "error.disconnected": "未連接到伺服器，請稍候……",
  "error.rate_limited": "嘗試次數太多，請稍候再試。",
  "error.unavailable": "服務暫時未能提供，請稍後再試。",
  "error.conflict": "此操作已無法進行。",
  "error.generic": "發生錯誤，請再試一次。",
  "media.failed": "視像連接失敗，正在重新連接……",
  "media.reconnecting": "視像連接中斷，正在重新連接……",
  "media.gaveUp": "未能恢復視像連接。",

  "kiosk.title": "智能櫃台",
  "kiosk.subtitle": "與政府人員視像辦理業務",
  "kiosk.chooseDepartment": "請選擇部門",
  "kiosk.chooseService": "請選擇服務",
  "kiosk.back": "返回",
  "kiosk.loadingCatalog": "正在載入服務……",
  "kiosk.catalogFailed": "未能載入服務，正在重試……",
  "kiosk.noServices": "此部門暫無可辦理的服務。",
  "kiosk.connecting": "正在連接伺服器……",
  "kiosk.ready": "準備就緒，請按部門開始。",
  "kiosk.reconnecting": "連接中斷，正在重新連接……",
  "kiosk.noToken": "此自助機未設定（沒有裝置憑證），請聯絡職員。",
  "kiosk.unauthorized": "此自助機未登記或憑證無效，請聯絡職員。",
  "kiosk.connectFailed": "無法連接伺服器，正在重試……",
  "kiosk.cameraFailed": "鏡頭或咪高峰未能使用，請聯絡職員。",
  "kiosk.requesting": "正在為你聯絡職員……",
  "kiosk.waitingTitle": "請稍候，職員將盡快為你服務",
  "kiosk.position": "你的輪候位置",
  "kiosk.eta": "預計等候時間",
  "kiosk.minutes": "分鐘",
  "kiosk.cancel": "取消",
  "kiosk.cancelled": "你的申請已取消。",
  "kiosk.staffLost": "與職員的連接中斷，你已重新排在首位，請稍候。",
  "kiosk.transferred": "正在為你轉駁到其他部門，請稍候。",
  "kiosk.inCall": "正在與你通話的是",
  "kiosk.officer": "職員",
  "kiosk.callConnecting": "正在連接視像……",
  "kiosk.callConnected": "已接通，請與職員對話。",
  "kiosk.hangup": "結束通話",
  "kiosk.callEnded": "通話已結束",
  "kiosk.thanks": "多謝使用智能櫃台。",
  "kiosk.endedReason.hangup": "通話已結束。",
  "kiosk.endedReason.abandoned": "申請已關閉。",
  "kiosk.endedReason.transferred": "通話已轉駁。",
  "kiosk.endedReason.error": "因技術問題，通話已結束。",
  "kiosk.resuming": "已重新連接，正在恢復你的通話……",
  "kiosk.sessionLost": "未能恢復你之前的申請，請重新開始。",
  "kiosk.idCard": "身份證",
  "kiosk.scanId": "掃描身份證",
  "kiosk.scanHint": "職員要求時，請把身份證放在掃描器上，然後按：",
  "kiosk.scan.idle": "",
  "kiosk.scan.scanning": "正在掃描你的身份證……",
  "kiosk.scan.uploading": "正在傳送你的身份證……{percent}%",
  "kiosk.scan.checking": "正在檢查掃描影像……",
  "kiosk.scan.done": "已收到身份證，職員現在可以查看。",
  "kiosk.scan.cancelled": "未有掃描身份證。",
  "kiosk.scan.error.tooLarge": "掃描影像太大，請重新掃描。",
  "kiosk.scan.error.unsupported": "掃描影像格式不適用（須為 JPEG 或 PNG），請重新掃描。",
  "kiosk.scan.error.unreadable": "未能讀取掃描影像，請重新掃描。",
  "kiosk.scan.error.ended": "通話已結束，身份證未有傳送。",
  "kiosk.scan.error.network": "連接出現問題，未能傳送身份證，請再試一次。",
  "kiosk.scan.error.generic": "未能傳送身份證，請再試一次。",
  "kiosk.challenge.title": "身份核實",
  "kiosk.challenge.turn_left": "請把頭轉向左邊",
  "kiosk.challenge.turn_right": "請把頭轉向右邊",
  "kiosk.challenge.hint": "請慢慢轉頭，然後望回螢幕。",
  "kiosk.challenge.seconds": "{seconds} 秒",
};

const zhHans = {
  "app.name": "智能柜台",
  "lang.zh-Hant": "繁體中文",
  "lang.zh-Hans": "简体中文",
  "lang.en": "English",
  "lang.switch": "语言",
  "video.self": "我的摄像头画面",
  "video.remote": "对方的视频画面",
  "error.timeout": "服务器未及时响应，请重试。",
  "error.disconnected": "未连接到服务器，请稍候……",
  "error.rate_limited": "操作过于频繁，请稍后再试。",
  "error.unavailable": "服务暂时不可用，请稍后再试。",
  "error.conflict": "该操作已无法进行。",
  "error.generic": "出现错误，请重试。",
  "media.failed": "视频连接失败，正在重新连接……",
  "media.reconnecting": "视频连接中断，正在重新连接……",
  "media.gaveUp": "无法恢复视频连接。",

  "console.title": "智能柜台 — 坐席控制台",
  "console.loginTitle": "工作人员登录",
  "console.username": "用户名",
  "console.password": "密码",
  "console.login": "登录",
  "console.loggingIn": "正在登录……",
  "console.loginFailed": "用户名或密码错误。",
  "console.loginError": "登录失败，请重试。",
  "console.notStaff": "此账号不是工作人员账号。",
  "console.sessionExpired": "登录已过期，请重新登录。",
  "console.logout": "退出登录",
  "console.signedInAs": "当前用户",
  "console.presence": "我的状态",
  "console.setAvailable": "空闲",
  "console.setAway": "离开",
  "console.state.available": "空闲 — 等待来电",
  "console.state.ringing": "来电中",
  "console.state.busy": "通话中",
  "console.state.wrapup": "话后处理",
  "console.state.away": "离开",
  "console.state.unknown": "未知",
  "console.connecting": "正在连接……",
  "console.connected": "已连接。",
  "console.reconnecting": "连接中断，正在重新连接……",
  "console.idleAvailable": "等待下一个来电。",
  "console.idleAway": "您当前为离开状态。设为“空闲”即可接听来电。",
  "console.incoming": "来电",
  "console.department": "部门",
  "console.service": "服务",
  "console.site": "自助机位置",
  "console.waited": "已等待",
  "console.expiresIn": "剩余接听时间",
  "console.seconds": "秒",
  "console.accept": "接听",
  "console.decline": "拒绝",
  "console.offerRevoked": "来电已撤回。",
  "console.offerTaken": "该来电已不可接听。",
  "console.inCall": "通话中",
  "console.callDuration": "通话时长",
  "console.hangup": "挂断",
  "console.callEnded": "通话已结束",
  "console.endedReason.hangup": "通话已挂断。",
  "console.endedReason.abandoned": "市民已离开。",
  "console.endedReason.transferred": "通话已转接。",
  "console.endedReason.error": "因技术问题，通话已结束。",
  "console.wrapup": "话后处理",
  "console.wrapupHint": "完成记录后，请按“话后处理完成”以接听下一个来电。",
  "console.wrapupDone": "话后处理完成",
  "console.cameraFailed": "您的摄像头或麦克风不可用。",
  "console.verify.title": "身份核验",
  "console.verify.documents": "已收到的身份证",
  "console.verify.noDocuments": "尚未收到身份证。请市民在自助机上扫描。",
  "console.verify.document": "身份证 {n}",
  "console.verify.documentDetail": "{pages} 页，收到时间 {time}",
  "console.verify.start": "核验身份",
  "console.verify.status.idle": "未开始",
  "console.verify.status.starting": "正在启动……",
  "console.verify.status.pending": "核验中 — 请市民看着摄像头",
  "console.verify.status.passed": "核验通过：真人，且与身份证相符",
  "console.verify.status.failed": "核验未通过",
  "console.verify.faceInView": "画面中有人脸",
  "console.verify.noFaceInView": "画面中没有人脸",
  "console.verify.reason.no_face": "自助机画面中未检测到人脸。",
  "console.verify.reason.no_challenge": "未能及时完成转头检测。",
  "console.verify.reason.several_faces": "自助机画面中出现多张人脸。",
  "console.verify.reason.face_not_steady": "人脸不够清晰或不够稳定。",
  "console.verify.reason.identity_changed": "镜头前的人发生了变化。",
  "console.verify.reason.challenge_failed": "未通过转头检测。",
  "console.verify.reason.passive_liveness_failed": "未通过活体检测。",
  "console.verify.reason.no_match": "人脸与身份证照片不符。",
  "console.verify.reason.id_no_face": "身份证上未找到人脸。",
  "console.verify.reason.id_several_faces": "身份证上有多张人脸。",
  "console.verify.reason.unreadable_image": "无法读取身份证图像。",
  "console.verify.reason.unknown": "原因：{reason}",
  "console.verify.match": "人脸比对",
  "console.verify.liveness": "活体检测",
  "console.verify.passive": "静默活体",
  "console.verify.challenge": "转头检测",
  "console.verify.consistency": "一致性",
  "console.verify.score": "得分 {score}（阈值 {threshold}）",
  "console.verify.result.true": "通过",
  "console.verify.result.false": "未通过",
  "console.verify.result.undecided": "待定",
  "console.verify.challenge.none": "尚未发出",
  "console.verify.challenge.turn_left": "向左转头",
  "console.verify.challenge.turn_right": "向右转头",
  "console.verify.challengeState.issued": "已发出，等待中",
  "console.verify.challengeState.passed": "通过",
  "console.verify.challengeState.failed": "未通过",
  "console.verify.challengeReason.timeout": "超时",
  "console.verify.consistencyDetail": "可用帧 {usable}/{frames}，多人脸帧 {several}，同一人最低得分 {identity}",
  "console.verify.idFace": "身份证照片",
  "console.verify.liveFace": "自助机实时画面",
  "console.verify.noImage": "暂无图像",
  "console.verify.askLeft": "要求：向左转头",
  "console.verify.askRight": "要求：向右转头",
  "console.verify.presence.absent": "警告：已核验的人已离开自助机。",
  "console.verify.presence.changed": "警告：自助机前换了另一个人。",
  "console.verify.presence.present": "已核验的人已回到自助机前。",
  "console.verify.error.unavailable": "本服务器未提供身份核验。",
  "console.verify.error.start.conflict": "通话视频尚未接通，请稍后再试。",
  "console.verify.error.challenge.conflict": "当前没有正在进行的核验。",
  "console.verify.error.not_found": "本通话中找不到该身份证。",
  "console.verify.error.bad_request": "该身份证无法用于核验。",
};

const TABLES = { en, "zh-Hant": zhHant, "zh-Hans": zhHans };

/**
 * Add a part's string tables ({en, "zh-Hant", "zh-Hans"}), every key under `prefix`
 * (the supervisor page's under "supervisor."), to the one set of tables t() reads.
 */
export function addStrings(tables, prefix = "") {
  for (const [lang, table] of Object.entries(tables)) {
    const target = TABLES[lang];
    if (!target) throw new Error(`unsupported language ${lang}`);
    for (const [key, text] of Object.entries(table)) target[prefix + key] = text;
  }
}

addStrings({ en: casework.en, "zh-Hant": casework.zhHant, "zh-Hans": casework.zhHans });

/** Whether `key` has a string (in English, the reference table). */
export function hasString(key) {
  return Object.hasOwn(en, key);
}

let current = "en";

export function setLanguage(lang) {
  if (!TABLES[lang]) throw new Error(`unsupported language ${lang}`);
  current = lang;
  document.documentElement.lang = lang;
}

export function getLanguage() {
  return current;
}

/** Translate key in the current language (falls back to English, then the key). */
export function t(key, vars) {
  return tIn(current, key, vars);
}

/** Translate key in language lang (falls back to English, then the key). */
export function tIn(lang, key, vars) {
  let text = (TABLES[lang] || en)[key] ?? en[key] ?? key;
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }
  return text;
}

/** Fill every [data-i18n] / [data-i18n-attr] element below root. */
export function applyTranslations(root = document) {
  for (const el of all("[data-i18n]", root)) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of all("[data-i18n-attr]", root)) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/**
 * Pick a catalog name ({"en","zh-Hant","zh-Hans"}) in the current language,
 * falling back to the other Chinese script, then English, then anything.
 */
export function localName(names, lang = current) {
  if (!names) return "";
  if (typeof names === "string") return names;
  const order = [lang, lang === "zh-Hans" ? "zh-Hant" : "zh-Hans", "en"];
  for (const code of order) {
    if (names[code]) return names[code];
  }
  const first = Object.values(names).find(Boolean);
  return first ?? "";
}

/** The string key describing an error (from request() or the HTTP api) to the user. */
export function errorKey(err) {
  const code = err && err.code;
  const key = `error.${code}`;
  return code && en[key] ? key : "error.generic";
}

export function errorMessage(err) {
  return t(errorKey(err));
}
