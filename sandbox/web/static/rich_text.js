// rich_text blocks as DOM: sections, lists (bullet/ordered, indented), preformatted, quotes;
// styled text, links (http(s) only), user/channel/user group mentions as names, emoji.

import { el, safeUrl } from "./dom.js";

function richInline(item, ctx) {
  const names = ctx.names;
  let node;
  if (item.type === "text") node = document.createTextNode(item.text || "");
  else if (item.type === "link") {
    const url = safeUrl(item.url);
    node = url
      ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, item.text || item.url)
      : el("span", {}, item.text || "");
  } else if (item.type === "user") {
    const user = names.users.get(item.user_id);
    node = el("span", { class: "mention" }, "@", user ? user.name : item.user_id);
  } else if (item.type === "channel") {
    const channel = names.channels.get(item.channel_id);
    node = el("span", { class: "mention" }, "#", channel ? channel.name : item.channel_id);
  } else if (item.type === "usergroup") {
    const group = names.groups.get(item.usergroup_id);
    node = el("span", { class: "mention" }, "@", group ? group.handle : item.usergroup_id);
  } else if (item.type === "broadcast") node = el("span", { class: "mention broadcast" }, `@${item.range}`);
  else if (item.type === "emoji") {
    const char = item.unicode
      ? String.fromCodePoint(...item.unicode.split("-").map((h) => parseInt(h, 16)))
      : names.emoji.get(item.name);
    node = el("span", { class: "emoji", title: `:${item.name}:` }, char || `:${item.name}:`);
  } else if (item.type === "date") node = document.createTextNode(item.fallback || "");
  else node = document.createTextNode("");
  const style = item.style || {};
  for (const [flag, tag] of [
    ["code", "code"],
    ["strike", "s"],
    ["italic", "i"],
    ["bold", "b"],
  ]) {
    if (style[flag]) node = el(tag, {}, node);
  }
  return node;
}

export function richElement(element, ctx) {
  const kids = element.elements || [];
  if (element.type === "rich_text_section")
    return el(
      "div",
      { class: "rich-section" },
      kids.map((k) => richInline(k, ctx)),
    );
  if (element.type === "rich_text_preformatted")
    return el(
      "pre",
      { class: "code-block" },
      kids.map((k) => richInline(k, ctx)),
    );
  if (element.type === "rich_text_quote")
    return el(
      "blockquote",
      {},
      kids.map((k) => richInline(k, ctx)),
    );
  if (element.type === "rich_text_list") {
    const list = el(element.style === "ordered" ? "ol" : "ul", { class: `rich-list indent-${element.indent || 0}` });
    for (const item of kids) list.append(el("li", {}, richElement(item, ctx)));
    return list;
  }
  return el("span", { class: "unsupported" }, `[${element.type}]`);
}
