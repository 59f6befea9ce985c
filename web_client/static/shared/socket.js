// Socket.IO connection and acknowledged requests (protocol v1: every client→server
// event carries an ack callback answered with {ok:true,...} or
// {ok:false, error:{code, message}}).
import { io } from "../vendor/socket.io.esm.min.js";

export const DEFAULT_TIMEOUT_MS = 10000;

/** Error for a failed request; .code is a protocol error code, or "timeout" / "disconnected". */
export class RequestError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "RequestError";
    this.code = code;
  }
}

/**
 * Send `event` with `payload` on `socket` and resolve with the ack when ack.ok is true.
 * Rejects with a RequestError carrying .code otherwise.
 */
export function requestOn(socket, event, payload = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    if (!socket || !socket.connected) {
      reject(new RequestError("disconnected", `not connected, cannot send ${event}`));
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) {
        reject(new RequestError("timeout", `no answer to ${event} within ${timeoutMs} ms`));
      } else if (!ack || typeof ack !== "object") {
        reject(new RequestError("internal", `malformed ack for ${event}`));
      } else if (ack.ok !== true) {
        const error = ack.error || {};
        reject(new RequestError(error.code || "internal", error.message || `${event} failed`));
      } else {
        resolve(ack);
      }
    });
  });
}

/**
 * Connect to a namespace ("/kiosk", "/staff") with the token in the auth payload,
 * websocket transport only. Returns { socket, request(event, payload, timeoutMs) }.
 */
export function connect(namespace, token) {
  const socket = io(namespace, { auth: { token }, transports: ["websocket"] });
  return {
    socket,
    request: (event, payload, timeoutMs) => requestOn(socket, event, payload, timeoutMs),
  };
}

/**
 * Why a connect failed: the server's refusal code (`err.data.code`, e.g. "unauthorized"),
 * or null for a transport error (server unreachable; socket.io retries by itself).
 * A refusal without a code is taken as "unauthorized": in protocol v1 a bad token is the
 * only reason the server refuses a connect. A refused socket is not `active` any more.
 */
export function connectErrorCode(err, socket) {
  const data = err && err.data;
  if (data && typeof data === "object" && typeof data.code === "string") return data.code;
  if (err && /unauthori[sz]ed/i.test(String(err.message))) return "unauthorized";
  if (socket && !socket.active) return "unauthorized";
  return null;
}
