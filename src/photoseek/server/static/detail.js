// The detail view: a large image, its metadata and text signals, your notes, browsing and "find similar".

import { request } from "./api.js";
import { NotesEditor } from "./notes.js";

const $ = (id) => document.getElementById(id);

export class DetailView {
  /** `results()` gives the current hits; `onSimilar(hit)` searches like one; `onNeedMore()` loads a page. */
  constructor({ results, onSimilar, onNeedMore, onClose }) {
    this.dialog = $("detail");
    this.results = results;
    this.onNeedMore = onNeedMore;
    this.index = -1;
    this.notes = new NotesEditor({ onSaved: (id) => this.refreshSignals(id) });
    $("detail-close").addEventListener("click", () => this.dialog.close());
    $("detail-prev").addEventListener("click", () => this.show(this.index - 1));
    $("detail-next").addEventListener("click", () => this.step(1));
    $("detail-similar").addEventListener("click", () => {
      const hit = this.results()[this.index];
      this.dialog.close();
      onSimilar(hit);
    });
    this.dialog.addEventListener("close", () => onClose(this.index));
    this.dialog.addEventListener("click", (event) => {
      if (event.target === this.dialog) this.dialog.close();
    });
    this.dialog.addEventListener("keydown", (event) => {
      if (event.target.closest("input, a, textarea")) return;
      if (event.key === "ArrowLeft") this.show(this.index - 1);
      else if (event.key === "ArrowRight") this.step(1);
      else if (event.key.toLowerCase() === "s" && !event.ctrlKey && !event.metaKey) $("detail-similar").click();
    });
  }

  async step(delta) {
    const target = this.index + delta;
    if (target >= this.results().length) await this.onNeedMore();
    this.show(target);
  }

  async show(index) {
    const results = this.results();
    if (index < 0 || index >= results.length) return;
    this.index = index;
    const hit = results[index];
    if (!this.dialog.open) this.dialog.showModal();
    $("detail-prev").hidden = index === 0;
    $("detail-next").hidden = index === results.length - 1;
    const img = $("detail-img");
    img.src = `/thumbs/${hit.id}?size=1280`;
    img.alt = hit.name;
    $("detail-name").textContent = hit.name;
    $("detail-path").textContent = hit.path;
    $("detail-open").href = `/files/${hit.id}`;
    this.fillMeta(hit, null);
    $("detail-signals").hidden = true;
    $("detail-similar").focus();
    this.notes.load(hit.id);
    try {
      const info = await request(`/api/images/${hit.id}`);
      if (this.index === index) this.fillMeta(hit, info);
    } catch (error) {
      if (this.index === index) this.fillMeta(hit, null, error.message);
    }
  }

  /** After the notes were saved: the text signals shown include them. */
  async refreshSignals(id) {
    const hit = this.results()[this.index];
    if (hit?.id !== id) return;
    try {
      const info = await request(`/api/images/${id}`);
      if (this.results()[this.index]?.id === id) this.fillMeta(hit, info);
    } catch {
      // the notes were saved; the list of texts refreshes next time
    }
  }

  fillMeta(hit, info, problem) {
    const rows = [
      ...(hit.score === undefined ? [] : [["Score", hit.score.toFixed(4)]]),
      ["Taken", formatDate(hit.taken_at) ?? (info ? `${formatDate(info.modified_at)} (file date)` : "—")],
      ["Camera", hit.camera ?? "—"],
      ["Size", `${hit.width} × ${hit.height} px${info ? ` · ${formatBytes(info.size_bytes)}` : ""}`],
      ["Format", hit.format.toUpperCase()],
    ];
    if (info) rows.push(["Folder", info.folder]);
    if (hit.place || hit.latitude != null) rows.push(["Place", placeText(hit)]);
    if (hit.rating != null) rows.push(["Rating", hit.rating < 0 ? "Rejected" : "★".repeat(hit.rating) || "Not rated"]);
    if (hit.label) rows.push(["Label", hit.label]);
    if (hit.matched_text) rows.push(["Matched", hit.matched_text]);
    if (problem) rows.push(["Note", problem]);
    $("detail-meta").replaceChildren(...rows.flatMap(([k, v]) => [element("dt", k), element("dd", v)]));
    const signals = Object.entries(info?.text_signals ?? {}).filter(([, v]) => v);
    $("detail-signals").hidden = signals.length === 0;
    $("detail-signal-list").replaceChildren(...signals.flatMap(([k, v]) => [element("dt", label(k)), element("dd", v)]));
  }
}

function placeText(hit) {
  const where = hit.latitude != null ? `${hit.latitude.toFixed(5)}, ${hit.longitude.toFixed(5)}` : "";
  return hit.place ? (where ? `${hit.place} (${where})` : hit.place) : where;
}

function element(tag, text) {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

function label(key) {
  return key.charAt(0).toUpperCase() + key.slice(1).replaceAll("_", " ");
}

function formatDate(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const withTime = iso.length > 10;
  return date.toLocaleString(undefined, withTime ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" });
}

function formatBytes(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}
