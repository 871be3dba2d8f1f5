// Block Kit as DOM, for messages and modals: section (text, fields, accessory), context,
// actions, header, divider, image, rich_text, input, file, markdown; buttons with their styles
// and confirm dialogs, selects, overflow menus, checkboxes, radio buttons, date/time pickers.
//
// `ctx`: {names, act(element, block, value), confirm(dialog) -> Promise<bool>, fileUrl(id),
//         form: Map action_id -> () => value (modals only), state: view.state.values, errors}.

import { el, safeUrl } from "./dom.js";
import { decode, mrkdwn, textObject } from "./mrkdwn.js";
import { richElement } from "./rich_text.js";

const OPTION_KINDS = new Set(["static_select", "external_select", "multi_static_select", "multi_external_select"]);

function options(element) {
  const groups = element.option_groups || [];
  return [...(element.options || []), ...groups.flatMap((g) => g.options || [])];
}

function optionLabel(option) {
  return option.text ? option.text.text : option.value;
}

function imageSrc(image, ctx) {
  if (image.slack_file && image.slack_file.id) return ctx.fileUrl(image.slack_file.id);
  return safeUrl(image.image_url || (image.slack_file && image.slack_file.url));
}

// --- interactive elements -------------------------------------------------------------------

function button(element, block, ctx) {
  const style = element.style === "primary" || element.style === "danger" ? `btn-${element.style}` : "btn-default";
  const node = el(
    "button",
    { class: `btn ${style}`, type: "button", dataset: { actionId: element.action_id || "" } },
    textObject(element.text, ctx.names),
  );
  node.addEventListener("click", async () => {
    if (element.confirm && !(await ctx.confirm(element.confirm))) return;
    const url = safeUrl(element.url);
    if (url) window.open(url, "_blank", "noopener,noreferrer");
    node.disabled = true;
    node.classList.add("busy");
    try {
      await ctx.act(element, block, undefined);
    } finally {
      node.disabled = false;
      node.classList.remove("busy");
    }
  });
  return node;
}

function select(element, block, ctx, initial) {
  const kind = element.type;
  const multi = kind.startsWith("multi_");
  const node = el("select", { class: "select", multiple: multi, dataset: { actionId: element.action_id || "" } });
  if (!multi)
    node.append(el("option", { value: "" }, element.placeholder ? element.placeholder.text : "Select an item"));
  const chosen = new Set((initial || []).filter(Boolean));
  if (OPTION_KINDS.has(kind)) {
    for (const option of options(element)) {
      node.append(el("option", { value: option.value, selected: chosen.has(option.value) }, optionLabel(option)));
    }
  } else if (kind.includes("users_select")) {
    for (const user of ctx.names.users.values()) {
      if (!user.is_bot) node.append(el("option", { value: user.id, selected: chosen.has(user.id) }, user.real_name));
    }
  } else {
    for (const channel of ctx.names.channels.values()) {
      if (!channel.dm_user)
        node.append(el("option", { value: channel.id, selected: chosen.has(channel.id) }, `#${channel.name}`));
    }
  }
  const value = () => (multi ? [...node.selectedOptions].map((o) => o.value) : node.value || null);
  return { node, value };
}

function choices(element, block, ctx, initial) {
  const radio = element.type === "radio_buttons";
  const chosen = new Set(initial || []);
  const name = `${block.block_id || ""}/${element.action_id || ""}/${Math.random()}`;
  const boxes = options(element).map((option) => {
    const input = el("input", {
      type: radio ? "radio" : "checkbox",
      name,
      value: option.value,
      checked: chosen.has(option.value),
    });
    const description = option.description
      ? el("div", { class: "choice-description" }, textObject(option.description, ctx.names))
      : null;
    return {
      input,
      label: el(
        "label",
        { class: "choice" },
        input,
        el("span", {}, textObject(option.text, ctx.names, { inlineOnly: true }), description),
      ),
    };
  });
  const node = el(
    "div",
    { class: "choices", dataset: { actionId: element.action_id || "" } },
    boxes.map((b) => b.label),
  );
  const picked = () => boxes.filter((b) => b.input.checked).map((b) => b.input.value);
  const value = () => (radio ? picked()[0] || null : picked());
  return { node, value };
}

