// The duplicates view: groups side by side (keeper first), choose copies, move them aside after confirming.

import { queryString, request } from "./api.js";

const $ = (id) => document.getElementById(id);

function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} KB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export class DuplicatesView {
  /** `onMoved()` runs after files moved, to refresh counts and results. */
  constructor({ onMoved }) {
    this.dialog = $("duplicates");
    this.onMoved = onMoved;
    this.groups = [];
    this.moveTo = "";
    this.lastManifest = null;
    $("duplicates-close").addEventListener("click", () => this.dialog.close());
    $("dup-find").addEventListener("click", () => this.load());
    $("dup-move").addEventListener("click", () => this.confirm());
    $("dup-cancel").addEventListener("click", () => { $("dup-confirm").hidden = true; });
    $("dup-confirm-move").addEventListener("click", () => this.move());
    $("dup-undo").addEventListener("click", () => this.undo());
  }

  open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.load();
  }

  async load() {
    $("dup-confirm").hidden = true;
    $("dup-groups").replaceChildren();
    $("dup-summary").textContent = "Looking for duplicates…";
    try {
      const answer = await request(`/api/duplicates?${queryString({ tier: $("dup-tier").value })}`);
      this.groups = answer.groups;
      this.moveTo = answer.move_to;
      this.render();
    } catch (error) {
      $("dup-summary").textContent = error.message;
    }
  }

  render() {
    const copies = this.groups.reduce((n, g) => n + g.members.length - 1, 0);
    $("dup-summary").textContent = this.groups.length
      ? `${this.groups.length} group${this.groups.length === 1 ? "" : "s"}, ${copies} cop${copies === 1 ? "y" : "ies"} besides the suggested keepers. Checked copies can be moved to ${this.moveTo}.`
      : "No duplicates found.";
    $("dup-groups").replaceChildren(...this.groups.map((group) => this.renderGroup(group)));
    this.updateButton();
  }

  renderGroup(group) {
    const keeperId = group.members[0].id;
    const names = new Map(group.members.map((m) => [m.id, m.name]));
    const cards = group.members.map((m) => {
      // Exact and near copies start checked; similar shots (bursts) only when picked, as in the CLI.
      const box = el("input", { type: "checkbox", checked: m.suggested, className: "dup-pick" });
      box.dataset.id = m.id;
      box.setAttribute("aria-label", `Move ${m.name}`);
      box.addEventListener("change", () => this.updateButton());
      const img = el("img", { src: `/thumbs/${m.id}?size=256`, alt: m.name, loading: "lazy" });
      const tie = m.copy_of === keeperId ? `${m.tier} copy of the keeper` : `${m.tier} copy of ${names.get(m.copy_of)}`;
      const badge = m.keeper
        ? el("span", { className: "dup-keeper", textContent: "Keep" })
        : el("span", { className: "dup-tier", textContent: m.copy_of === keeperId ? m.tier : `${m.tier} ↔ ${names.get(m.copy_of)}`, title: tie });
      return el("li", { className: m.keeper ? "dup-card keeper" : "dup-card" }, [
        el("div", { className: "dup-thumb" }, [img, badge]),
        el("label", { className: "dup-name" }, [box, el("span", { textContent: m.name, title: m.path })]),
        el("span", { className: "muted", textContent: `${m.width}×${m.height} · ${formatBytes(m.bytes)} · ${m.format}` }),
        el("span", { className: "muted", textContent: m.taken.slice(0, 16).replace("T", " ") }),
        el("span", { className: "path", textContent: m.path }),
      ]);
    });
    return el("section", { className: "dup-group" }, [
      el("h3", { textContent: `Group ${group.group} · ${group.tier}` }, [el("span", { className: "muted", textContent: ` — keeper: ${group.reason}` })]),
      el("ul", { className: "dup-row" }, cards),
    ]);
  }

  chosen() {
    return [...this.dialog.querySelectorAll(".dup-pick:checked")].map((box) => Number(box.dataset.id));
  }

  updateButton() {
    const n = this.chosen().length;
    $("dup-move").disabled = n === 0;
    $("dup-move").textContent = n ? `Move ${n} selected…` : "Move selected…";
  }

  confirm() {
    const n = this.chosen().length;
    $("dup-confirm-text").textContent = `Move ${n} file${n === 1 ? "" : "s"} to ${this.moveTo}? Folders are kept; nothing is deleted, and Undo puts them back.`;
    $("dup-confirm").hidden = false;
    $("dup-confirm-move").focus();
  }

  async move() {
    $("dup-confirm").hidden = true;
    try {
      const result = await request("/api/duplicates/move", { method: "POST", json: { ids: this.chosen(), tier: $("dup-tier").value } });
      this.lastManifest = result.manifest;
      $("dup-undo").hidden = !result.manifest;
      await this.load();
      $("dup-summary").textContent = `Moved ${result.moved.length} file${result.moved.length === 1 ? "" : "s"}` +
        (result.skipped.length ? `; ${result.skipped.length} left alone (${result.skipped[0].reason}).` : ".") + " " + $("dup-summary").textContent;
      this.onMoved();
    } catch (error) {
      $("dup-summary").textContent = error.message;
    }
  }

  async undo() {
    if (!this.lastManifest) return;
    try {
      const result = await request("/api/duplicates/undo", { method: "POST", json: { manifest: this.lastManifest } });
      this.lastManifest = null;
      $("dup-undo").hidden = true;
      await this.load();
      $("dup-summary").textContent = `Moved ${result.moved.length} back. ` + $("dup-summary").textContent;
      this.onMoved();
    } catch (error) {
      $("dup-summary").textContent = error.message;
    }
  }
}
