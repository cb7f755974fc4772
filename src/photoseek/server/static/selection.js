// What a selection of photos can become: their paths on the clipboard, a zip download,
// a tag on each, or an album (a folder of links the server makes in its album folder).

import { queryString, request } from "./api.js";

const $ = (id) => document.getElementById(id);
const FORMS = {
  tag: { placeholder: "Tag for the selected photos", submit: "Add tag" },
  album: { placeholder: "Album name", submit: "Save album" },
};

export class SelectionBar {
  /** `onClear()` empties the grid's selection. */
  constructor({ onClear }) {
    this.hits = [];
    this.mode = null;
    $("sel-clear").addEventListener("click", onClear);
    $("sel-copy").addEventListener("click", () => this.copy());
    $("sel-zip").addEventListener("click", () => this.download());
    $("sel-tag").addEventListener("click", () => this.ask("tag"));
    $("sel-album").addEventListener("click", () => this.ask("album"));
    $("sel-cancel").addEventListener("click", () => this.ask(null));
    $("sel-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  update(hits) {
    this.hits = hits;
    $("selection-bar").hidden = hits.length === 0;
    $("selection-count").textContent = `${hits.length.toLocaleString()} selected`;
    if (!hits.length) this.ask(null);
    this.say("");
  }

  async copy() {
    const text = this.hits.map((h) => h.path).join("\n");
    const copied = `Copied ${this.hits.length} path${this.hits.length === 1 ? "" : "s"}`;
    try {
      await navigator.clipboard.writeText(text);
      this.say(copied);
    } catch {
      // Not a secure context (a plain-HTTP address on the network): the older way still works there.
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      this.say(done ? copied : "The browser would not copy: select the photos' paths from the detail view instead.");
    }
  }

  download() {
    const link = document.createElement("a");
    link.href = `/files/selection.zip?${queryString({ id: this.hits.map((h) => h.id) })}`;
    link.download = "";
    document.body.append(link);
    link.click();
    link.remove();
    this.say("Downloading…");
  }

  ask(mode) {
    this.mode = mode;
    const form = FORMS[mode];
    $("sel-form").hidden = !form;
    if (!form) return;
    $("sel-input").value = "";
    $("sel-input").placeholder = form.placeholder;
    $("sel-input").setAttribute("aria-label", form.placeholder);
    $("sel-submit").textContent = form.submit;
    $("sel-input").focus();
  }

  async submit() {
    const value = $("sel-input").value.trim();
    if (!value || !FORMS[this.mode]) return;
    const ids = this.hits.map((h) => h.id);
    const count = `${ids.length} photo${ids.length === 1 ? "" : "s"}`;
    try {
      if (this.mode === "tag") {
        await request("/api/tags", { method: "POST", json: { ids, add: [value] } });
        this.say(`Tagged ${count} “${value}”`);
      } else {
        const album = await request("/api/albums", { method: "POST", json: { name: value, ids } });
        const problems = album.failed.length ? ` · ${album.failed.length} could not be linked` : "";
        this.say(`Saved ${count} to ${album.folder}${problems}`);
      }
      this.ask(null);
    } catch (error) {
      this.say(error.message);
    }
  }

  say(text) {
    $("sel-message").textContent = text;
  }
}
