// Printing with the browser: a print-only view holding the page images, then
// window.print(). The view (`.print-view`) is hidden on screen; in print, app.css shows
// it alone, one image per sheet.
import { el } from "../shared/dom.js";

let printing = null;

/**
 * Print the images at `urls` (any URL an <img> can load: same-origin, signed, blob:).
 * Resolves once the browser's print has returned; rejects if an image cannot be loaded
 * (nothing is printed then). One print at a time: a second call waits for the first.
 */
export async function printImages(urls, { title = "" } = {}) {
  while (printing) await printing.catch(() => {});
  printing = run(urls, title);
  try {
    await printing;
  } finally {
    printing = null;
  }
}

async function run(urls, title) {
  const view = el("div", { class: "print-view", dataset: { testid: "print-view" }, "aria-hidden": "true" });
  const images = urls.map((src) => el("img", { class: "print-page", alt: "", src }));
  view.append(...images);
  document.body.append(view);
  const before = document.title;
  try {
    await Promise.all(images.map((img) => img.decode()));
    if (title) document.title = title;
    document.body.classList.add("printing");
    window.print(); // returns when the print dialog is done (at once when headless)
  } finally {
    document.body.classList.remove("printing");
    document.title = before;
    view.remove();
  }
}
