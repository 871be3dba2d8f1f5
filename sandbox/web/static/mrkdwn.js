// Slack's mrkdwn as DOM: *bold*, _italic_, ~strike~, `code`, ```blocks```, > quotes,
// <url|links> (http(s) only), <@U..> <#C..> <!subteam^S..> <!here> as names, :emoji:.
// `names` is {users, channels, groups: Map id -> object, emoji: Map shortcode -> char}.

import { append, el, safeUrl } from "./dom.js";

export function decode(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

// Earliest match wins; on a tie the first pattern listed.
const INLINE = [
  ["code", /`([^`\n]+)`/],
  ["entity", /<([^<>\n]+)>/],
  ["url", /\bhttps?:\/\/[^\s<>]+[^\s<>.,;:!?)\]'"]/],
  ["bold", /(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])/],
  ["italic", /(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])/],
  ["strike", /(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])/],
  ["emoji", /:([a-z0-9_+'-]+(?:::skin-tone-\d)?):/],
];

export function emojify(text, names) {
  // Shortcodes to emoji in plain text (unknown ones stay as typed, as Slack shows them).
  const out = [];
  const pattern = /:([a-z0-9_+'-]+)(?:::skin-tone-\d)?:/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const char = names.emoji.get(match[1]);
    if (!char) continue;
    out.push(text.slice(last, match.index), el("span", { class: "emoji", title: `:${match[1]}:` }, char));
    last = match.index + match[0].length;
  }
  out.push(text.slice(last));
  return out.filter((part) => part !== "");
}

function entity(inner, names) {
  const [target, ...rest] = inner.split("|");
  const label = rest.join("|");
  if (/^@[UW][A-Z0-9_]+$/.test(target)) {
    const user = names.users.get(target.slice(1));
    return el("span", { class: "mention", title: target.slice(1) }, "@", user ? user.name : label || target.slice(1));
  }
  if (/^#[CGD][A-Z0-9_]+$/.test(target)) {
    const channel = names.channels.get(target.slice(1));
    return el("span", { class: "mention" }, "#", channel ? channel.name : label || target.slice(1));
  }
  if (target.startsWith("!subteam^")) {
    const group = names.groups.get(target.slice("!subteam^".length));
    return el("span", { class: "mention" }, group ? `@${group.handle}` : label || "@group");
  }
  if (["!here", "!channel", "!everyone"].includes(target)) {
    return el("span", { class: "mention broadcast" }, `@${target.slice(1)}`);
  }
  if (target.startsWith("!date^")) return decode(label || target);
  if (target.startsWith("!")) return decode(label || target.slice(1));
  const url = safeUrl(decode(target));
  const text = decode(label || target);
  if (!url) return el("span", { class: "unsafe-link", title: "not an http(s) link" }, text);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

export function inline(text, names) {
  const out = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const [kind, pattern] of INLINE) {
      const match = pattern.exec(rest);
      if (match && (best === null || match.index < best.match.index)) best = { kind, match };
    }
    if (best === null) {
      out.push(decode(rest));
      break;
    }
    const { kind, match } = best;
    if (match.index > 0) out.push(decode(rest.slice(0, match.index)));
    rest = rest.slice(match.index + match[0].length);
    if (kind === "code") out.push(el("code", {}, decode(match[1])));
    else if (kind === "entity") out.push(entity(match[1], names));
    else if (kind === "url")
      out.push(el("a", { href: decode(match[0]), target: "_blank", rel: "noopener noreferrer" }, decode(match[0])));
    else if (kind === "bold") out.push(el("b", {}, inline(match[1], names)));
    else if (kind === "italic") out.push(el("i", {}, inline(match[1], names)));
    else if (kind === "strike") out.push(el("s", {}, inline(match[1], names)));
    else {
      const char = names.emoji.get(match[1].split("::")[0]);
      out.push(char ? el("span", { class: "emoji", title: match[0] }, char) : match[0]);
    }
  }
  return out;
}

function lines(text, names) {
  // Consecutive "> " lines form one quote (a block); other line breaks stay line breaks.
  const out = [];
  const all = text.split("\n");
  let quote = null;
  all.forEach((line, i) => {
    const quoted = /^(&gt;|>)\s?/.exec(line);
    if (quoted) {
      if (quote) quote.append(el("br"));
      else out.push((quote = el("blockquote")));
      append(quote, inline(line.slice(quoted[0].length), names));
      return;
    }
    quote = null;
    out.push(...inline(line, names));
    const next = all[i + 1];
    if (next !== undefined && !/^(&gt;|>)/.test(next)) out.push(el("br"));
  });
  return out;
}

// mrkdwn text -> a <div class="mrkdwn"> with everything in it.
export function mrkdwn(text, names) {
  const root = el("div", { class: "mrkdwn" });
  let last = 0;
  for (const match of text.matchAll(/```([\s\S]*?)```/g)) {
    append(root, lines(text.slice(last, match.index).replace(/\n$/, ""), names));
    root.append(el("pre", { class: "code-block" }, decode(match[1].replace(/^\n/, ""))));
    last = match.index + match[0].length;
  }
  append(root, lines(last ? text.slice(last).replace(/^\n/, "") : text, names));
  return root;
}

// A text object ({type: mrkdwn | plain_text, text, emoji}) as DOM.
export function textObject(obj, names, { inlineOnly = false } = {}) {
  if (!obj || typeof obj.text !== "string") return el("span");
  if (obj.type === "mrkdwn") {
    if (obj.verbatim) return el("div", { class: "mrkdwn" }, decode(obj.text));
    return inlineOnly ? el("span", {}, inline(obj.text, names)) : mrkdwn(obj.text, names);
  }
  const parts = obj.emoji === false ? [obj.text] : emojify(obj.text, names);
  return el("span", { class: "plain" }, parts);
}