function overflow(element, block, ctx) {
  const menu = el("div", { class: "menu", hidden: true });
  const toggle = el("button", { class: "btn btn-default btn-overflow", type: "button", title: "More actions" }, "⋯");
  toggle.addEventListener("click", () => (menu.hidden = !menu.hidden));
  for (const option of options(element)) {
    const item = el("button", { class: "menu-item", type: "button" }, optionLabel(option));
    item.addEventListener("click", async () => {
      menu.hidden = true;
      if (element.confirm && !(await ctx.confirm(element.confirm))) return;
      await ctx.act(element, block, option.value);
    });
    menu.append(item);
  }
  return el("span", { class: "overflow" }, toggle, menu);
}

function initialOf(element, block, ctx) {
  // What the element shows first: the view's state (a re-rendered modal), else its initial_*.
  const state = ((ctx.state || {})[block.block_id] || {})[element.action_id];
  const source = state || element;
  if (source.selected_option !== undefined || source.selected_options !== undefined) {
    return (source.selected_options || [source.selected_option]).filter(Boolean).map((o) => o.value);
  }
  for (const key of [
    "value",
    "selected_date",
    "selected_time",
    "selected_user",
    "selected_conversation",
    "selected_channel",
  ]) {
    if (state && state[key] !== undefined) return state[key];
  }
  if (element.initial_option) return [element.initial_option.value];
  if (element.initial_options) return element.initial_options.map((o) => o.value);
  const initial =
    element.initial_value ??
    element.initial_date ??
    element.initial_time ??
    element.initial_user ??
    element.initial_conversation ??
    element.initial_channel;
  if (initial !== undefined) return initial;
  const many = element.initial_users || element.initial_conversations || element.initial_channels;
  return many || null;
}

const TEXT_INPUTS = {
  plain_text_input: "text",
  number_input: "number",
  email_text_input: "email",
  url_text_input: "url",
};

// An element as a control; in a modal's input block it registers how to read its value,
// elsewhere a change is an action (block_actions) right away.
export function control(element, block, ctx, { input = false } = {}) {
  const kind = element.type;
  const initial = initialOf(element, block, ctx);
  let built;
  if (kind === "button" || kind === "workflow_button") return button(element, block, ctx);
  if (kind === "overflow") return overflow(element, block, ctx);
  if (kind === "image")
    return el("img", { class: "accessory-image", src: imageSrc(element, ctx), alt: element.alt_text || "" });
  if (kind.endsWith("_select")) built = select(element, block, ctx, Array.isArray(initial) ? initial : [initial]);
  else if (kind === "checkboxes" || kind === "radio_buttons") built = choices(element, block, ctx, initial);
  else if (kind in TEXT_INPUTS || kind === "datepicker" || kind === "timepicker") {
    const type = kind === "datepicker" ? "date" : kind === "timepicker" ? "time" : TEXT_INPUTS[kind];
    const attrs = {
      class: "text-input",
      placeholder: element.placeholder ? element.placeholder.text : null,
      maxlength: element.max_length,
      dataset: { actionId: element.action_id || "" },
    };
    const node = element.multiline ? el("textarea", { ...attrs, rows: 4 }) : el("input", { ...attrs, type });
    node.value = initial ?? "";
    built = { node, value: () => (node.value === "" && kind !== "plain_text_input" ? null : node.value) };
  } else {
    return el("span", { class: "unsupported" }, `[${kind}]`);
  }
  if (input && ctx.form) {
    ctx.form.set(element.action_id, { value: built.value, element, node: built.node });
  } else {
    built.node.addEventListener("change", () => ctx.act(element, block, built.value()));
  }
  return built.node;
}

// --- blocks -----------------------------------------------------------------------------------

function section(block, ctx) {
  const body = el("div", { class: "section-body" });
  if (block.text) body.append(textObject(block.text, ctx.names));
  if (block.fields) {
    body.append(
      el(
        "div",
        { class: "fields" },
        block.fields.map((f) => el("div", { class: "field" }, textObject(f, ctx.names))),
      ),
    );
  }
  const accessory = block.accessory ? el("div", { class: "accessory" }, control(block.accessory, block, ctx)) : null;
  return el("div", { class: "block block-section" }, body, accessory);
}

