// Modals (views.open / views.update / pushed views) and confirm dialogs.
//
// The top open view of the person is shown; its inputs are read on Submit and sent as a
// view_submission; `response_action: errors` come back as messages under their inputs.
// Slack itself refuses to submit an empty required input, and so does this page.

import { clear, el } from "./dom.js";
import { renderBlocks } from "./blocks.js";
import { textObject } from "./mrkdwn.js";

const REQUIRED = "Please complete this required field.";

export function confirmDialog(dialog, names) {
  // Resolves true when the person presses the dialog's confirm button.
  return new Promise((resolve) => {
    const done = (answer) => {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
      resolve(answer);
    };
    const onKey = (event) => event.key === "Escape" && done(false);
    const style = dialog.style === "danger" ? "btn-danger" : "btn-primary";
    const box = el(
      "div",
      { class: "dialog", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "dialog-title" },
      el(
        "h2",
        { id: "dialog-title", class: "dialog-title" },
        textObject(dialog.title || { text: "Are you sure?" }, names),
      ),
      el("div", { class: "dialog-text" }, textObject(dialog.text || { text: "" }, names)),
      el(
        "div",
        { class: "dialog-buttons" },
        el(
          "button",
          { class: "btn btn-default", type: "button", onclick: () => done(false) },
          textObject(dialog.deny || { text: "Cancel" }, names),
        ),
        el(
          "button",
          { class: `btn ${style} dialog-confirm`, type: "button", onclick: () => done(true) },
          textObject(dialog.confirm || { text: "Yes" }, names),
        ),
      ),
    );
    const overlay = el(
      "div",
      { class: "overlay dialog-overlay", onclick: (e) => e.target === overlay && done(false) },
      box,
    );
    document.addEventListener("keydown", onKey);
    document.body.append(overlay);
    box.querySelector(".dialog-confirm").focus();
  });
}

function empty(value) {
  return value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0);
}

export class ModalLayer {
  // hands: {names(), fileUrl(id), act(element, block, value, viewId), submit(viewId, values), close(viewId)}
  constructor(root, hands) {
    this.root = root;
    this.hands = hands;
    this.shown = null; // "id hash" of the view on screen
    this.form = new Map();
    // Built views by "id hash": a view under a pushed one keeps what was typed in it.
    this.built = new Map();
  }

  show(views) {
    const open = new Set(views.map((v) => `${v.id} ${v.view.hash}`));
    for (const key of this.built.keys()) if (!open.has(key)) this.built.delete(key);
    const top = [...views].sort((a, b) => a.opened_at - b.opened_at).at(-1);
    if (!top) {
      this.shown = null;
      clear(this.root).hidden = true;
      return;
    }
    const key = `${top.id} ${top.view.hash}`;
    const errors = JSON.stringify(top.errors || {});
    if (key === this.shown && errors === this.errorsShown) return; // keep Slack's own "required" notes
    this.errorsShown = errors;
    if (key !== this.shown) {
      if (!this.built.has(key)) this.built.set(key, this.render(top, views.length));
      const { overlay, form } = this.built.get(key);
      this.form = form;
      clear(this.root).append(overlay);
      this.root.hidden = false;
      this.shown = key;
      const first = overlay.querySelector(".modal-body input, .modal-body textarea, .modal-body select");
      if (first) first.focus();
    }
    this.showErrors(top.errors || {});
  }

  render(top, depth) {
    const view = top.view;
    const entries = new Map();
    const ctx = {
      names: this.hands.names(),
      fileUrl: this.hands.fileUrl,
      act: (element, block, value) => this.hands.act(element, block, value, top.id),
      confirm: (dialog) => confirmDialog(dialog, ctx.names),
      form: entries,
      state: (view.state || {}).values || {},
      errors: top.errors || {},
    };
    const submitButton = view.submit
      ? el("button", { class: "btn btn-primary modal-submit", type: "submit" }, textObject(view.submit, ctx.names))
      : null;
    const closeText = view.close || { type: "plain_text", text: "Cancel" };
    const form = el(
      "form",
      {
        class: "modal",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": "modal-title",
        dataset: { viewId: top.id, callbackId: view.callback_id || "" },
      },
      el(
        "header",
        { class: "modal-header" },
        el("h2", { id: "modal-title", class: "modal-title" }, textObject(view.title || { text: "" }, ctx.names)),
        depth > 1 ? el("span", { class: "modal-depth", title: "stacked views" }, `${depth} views`) : null,
        el(
          "button",
          { class: "modal-x", type: "button", title: "Close", onclick: () => this.hands.close(top.id) },
          "×",
        ),
      ),
      el("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
      el(
        "footer",
        { class: "modal-footer" },
        el("span", { class: "modal-status", role: "status" }),
        el(
          "button",
          { class: "btn btn-default modal-cancel", type: "button", onclick: () => this.hands.close(top.id) },
          textObject(closeText, ctx.names),
        ),
        submitButton,
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(top.id, form, submitButton);
    });
    return { overlay: el("div", { class: "overlay" }, form), form: entries };
  }

  showErrors(errors) {
    for (const entry of this.form.values()) {
      if (!entry.errorNode) continue;
      const message = errors[entry.block.block_id];
      entry.errorNode.textContent = message || "";
      entry.errorNode.hidden = !message;
      entry.wrapper.classList.toggle("has-error", Boolean(message));
    }
  }

  async submit(viewId, form, submitButton) {
    const values = {};
    const missing = {};
    for (const [actionId, entry] of this.form) {
      const value = entry.value();
      const min = entry.element.min_length;
      if (!entry.optional && empty(value)) missing[entry.block.block_id] = REQUIRED;
      else if (min && typeof value === "string" && value.length < min)
        missing[entry.block.block_id] = `Must be at least ${min} characters.`;
      values[actionId] = value;
    }
    this.showErrors(missing);
    if (Object.keys(missing).length) return;
    const status = form.querySelector(".modal-status");
    status.textContent = "";
    if (submitButton) submitButton.disabled = true;
    try {
      const answer = await this.hands.submit(viewId, values);
      if (answer.errors && Object.keys(answer.errors).length) this.showErrors(answer.errors);
      if (answer.error) status.textContent = `We had some trouble connecting (${answer.error}).`;
    } finally {
      if (submitButton) submitButton.disabled = false;
    }
  }
}
