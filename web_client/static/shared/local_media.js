// Local camera/microphone and <video> element helpers.

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/**
 * Camera + microphone. If both cannot be had, settle for whichever works, so a
 * broken microphone does not also take away the picture (and vice versa).
 * Rejects with the first error when neither is available.
 */
export async function getLocalMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("getUserMedia is not available (insecure context?)");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: AUDIO, video: VIDEO });
  } catch (first) {
    for (const constraints of [{ video: VIDEO }, { audio: AUDIO }]) {
      try {
        return await navigator.mediaDevices.getUserMedia(constraints);
      } catch {
        // try the next one
      }
    }
    throw first;
  }
}

export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}

/** Show stream in video; a refused autoplay (sound without a user gesture) is ignored. */
export function attachStream(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  if (stream) playQuietly(video);
}

export function detachStream(video) {
  video.srcObject = null;
}

export function playQuietly(video) {
  const promise = video.play();
  if (promise && promise.catch) promise.catch(() => {});
}

/**
 * Retry playing the given videos on the next user gesture, for browsers that blocked
 * autoplay with sound. Returns a function that removes the listener.
 */
export function replayOnGesture(videos) {
  const handler = () => {
    for (const video of videos) {
      if (video.srcObject && video.paused) playQuietly(video);
    }
  };
  document.addEventListener("pointerdown", handler, { capture: true });
  document.addEventListener("keydown", handler, { capture: true });
  return () => {
    document.removeEventListener("pointerdown", handler, { capture: true });
    document.removeEventListener("keydown", handler, { capture: true });
  };
}
