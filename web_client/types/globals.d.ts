// What the pages add to window, for the type check of the JS (tsconfig.json; nothing
// here is served).
interface Window {
  /** Hooks the browser tests read (state of the page, its peer connection). */
  smartcounter: any;
  /** Safari before 14.1. */
  webkitAudioContext: typeof AudioContext;
}
