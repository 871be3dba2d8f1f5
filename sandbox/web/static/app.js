// The workspace page: follows the emulator's event stream and lays out the sidebar, the
// channel, the thread, the modal and the world panel; sends what the person does to the
// page's API (which signs it to the bot like Slack). Where it is: #channel=..&thread=..&user=..

import { avatar, clear, el, keyedList } from "./dom.js";
import { renderMessage } from "./message.js";
import { ModalLayer, confirmDialog } from "./modal.js";
import { WorldPanel } from "./world.js";

const $ = (selector) => document.querySelector(selector);
const COLLAPSE_S = 300;

const state = {
  me: null,
  commands: [],
  items: new Map(),
  names: { users: new Map(), channels: new Map(), groups: new Map(), emoji: new Map() },
  namesVersion: 0,
  directory: null,
  channel: null,
  thread: null,
  notices: [],
  dismissed: new Set(),
  stream: null,
};

// --- the page's API ---------------------------------------------------------------------------

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch {
    answer = { error: `HTTP ${response.status}` };
  }
  if (!response.ok && !answer.error) answer.error = `HTTP ${response.status}`;
  return answer;
}

let noticeSeq = 0;
function notice(text, channel = state.channel, threadTs = null) {
  // What Slack says itself (Slackbot), only to this person: a command failed, an app did not answer.
  noticeSeq += 1;
  const ts = (Date.now() / 1000 + noticeSeq * 1e-6).toFixed(6);
  state.notices.push({
    kind: "notice",
    channel,
    thread_ts: threadTs,
    ts,
    user: state.me,
    author: "Slackbot",
    text,
    blocks: [],
  });
  render();
}

function toast(text) {
  const node = el("div", { class: "toast", role: "status" }, text);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), 6000);
}

function failed(answer, what) {
  if (answer.error && !("acked" in answer)) return answer.error;
  if (answer.acked === false) return `${what} failed with the error "${answer.error}"`;
  return null;
}

const hands = {
  names: () => state.names,
  me: () => state.me,
  fileUrl: (id, name) => {
    const file = name || findFileName(id);
    return `/files/${encodeURIComponent(id)}/${encodeURIComponent(file || "file")}`;
  },
  confirm: (dialog) => confirmDialog(dialog, state.names),
  openThread: (item) => {
    $("#thread-scroll").dataset.pinned = "1";
    go({ thread: item.thread_ts || item.ts });
  },
  dismiss: (item) => {
    state.dismissed.add(`${item.kind}:${item.ts}`);
    render();
  },
  async act(item, element, block, value) {
    const body = { user: state.me, action_id: element.action_id, ts: item.ts, channel: item.channel };
    if (value !== undefined) body.value = value;
    const problem = failed(await api("/api/click", body), "flk");
    if (problem) toast(problem);
  },
  async react(item, name) {
    if (!name) return;
    const answer = await api("/api/react", { user: state.me, channel: item.channel, ts: item.ts, name });
    const problem = failed(answer, "The reaction event");
    if (problem) toast(problem);
  },
};

function findFileName(id) {
  for (const item of state.items.values()) {
    for (const file of item.files || []) if (file.id === id) return file.name;
  }
  return null;
}

const modals = new ModalLayer($("#modal-root"), {
  names: () => state.names,
  fileUrl: (id) => hands.fileUrl(id),
  act: async (element, block, value, viewId) => {
    const body = { user: state.me, action_id: element.action_id, view_id: viewId };
    if (value !== undefined) body.value = value;
    const problem = failed(await api("/api/click", body), "flk");
    if (problem) toast(problem);
  },
  submit: async (viewId, values) => api("/api/submit", { user: state.me, view_id: viewId, values }),
  close: async (viewId) => {
    const problem = failed(await api("/api/close", { user: state.me, view_id: viewId }), "flk");
    if (problem) toast(problem);
  },
});

const world = new WorldPanel($("#world"), {
  breach: async (tenant, scenario) => {
    const answer = await api("/api/breach", { tenant, scenario });
    toast(answer.error || `${tenant}: ${scenario} from now on`);
  },
  fault: async (body) => {
    const answer = await api("/api/fault", body);
    if (answer.error) toast(answer.error);
    else world.updateFaults(answer);
  },
});

