// One message as Slack lays it out: avatar, name, time, blocks (or its text), attachments,
// files (PNG preview, text snippet and download), a streamed task plan, "(edited)", reactions,
// the thread summary, and the hover actions (add a reaction, reply in thread).

import { avatar, clock, el, fullTime } from "./dom.js";
import { renderAttachments, renderBlocks } from "./blocks.js";
import { emojify, mrkdwn } from "./mrkdwn.js";

export const QUICK_REACTIONS = ["pushpin", "eyes", "white_check_mark", "+1", "rotating_light"];
const TASK_ICON = { pending: "⏳", in_progress: "⏳", complete: "✅", error: "❌" };

function size(bytes) {
  return bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 * 1024
      ? `${(bytes / 1024).toFixed(1)} KB`
      : `${(bytes / 1048576).toFixed(1)} MB`;
}

function fileCard(file, hands) {
  const url = hands.fileUrl(file.id, file.name);
  if (file.filetype === "png") {
    return el(
      "figure",
      { class: "file file-image", dataset: { fileId: file.id } },
      el("figcaption", { class: "file-title" }, file.title),
      el(
        "a",
        { href: url, target: "_blank", rel: "noopener" },
        el("img", { src: url, alt: file.alt_txt || file.title, loading: "lazy" }),
      ),
    );
  }
  const badge = el("span", { class: `file-badge file-${file.filetype}` }, file.filetype.toUpperCase());
  return el(
    "div",
    { class: "file file-doc", dataset: { fileId: file.id } },
    el(
      "div",
      { class: "file-head" },
      badge,
      el(
        "div",
        { class: "file-meta" },
        el("b", {}, file.title),
        el("span", { class: "muted" }, `${file.name} · ${size(file.size)}`),
      ),
      el("a", { class: "btn btn-default btn-small file-download", href: url, download: file.name }, "Download"),
    ),
    file.preview !== undefined ? el("pre", { class: "file-preview" }, file.preview) : null,
  );
}

function taskPlan(chunks, names) {
  // chat.startStream/appendStream chunks: the plan's title and each task's latest state.
  const tasks = new Map();
  let title = null;
  for (const chunk of chunks) {
    if (chunk.type === "plan_update") title = chunk.title;
    if (chunk.type === "task_update") tasks.set(chunk.id, { ...(tasks.get(chunk.id) || {}), ...chunk });
  }
  if (!title && !tasks.size) return null;
  return el(
    "div",
    { class: "task-plan" },
    title ? el("div", { class: "task-plan-title" }, emojify(title, names)) : null,
    el(
      "ul",
      {},
      [...tasks.values()].map((t) =>
        el(
          "li",
          { class: `task task-${t.status}` },
          el("span", { class: "task-icon" }, TASK_ICON[t.status] || "•"),
          " ",
          t.title,
          t.output ? el("div", { class: "task-output" }, t.output) : null,
        ),
      ),
    ),
  );
}

function reactions(item, hands, names) {
  if (!item.reactions || !item.reactions.length) return null;
  return el(
    "div",
    { class: "reactions" },
    item.reactions.map((r) => {
      const mine = r.users.includes(hands.me());
      const who = r.users.map((u) => (names.users.get(u) || { name: u }).name).join(", ");
      return el(
        "button",
        {
          class: `reaction${mine ? " mine" : ""}`,
          type: "button",
          title: `${who} reacted with :${r.name}:`,
          dataset: { reaction: r.name },
          onclick: () => !mine && hands.react(item, r.name),
        },
        names.emoji.get(r.name) || `:${r.name}:`,
        " ",
        el("span", { class: "count" }, r.users.length),
      );
    }),
  );
}

