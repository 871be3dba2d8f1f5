// The world panel: each tenant's live SLIs and settings with a control to stage a breach,
// and the faults the sandbox can cause. Controls are built once; numbers update in place.

import { append, clear, el } from "./dom.js";

const SLO = { escalation_ratio: 0.02, signature_error_ratio: 0.01 };
const SLI_NAMES = { escalation_ratio: "escalations", signature_error_ratio: "signature errors" };

function percent(value) {
  return `${(value * 100).toFixed(value >= 0.1 ? 1 : 2)}%`;
}

export class WorldPanel {
  // hands: {breach(tenant, scenario), fault(body)}
  constructor(root, hands) {
    this.root = root;
    this.hands = hands;
    this.cards = new Map();
    this.faultsNode = null;
    this.built = false;
  }

  update(status) {
    if (!status.tenants) {
      clear(this.root).append(el("p", { class: "muted" }, "No world: this page runs on a bare Slack emulator."));
      return;
    }
    if (!this.built) this.build(status);
    for (const tenant of status.tenants) this.updateCard(tenant);
    this.updateFaults(status.faults);
  }

  build(status) {
    this.built = true;
    const tenants = el("div", { class: "tenants" });
    for (const tenant of status.tenants) {
      const stats = el("div", { class: "tenant-stats" });
      const config = el("div", { class: "tenant-config" });
      const scenario = el(
        "select",
        { class: "select select-small", "aria-label": `scenario for ${tenant.id}` },
        status.scenarios.map((s) => el("option", { value: s }, s)),
      );
      const stage = el(
        "button",
        { class: "btn btn-default btn-small", type: "button", dataset: { breach: tenant.id } },
        "Stage",
      );
      stage.addEventListener("click", () => this.hands.breach(tenant.id, scenario.value));
      const card = el(
        "div",
        { class: "tenant", dataset: { tenant: tenant.id } },
        el(
          "div",
          { class: "tenant-head" },
          el("b", { class: "tenant-name" }, tenant.id),
          el(
            "span",
            { class: `tag scenario-${tenant.scenario}` },
            tenant.scenario === "none" ? "healthy" : tenant.scenario,
          ),
          el("span", { class: "muted" }, tenant.region),
        ),
        stats,
        config,
        el("div", { class: "tenant-controls" }, el("span", { class: "muted" }, "breach"), scenario, stage),
      );
      this.cards.set(tenant.id, { card, stats, config });
      tenants.append(card);
    }
    this.faultsNode = el("div", { class: "faults" });
    clear(this.root).append(
      el("h3", { class: "panel-title" }, "Tenants ", el("span", { class: "muted" }, "· live SLIs (now / 5 min)")),
      tenants,
      el("h3", { class: "panel-title" }, "Faults"),
      this.faultsNode,
    );
    this.buildFaults(status.faults);
  }

  updateCard(tenant) {
    const found = this.cards.get(tenant.id);
    if (!found) return;
    found.card.classList.toggle("breaching", tenant.breaching.length > 0);
    append(clear(found.stats), [
      ...Object.keys(SLO).map((name) => {
        const over = tenant.breaching.includes(name);
        return el(
          "div",
          { class: `sli${over ? " over" : ""}`, dataset: { sli: name } },
          el("span", { class: "sli-name" }, SLI_NAMES[name]),
          el("span", { class: "sli-value" }, `${percent(tenant.now[name])} / ${percent(tenant.window[name])}`),
          el("span", { class: "muted" }, ` SLO ${percent(SLO[name])}`),
        );
      }),
      el(
        "div",
        { class: "sli" },
        el("span", { class: "sli-name" }, "ingest"),
        el("span", { class: "sli-value" }, `${tenant.ingest_rps.toFixed(1)} rps`),
      ),
      tenant.quota_exceeded_rps
        ? el(
            "div",
            { class: "sli over" },
            el("span", { class: "sli-name" }, "over quota"),
            el("span", { class: "sli-value" }, `${tenant.quota_exceeded_rps.toFixed(1)} rps`),
          )
        : null,
    ]);
    clear(found.config).append(
      ...Object.entries(tenant.config).map(([k, v]) => el("span", { class: "chip", title: k }, `${k}=${v}`)),
    );
  }

  buildFaults(faults) {
    const node = this.faultsNode;
    const segmented = (kind, label) => {
      const group = el("div", { class: "segmented", role: "group", "aria-label": label, dataset: { fault: kind } });
      for (const [mode, text] of [
        [null, "ok"],
        ["500", "500"],
        ["garbage", "garbage"],
        ["hang", "hang"],
      ]) {
        const b = el("button", { class: "seg", type: "button", dataset: { mode: mode ?? "ok" } }, text);
        b.addEventListener("click", () => this.hands.fault({ kind, mode }));
        group.append(b);
      }
      return el("div", { class: "fault-row" }, el("span", { class: "fault-name" }, label), group);
    };
    const toggle = (label, data, onChange) => {
      const box = el("input", { type: "checkbox", dataset: data });
      box.addEventListener("change", () => onChange(box.checked));
      return el("label", { class: "fault-row toggle" }, box, el("span", {}, label));
    };
    const method = el(
      "select",
      { class: "select select-small", "aria-label": "Slack method" },
      faults.slack.methods.map((m) => el("option", { value: m }, m)),
    );
    const count = el("input", {
      class: "text-input count",
      type: "number",
      min: 1,
      max: 50,
      value: 3,
      "aria-label": "how many calls",
    });
    const fail = el(
      "button",
      { class: "btn btn-default btn-small", type: "button", dataset: { fault: "slack" } },
      "Fail next",
    );
    fail.addEventListener("click", () =>
      this.hands.fault({ kind: "slack", method: method.value, count: Number(count.value) }),
    );
    this.slackFailing = el("div", { class: "muted slack-failing" });
    node.append(
      segmented("admin", "Backend admin API"),
      segmented("metrics", "Backend /metrics"),
      ...faults.rbac.map((r) =>
        toggle(`Kubernetes RBAC: deny ${r.verb} ${r.resource}`, { rbac: `${r.verb} ${r.resource}` }, (on) =>
          this.hands.fault({ kind: "rbac", verb: r.verb, resource: r.resource, on }),
        ),
      ),
      toggle(`Kubernetes API stalled (${faults.kube_stall.resources.join(", ")})`, { fault: "kube_stall" }, (on) =>
        this.hands.fault({ kind: "kube_stall", on }),
      ),
      toggle("Grafana answers 500", { fault: "grafana" }, (on) => this.hands.fault({ kind: "grafana", on })),
      el("div", { class: "fault-row" }, el("span", { class: "fault-name" }, "Slack 500s"), method, count, fail),
      this.slackFailing,
    );
  }

  updateFaults(faults) {
    const node = this.faultsNode;
    for (const kind of ["admin", "metrics"]) {
      for (const b of node.querySelectorAll(`[data-fault="${kind}"] .seg`)) {
        b.classList.toggle("on", b.dataset.mode === (faults[kind] ?? "ok"));
      }
    }
    for (const r of faults.rbac) {
      const box = node.querySelector(`input[data-rbac="${r.verb} ${r.resource}"]`);
      box.checked = r.on;
      box.disabled = r.from_spec;
    }
    node.querySelector('input[data-fault="kube_stall"]').checked = faults.kube_stall.on;
    node.querySelector('input[data-fault="grafana"]').checked = faults.grafana;
    const failing = Object.entries(faults.slack.failing);
    this.slackFailing.textContent = failing.length
      ? `next calls answering 500: ${failing.map(([m, n]) => `${m} ×${n}`).join(", ")}`
      : "";
  }
}