// --- where the person is ----------------------------------------------------------------------

function location() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return { channel: params.get("channel"), thread: params.get("thread"), user: params.get("user") };
}

function go(change) {
  const next = { channel: state.channel, thread: state.thread, user: state.me, ...change };
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(next)) if (value) params.set(key, value);
  window.location.hash = params.toString();
}

function onLocation() {
  const where = location();
  const user = where.user || state.me;
  state.channel = where.channel || state.channel;
  state.thread = where.thread;
  if (user !== state.me || !state.stream) connect(user);
  else render();
}

// --- the stream -------------------------------------------------------------------------------

function connect(user) {
  if (state.stream) state.stream.close();
  state.me = user;
  state.items.clear();
  const stream = new EventSource(`/api/stream${user ? `?user=${encodeURIComponent(user)}` : ""}`);
  state.stream = stream;
  stream.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    state.me = hello.user;
    state.commands = hello.commands;
    state.items.clear();
    $("#connection").className = "dot live";
  });
  stream.addEventListener("patch", (event) => {
    const patch = JSON.parse(event.data);
    for (const key of patch.remove) state.items.delete(key);
    for (const [key, item] of Object.entries(patch.upsert)) state.items.set(key, item);
    if (patch.upsert.d) setDirectory(patch.upsert.d);
    render();
  });
  stream.addEventListener("world", (event) => {
    const status = JSON.parse(event.data);
    $("#bot-status").textContent = `bot: ${status.bot}`;
    world.update(status);
  });
  stream.addEventListener("error", () => ($("#connection").className = "dot down"));
}

function setDirectory(directory) {
  state.directory = directory;
  state.names.users = new Map(directory.users.map((u) => [u.id, u]));
  state.names.channels = new Map(directory.channels.map((c) => [c.id, c]));
  state.names.groups = new Map(directory.usergroups.map((g) => [g.id, g]));
  state.namesVersion += 1;
  if (!state.channel || !state.names.channels.has(state.channel)) {
    state.channel = (directory.channels.find((c) => !c.dm_user) || directory.channels[0]).id;
  }
}

// --- layout -----------------------------------------------------------------------------------

function visible(item) {
  return !state.dismissed.has(`${item.kind}:${item.ts}`);
}

function entries(list, inThread) {
  let previous = null;
  return list.map((item) => {
    const collapsed = Boolean(
      previous &&
      previous.user === item.user &&
      previous.kind === item.kind &&
      item.kind === "message" &&
      !item.reply_count &&
      !previous.reply_count &&
      parseFloat(item.ts) - parseFloat(previous.ts) < COLLAPSE_S,
    );
    previous = item;
    const sig = `${state.namesVersion}|${collapsed}|${state.me}|${JSON.stringify(item)}`;
    return { key: `${item.kind}:${item.ts}`, sig, build: () => renderMessage(item, hands, { collapsed, inThread }) };
  });
}

function byTs(a, b) {
  return parseFloat(a.ts) - parseFloat(b.ts) || (a.ts < b.ts ? -1 : 1);
}

function channelItems() {
  const all = [...state.items.values(), ...state.notices];
  return all
    .filter(
      (item) =>
        item.channel === state.channel &&
        visible(item) &&
        (item.kind === "message" ? !item.is_reply || item.reply_broadcast : !item.thread_ts),
    )
    .sort(byTs);
}

function threadItems(parentTs) {
  const all = [...state.items.values(), ...state.notices];
  return all
    .filter(
      (item) =>
        item.channel === state.channel &&
        visible(item) &&
        (item.kind === "message"
          ? item.ts === parentTs || (item.thread_ts === parentTs && item.is_reply)
          : item.thread_ts === parentTs),
    )
    .sort(byTs);
}

// A pane scrolled to its end stays there as messages arrive and images load, as in Slack.
function atEnd(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
}

function pinToEnd(scroller) {
  scroller.dataset.pinned = "1";
  scroller.addEventListener("scroll", () => (scroller.dataset.pinned = atEnd(scroller) ? "1" : ""));
  scroller.addEventListener(
    "load",
    () => scroller.dataset.pinned && (scroller.scrollTop = scroller.scrollHeight),
    true,
  );
}

