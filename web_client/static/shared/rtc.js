// Peer connection to the session's media home (protocol v1, "Media"): the client always
// offers audio + video (sendrecv), waits for ICE gathering to finish (non-trickle),
// sends `rtc.offer` and applies the answer. A reconnect or ICE failure is a new
// RTCPeerConnection and a new `rtc.offer` for the same session.
import { getIceServers } from "./api.js";

export const GATHER_TIMEOUT_MS = 5000;
const OFFER_TIMEOUT_MS = 15000;
const DISCONNECTED_GRACE_MS = 3000;
const FATAL_CODES = new Set(["not_found", "forbidden", "unauthorized", "bad_request"]);

/** {"ice_servers":[{urls,username?,credential?}]} entries → RTCIceServer objects. */
export function toRtcIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((s) => s && s.urls && (typeof s.urls === "string" || s.urls.length))
    .map((s) => {
      const server = { urls: s.urls };
      if (s.username != null) server.username = s.username;
      if (s.credential != null) server.credential = s.credential;
      return server;
    });
}

/**
 * ICE configuration for this client's RTCPeerConnection: {iceServers, iceTransportPolicy}
 * ("relay" when the server says media must go through TURN). On any failure, no servers
 * (host candidates only).
 */
export async function loadIceConfig(token) {
  try {
    const body = await getIceServers(token);
    return {
      iceServers: toRtcIceServers(body && body.ice_servers),
      iceTransportPolicy: body && body.ice_transport_policy === "relay" ? "relay" : "all",
    };
  } catch (err) {
    console.warn("ice-servers unavailable, using host candidates only", err);
    return { iceServers: [], iceTransportPolicy: "all" };
  }
}

/** Resolve once ICE gathering is complete, or after timeoutMs, whichever is first. */
export function waitForIceGathering(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") finish();
    };
    const onCandidate = (event) => {
      if (!event.candidate) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/**
 * New RTCPeerConnection with the local audio and video tracks (sendrecv); a kind with
 * no local track is still received (recvonly). Remote tracks are gathered into one
 * MediaStream handed to onRemoteStream.
 */
export function createPeerConnection({
  iceServers = [],
  iceTransportPolicy = "all",
  localStream = null,
  onRemoteStream,
}) {
  const pc = new RTCPeerConnection({
    iceServers,
    iceTransportPolicy: /** @type {RTCIceTransportPolicy} */ (iceTransportPolicy),
  });
  for (const kind of ["audio", "video"]) {
    const track = localStream
      ? localStream.getTracks().find((tr) => tr.kind === kind && tr.readyState === "live")
      : null;
    if (track) pc.addTrack(track, localStream);
    else pc.addTransceiver(kind, { direction: "recvonly" });
  }
  const remote = new MediaStream();
  pc.addEventListener("track", (event) => {
    if (!remote.getTrackById(event.track.id)) remote.addTrack(event.track);
    if (onRemoteStream) onRemoteStream(remote);
  });
  return pc;
}

/** Offer, gather (non-trickle), send via sendOffer({sdp,type}) → {sdp,type}, apply answer. */
export async function negotiate(pc, sendOffer, gatherTimeoutMs = GATHER_TIMEOUT_MS) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await waitForIceGathering(pc, gatherTimeoutMs);
  if (pc.signalingState === "closed") throw new Error("peer connection closed");
  const answer = await sendOffer({ sdp: pc.localDescription.sdp, type: "offer" });
  if (pc.signalingState === "closed") throw new Error("peer connection closed");
  await pc.setRemoteDescription({ type: answer.type || "answer", sdp: answer.sdp });
}

/** Bytes received so far on a peer connection's inbound RTP streams. */
async function bytesReceived(pc) {
  let total = 0;
  try {
    (await pc.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp") total += report.bytesReceived || 0;
    });
  } catch {
    // a closed connection: nothing more arrives
  }
  return total;
}

/**
 * The media of one session: owns the current RTCPeerConnection, renegotiates (new PC,
 * new rtc.offer) when ICE fails or stays disconnected, up to maxRestarts in a row.
 *
 * options: token (for ice-servers), sessionId, request(event, payload, timeoutMs),
 * getLocalStream() → Promise<MediaStream|null>, onRemoteStream(stream),
 * onStatus(state) with state an RTCPeerConnectionState, "negotiating" or "gave_up";
 * for a peer connection of another shape (a supervisor's monitor):
 * peerConnection(ice, localStream) → RTCPeerConnection in place of createPeerConnection,
 * offerFields added to each rtc.offer (e.g. {purpose: "monitor"}), and onAnswered(pc)
 * once each answer is applied.
 */
