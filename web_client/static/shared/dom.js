// Small DOM helpers (no innerHTML: every text from the server goes in as textContent).

/**
 * The element with this id (any: a page's elements are inputs, buttons, images…).
 * @returns {any}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** @returns {any} */
export function byTestId(testId, root = document) {
  const el = root.querySelector(`[data-testid="${testId}"]`);
  if (!el) throw new Error(`missing element [data-testid=${testId}]`);
  return el;
}

/**
 * The elements below root that match selector, as an array.
 * @returns {HTMLElement[]}
 */
export function all(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

/** Create an element: el("button", {class: "tile", dataset: {testid: "x"}}, "text"). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "class") node.className = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show exactly one of the given elements (by key), hide the others. */
export function showOnly(views, key) {
  for (const [name, view] of Object.entries(views)) view.hidden = name !== key;
}

/** "m:ss" for a number of seconds. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