function reactionPicker(item, hands, names) {
  const menu = el("div", { class: "picker", hidden: true });
  const custom = el("input", { class: "text-input", placeholder: "emoji name", "aria-label": "emoji name", size: 12 });
  const choose = (name) => {
    menu.hidden = true;
    hands.react(item, name.replace(/:/g, "").trim());
  };
  for (const name of QUICK_REACTIONS) {
    menu.append(
      el(
        "button",
        {
          class: "picker-emoji",
          type: "button",
          title: `:${name}:`,
          dataset: { emoji: name },
          onclick: () => choose(name),
        },
        names.emoji.get(name) || name,
      ),
    );
  }
  custom.addEventListener("keydown", (event) => event.key === "Enter" && custom.value && choose(custom.value));
  menu.append(custom);
  const open = el(
    "button",
    {
      class: "tool",
      type: "button",
      title: "Add reaction",
      "aria-label": "Add reaction",
      onclick: () => (menu.hidden = !menu.hidden),
    },
    "☺︎+",
  );
  return el("span", { class: "tool-wrap" }, open, menu);
}

function threadSummary(item, hands, names) {
  if (!item.reply_count || item.is_reply) return null;
  const faces = item.reply_users.map((u) => avatar(names.users.get(u), "tiny"));
  return el(
    "button",
    { class: "thread-summary", type: "button", onclick: () => hands.openThread(item) },
    faces,
    el("b", {}, `${item.reply_count} ${item.reply_count === 1 ? "reply" : "replies"}`),
    el("span", { class: "muted" }, `Last reply ${clock(item.latest_reply)}`),
  );
}

// item: a message or ephemeral (see snapshot.py); hands: {names(), me(), act(item, element,
// block, value), confirm(dialog), fileUrl(id, name), react(item, name), openThread(item),
// dismiss(item)}; collapsed: same author as the message before, shortly after it.
export function renderMessage(item, hands, { collapsed = false, inThread = false } = {}) {
  const names = hands.names();
  const author = item.author || item.user;
  const user = names.users.get(author) || { id: author, name: author, real_name: author };
  const ephemeral = item.kind === "ephemeral" || item.kind === "notice";
  const ctx = {
    names,
    fileUrl: (id) => hands.fileUrl(id),
    act: (element, block, value) => hands.act(item, element, block, value),
    confirm: hands.confirm,
  };
  const body = el("div", { class: "message-body" });
  const streamed = item.streaming || (item.chunks && item.chunks.length);
  if (streamed) {
    // A streamed message (chat.startStream..stopStream): its text and task plan, then its final blocks.
    if (item.text) body.append(mrkdwn(item.text, names));
    body.append(taskPlan(item.chunks || [], names) || "");
    if (item.streaming) body.append(el("span", { class: "streaming muted" }, "streaming…"));
  }
  if (item.blocks && item.blocks.length) body.append(renderBlocks(item.blocks, ctx));
  else if (item.text && !streamed) body.append(mrkdwn(item.text, names));
  body.append(...renderAttachments(item.attachments, ctx));
  for (const file of item.files || []) body.append(fileCard(file, hands));
  if (item.edited) body.append(el("span", { class: "edited muted" }, "(edited)"));
  const head = collapsed
    ? null
    : el(
        "div",
        { class: "message-head" },
        el("b", { class: "author" }, user.real_name || user.name),
        user.is_bot ? el("span", { class: "app-badge" }, "APP") : null,
        el("time", { class: "muted", title: fullTime(item.ts) }, clock(item.ts)),
        ephemeral ? el("span", { class: "only-you" }, "Only visible to you") : null,
      );
  const tools = el(
    "div",
    { class: "message-tools" },
    item.kind === "message" ? reactionPicker(item, hands, names) : null,
    item.kind === "message" && !item.is_reply && !inThread
      ? el(
          "button",
          { class: "tool", type: "button", title: "Reply in thread", onclick: () => hands.openThread(item) },
          "💬",
        )
      : null,
    ephemeral
      ? el("button", { class: "tool", type: "button", title: "Dismiss", onclick: () => hands.dismiss(item) }, "Dismiss")
      : null,
  );
  return el(
    "div",
    {
      class: `message${ephemeral ? " ephemeral" : ""}${collapsed ? " collapsed" : ""}`,
      dataset: { ts: item.ts, kind: item.kind, user: item.user },
    },
    el(
      "div",
      { class: "gutter" },
      collapsed ? el("time", { class: "gutter-time muted" }, clock(item.ts)) : avatar(user),
    ),
    el(
      "div",
      { class: "message-content" },
      head,
      body,
      reactions(item, hands, names),
      threadSummary(item, hands, names),
    ),
    tools,
  );
}