function context(block, ctx) {
  return el(
    "div",
    { class: "block block-context" },
    (block.elements || []).map((item) =>
      item.type === "image"
        ? el("img", { class: "context-image", src: imageSrc(item, ctx), alt: item.alt_text || "" })
        : el(
            "span",
            { class: "context-item" },
            textObject(item, ctx.names, { inlineOnly: item.type === "mrkdwn" && !item.text.includes("\n") }),
          ),
    ),
  );
}

function image(block, ctx) {
  const title = block.title ? el("div", { class: "image-title" }, textObject(block.title, ctx.names)) : null;
  const src = imageSrc(block, ctx);
  const img = src
    ? el("img", { class: "block-image", src, alt: block.alt_text || "" })
    : el("span", { class: "unsupported" }, "[image]");
  return el("div", { class: "block block-image-wrap" }, title, img);
}

function input(block, ctx) {
  const error = (ctx.errors || {})[block.block_id];
  const label = el(
    "label",
    { class: "input-label" },
    textObject(block.label, ctx.names),
    block.optional ? el("span", { class: "optional" }, " (optional)") : null,
  );
  const hint = block.hint ? el("div", { class: "hint" }, textObject(block.hint, ctx.names)) : null;
  const errorNode = el("div", { class: "input-error", role: "alert", hidden: !error }, error || "");
  const node = el(
    "div",
    { class: `block block-input${error ? " has-error" : ""}`, dataset: { blockId: block.block_id || "" } },
    label,
    control(block.element || {}, block, ctx, { input: true }),
    hint,
    errorNode,
  );
  if (ctx.form && block.element) {
    const entry = ctx.form.get(block.element.action_id);
    if (entry) Object.assign(entry, { block, optional: Boolean(block.optional), errorNode, wrapper: node });
  }
  return node;
}

const BLOCKS = {
  section,
  context,
  image,
  input,
  header: (block, ctx) => el("div", { class: "block block-header" }, textObject(block.text, ctx.names)),
  divider: () => el("hr", { class: "block block-divider" }),
  actions: (block, ctx) =>
    el(
      "div",
      { class: "block block-actions" },
      (block.elements || []).map((e) => control(e, block, ctx)),
    ),
  rich_text: (block, ctx) =>
    el(
      "div",
      { class: "block block-rich" },
      (block.elements || []).map((e) => richElement(e, ctx)),
    ),
  markdown: (block, ctx) => el("div", { class: "block block-markdown" }, mrkdwn(block.text || "", ctx.names)),
  file: (block) => el("div", { class: "block block-file" }, `📎 file ${block.external_id || ""}`),
  video: (block, ctx) =>
    el(
      "div",
      { class: "block block-video" },
      el(
        "a",
        { href: block.video_url, target: "_blank", rel: "noopener noreferrer" },
        block.title ? block.title.text : "video",
      ),
    ),
};

export function renderBlocks(blocks, ctx) {
  return el(
    "div",
    { class: "blocks" },
    (blocks || []).map((block) => {
      const render = BLOCKS[block.type];
      return render
        ? render(block, ctx)
        : el("div", { class: "block unsupported" }, `[unsupported block: ${block.type}]`);
    }),
  );
}

// Legacy attachments: the colour bar, pretext, title, text and fields.
export function renderAttachments(attachments, ctx) {
  return (attachments || []).map((a) => {
    const bar = el("div", { class: "attachment" });
    const colour = /^#?[0-9a-f]{3,8}$/i.test(a.color || "")
      ? a.color.startsWith("#")
        ? a.color
        : `#${a.color}`
      : { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" }[a.color];
    if (colour) bar.style.borderLeftColor = colour;
    if (a.pretext) bar.append(mrkdwn(a.pretext, ctx.names));
    if (a.title) bar.append(el("div", { class: "attachment-title" }, decode(a.title)));
    if (a.text) bar.append(mrkdwn(a.text, ctx.names));
    if (a.fields)
      bar.append(
        el(
          "div",
          { class: "fields" },
          a.fields.map((f) =>
            el("div", { class: "field" }, el("b", {}, f.title || ""), mrkdwn(f.value || "", ctx.names)),
          ),
        ),
      );
    if (a.blocks) bar.append(renderBlocks(a.blocks, ctx));
    return bar;
  });
}
