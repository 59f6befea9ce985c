// A soft two-tone ring for incoming calls, synthesised with Web Audio (no sound files).
// Browsers may keep the AudioContext suspended until a user gesture; then it stays silent.

let context = null;
let timer = null;

function audioContext() {
  if (!context) {
    const Ctor = window.AudioContext || window.webkitAudioContext;
    if (!Ctor) return null;
    context = new Ctor();
  }
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

function beep(ctx, frequency, start, duration) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "sine";
  osc.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.15, start + 0.03);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + duration);
  osc.connect(gain).connect(ctx.destination);
  osc.start(start);
  osc.stop(start + duration + 0.05);
}

function ringOnce() {
  const ctx = audioContext();
  if (!ctx || ctx.state !== "running") return;
  const now = ctx.currentTime;
  beep(ctx, 880, now, 0.35);
  beep(ctx, 660, now + 0.4, 0.35);
}

/** Call from a user gesture (e.g. sign-in) so that ringing later is allowed to sound. */
export function unlockAudio() {
  try {
    audioContext();
  } catch {
    // no audio: ringing stays silent
  }
}

export function startRinging() {
  if (timer) return;
  try {
    ringOnce();
  } catch {
    // ignore
  }
  timer = setInterval(() => {
    try {
      ringOnce();
    } catch {
      // ignore
    }
  }, 2000);
}

export function stopRinging() {
  if (timer) clearInterval(timer);
  timer = null;
}