export class MediaLink {
  /**
   * @param {{token: string, sessionId: string, request: Function, getLocalStream?: Function,
   *   onRemoteStream?: Function, onStatus?: Function, maxRestarts?: number,
   *   peerConnection?: Function | null, offerFields?: object, onAnswered?: Function | null}} options
   */
  constructor({
    token, sessionId, request, getLocalStream, onRemoteStream, onStatus, maxRestarts = 3,
    peerConnection = null, offerFields = {}, onAnswered = null,
  }) {
    this.token = token;
    this.sessionId = sessionId;
    this.request = request;
    this.getLocalStream = getLocalStream || (async () => null);
    this.onRemoteStream = onRemoteStream;
    this.onStatus = onStatus || (() => {});
    this.peerConnection = peerConnection;
    this.offerFields = offerFields;
    this.onAnswered = onAnswered || (() => {});
    this.maxRestarts = maxRestarts;
    this.restarts = 0;
    this.closed = false;
    this._pc = null;
    this._attempt = 0;
    this._timers = new Set();
  }

  get pc() {
    return this._pc;
  }

  /** (Re)negotiate now. Rejects when this attempt fails; a retry may already be scheduled. */
  async start() {
    const attempt = ++this._attempt;
    this._closePc();
    this.onStatus("negotiating");
    try {
      const [ice, localStream] = await Promise.all([
        loadIceConfig(this.token),
        this.getLocalStream().catch(() => null),
      ]);
      if (this.closed || attempt !== this._attempt) return;
      const pc = this.peerConnection
        ? this.peerConnection(ice, localStream)
        : createPeerConnection({
          ...ice,
          localStream,
          onRemoteStream: (stream) => {
            if (pc === this._pc && this.onRemoteStream) this.onRemoteStream(stream);
          },
        });
      this._pc = pc;
      pc.addEventListener("connectionstatechange", () => this._onConnectionState(pc));
      await negotiate(pc, (offer) =>
        this.request(
          "rtc.offer",
          { session_id: this.sessionId, ...offer, ...this.offerFields },
          OFFER_TIMEOUT_MS,
        ),
      );
      if (!this.closed && pc === this._pc) this.onAnswered(pc);
    } catch (err) {
      if (!this.closed && attempt === this._attempt && !FATAL_CODES.has(err && err.code)) {
        this._scheduleRestart(2000);
      }
      throw err;
    }
  }

  /** True while the current PC is usable (or still being set up). */
  get healthy() {
    const state = this._pc ? this._pc.connectionState : "new";
    return !["failed", "closed", "disconnected"].includes(state);
  }

  /**
   * After the signaling socket came back: the node holding this call's media may have
   * died with it, long before ICE notices. If nothing has arrived on the current peer
   * connection for windowMs, offer again now (the server moves the media if needed).
   */
  async restartIfSilent(windowMs = 1000) {
    const pc = this._pc;
    if (this.closed || !pc || pc.connectionState !== "connected") {
      if (!this.healthy) this._scheduleRestart(0);
      return;
    }
    const before = await bytesReceived(pc);
    await new Promise((resolve) => this._later(windowMs, resolve));
    if (this.closed || pc !== this._pc) return;
    if ((await bytesReceived(pc)) === before) {
      this.restarts = 0;
      this._scheduleRestart(0);
    }
  }

  close() {
    this.closed = true;
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this._closePc();
  }

  _onConnectionState(pc) {
    if (pc !== this._pc || this.closed) return;
    const state = pc.connectionState;
    this.onStatus(state);
    if (state === "connected") {
      this.restarts = 0;
    } else if (state === "failed") {
      this._scheduleRestart(1000);
    } else if (state === "disconnected") {
      this._later(DISCONNECTED_GRACE_MS, () => {
        if (pc === this._pc && pc.connectionState === "disconnected") this._scheduleRestart(0);
      });
    }
  }

  _scheduleRestart(delayMs) {
    if (this.closed) return;
    if (this.restarts >= this.maxRestarts) {
      this.onStatus("gave_up");
      return;
    }
    this.restarts += 1;
    this._later(delayMs, () => {
      this.start().catch((err) => console.warn("media renegotiation failed", err));
    });
  }

  _later(delayMs, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (!this.closed) fn();
    }, delayMs);
    this._timers.add(timer);
  }

  _closePc() {
    if (this._pc) {
      const pc = this._pc;
      this._pc = null;
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
  }
}