function stickToBottom(scroller, update) {
  const pinned = scroller.dataset.pinned || atEnd(scroller);
  update();
  if (pinned) scroller.scrollTop = scroller.scrollHeight;
}

function renderSidebar() {
  const d = state.directory;
  if (!d) return;
  $("#team-name").textContent = d.team.name;
  const link = (channel, label) =>
    el(
      "a",
      {
        class: `channel-link${channel.id === state.channel ? " active" : ""}`,
        href: `#channel=${channel.id}&user=${state.me}`,
        dataset: { channel: channel.id },
      },
      label,
    );
  clear($("#channels")).append(...d.channels.filter((c) => !c.dm_user).map((c) => link(c, `# ${c.name}`)));
  clear($("#dms")).append(
    ...d.channels
      .filter((c) => c.dm_user)
      .map((c) => {
        const user = state.names.users.get(c.dm_user);
        return link(c, user ? user.real_name : c.name);
      }),
  );
  const switcher = $("#user-switcher");
  const people = d.users.filter((u) => !u.is_bot);
  const wanted = people.map((u) => u.id).join(",");
  if (switcher.dataset.users !== wanted) {
    switcher.dataset.users = wanted;
    clear(switcher).append(
      ...people.map((u) =>
        el(
          "option",
          { value: u.id },
          `${u.real_name}${u.groups.length ? ` · ${u.groups.map((g) => `@${g}`).join(" ")}` : " · no group"}`,
        ),
      ),
    );
  }
  switcher.value = state.me;
  clear($("#me-avatar")).append(avatar(state.names.users.get(state.me), "small"));
}

function render() {
  if (!state.directory) return;
  renderSidebar();
  const channel = state.names.channels.get(state.channel);
  $("#channel-name").textContent = channel ? (channel.dm_user ? channel.name : `# ${channel.name}`) : "";
  $("#composer-input").placeholder = channel
    ? `Message ${channel.dm_user ? "" : "#"}${channel.name} — or type /flk help`
    : "";
  const list = $("#messages");
  stickToBottom($("#channel-scroll"), () => keyedList(list, entries(channelItems(), false)));
  const pane = $("#thread");
  const parent = state.thread && state.items.get(`m:${state.channel}:${state.thread}`);
  pane.hidden = !parent;
  document.body.classList.toggle("with-thread", Boolean(parent));
  if (parent) {
    $("#thread-channel").textContent = `#${channel ? channel.name : ""}`;
    stickToBottom($("#thread-scroll"), () =>
      keyedList($("#thread-messages"), entries(threadItems(state.thread), true)),
    );
  }
  modals.show([...state.items.values()].filter((item) => item.kind === "view"));
}

// --- composing --------------------------------------------------------------------------------

async function send(input, threadTs) {
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  if (text.startsWith("/")) {
    const answer = await api("/api/slash", { user: state.me, channel: state.channel, text });
    const command = text.split(/\s/)[0];
    if (answer.error && !("acked" in answer)) notice(answer.error);
    else if (answer.acked === false) notice(`${command} failed with the error "${answer.error}"`);
    return;
  }
  const answer = await api("/api/post", {
    user: state.me,
    channel: state.channel,
    text,
    thread_ts: threadTs || undefined,
  });
  if (answer.error) toast(answer.error);
}

function composer(form, input, threadTs) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input, threadTs());
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send(input, threadTs());
    }
  });
}

async function start() {
  pinToEnd($("#channel-scroll"));
  pinToEnd($("#thread-scroll"));
  composer($("#composer"), $("#composer-input"), () => null);
  composer($("#thread-composer"), $("#thread-input"), () => state.thread);
  $("#thread-close").addEventListener("click", () => go({ thread: null }));
  $("#user-switcher").addEventListener("change", (event) => go({ user: event.target.value }));
  $("#world-toggle").addEventListener("click", () => document.body.classList.toggle("without-world"));
  try {
    const emoji = await (await fetch("/emoji.json")).json();
    state.names.emoji = new Map(Object.entries(emoji));
  } catch {
    toast("emoji names could not be loaded; shortcodes stay as typed");
  }
  window.addEventListener("hashchange", onLocation);
  onLocation();
}

start();
