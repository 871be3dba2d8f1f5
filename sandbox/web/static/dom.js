// Building DOM safely: text only ever goes in as text nodes, attributes through setAttribute,
// and links only to http(s). Nothing the bot sends is parsed as HTML.

const SAFE_URL = /^https?:\/\/[^\s]+$/i;
// A path on this page's own server (not "//host", which would be another site).
const OWN_PATH = /^\/(?![/\\])[^\s\\]*$/;

export function safeUrl(url) {
  return typeof url === "string" && SAFE_URL.test(url) ? url : null;
}

// el("div", {class: "x", onclick: fn, title: "t"}, child, "text", [more]) -> Element
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "href" || key === "src") {
      const url = OWN_PATH.test(String(value)) ? String(value) : safeUrl(value);
      if (url) node.setAttribute(key, url);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// A short clock time for a Slack ts ("1732612345.000100").
export function clock(ts) {
  const date = new Date(parseFloat(ts) * 1000);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function fullTime(ts) {
  return new Date(parseFloat(ts) * 1000).toLocaleString();
}

// A stable colour per id, for avatars.
export function hue(id) {
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

export function avatar(user, size = "") {
  const name = user ? user.real_name || user.name : "?";
  const node = el("span", { class: `avatar ${size}`.trim(), title: name, "aria-hidden": "true" }, name.charAt(0));
  node.style.background = user && user.is_bot ? "#4a154b" : `hsl(${hue(user ? user.id : "?")} 45% 42%)`;
  return node;
}

// Replace `node`'s children with `entries` ({key, sig, build}), reusing the elements of
// entries whose key and signature did not change: a live edit rebuilds only what it touched.
export function keyedList(node, entries) {
  const old = new Map();
  for (const child of node.children) old.set(child.dataset.key, child);
  const wanted = entries.map((entry) => {
    const child = old.get(entry.key);
    if (child && child.dataset.sig === entry.sig) return child;
    const built = entry.build();
    built.dataset.key = entry.key;
    built.dataset.sig = entry.sig;
    return built;
  });
  const keep = new Set(wanted);
  for (const child of [...node.children]) if (!keep.has(child)) child.remove();
  wanted.forEach((child, i) => {
    if (node.children[i] !== child) node.insertBefore(child, node.children[i] || null);
  });
}
