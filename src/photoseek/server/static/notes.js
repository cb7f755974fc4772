// The notes editor of the detail view: your description and tags of one photo, both searchable.

import { request } from "./api.js";

const $ = (id) => document.getElementById(id);

export class NotesEditor {
  /** `onSaved()` runs after a save (the caller may refresh what it shows). */
  constructor({ onSaved }) {
    this.imageId = null;
    this.tags = [];
    this.onSaved = onSaved;
    $("notes-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    $("note-tag-input").addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== ",") return;
      event.preventDefault();
      this.addTyped();
    });
    $("note-tags").addEventListener("click", (event) => {
      const remove = event.target.closest("button[data-tag]");
      if (!remove) return;
      this.tags = this.tags.filter((t) => t !== remove.dataset.tag);
      this.render();
      this.say("Not saved yet");
    });
    $("note-description").addEventListener("input", () => this.say("Not saved yet"));
  }

  async load(imageId) {
    this.imageId = imageId;
    this.tags = [];
    $("note-description").value = "";
    $("note-tag-input").value = "";
    this.render();
    this.say("");
    try {
      const notes = await request(`/api/images/${imageId}/notes`);
      if (this.imageId !== imageId) return;
      $("note-description").value = notes.description;
      this.tags = notes.tags;
      this.render();
    } catch (error) {
      if (this.imageId === imageId) this.say(error.message);
    }
  }

  addTyped() {
    const typed = $("note-tag-input").value.split(",").map((t) => t.trim()).filter(Boolean);
    for (const tag of typed) if (!this.tags.includes(tag)) this.tags.push(tag);
    $("note-tag-input").value = "";
    this.render();
    if (typed.length) this.say("Not saved yet");
  }

  async save() {
    this.addTyped();
    const imageId = this.imageId;
    $("note-save").disabled = true;
    try {
      const notes = await request(`/api/images/${imageId}/notes`, {
        method: "POST", json: { description: $("note-description").value, tags: this.tags },
      });
      if (this.imageId !== imageId) return;
      this.tags = notes.tags;
      this.render();
      this.say("Saved");
      this.onSaved(imageId);
    } catch (error) {
      if (this.imageId === imageId) this.say(error.message);
    } finally {
      $("note-save").disabled = false;
    }
  }

  render() {
    $("note-tags").replaceChildren(...this.tags.map((tag) => {
      const item = document.createElement("li");
      item.textContent = tag;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.dataset.tag = tag;
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove tag ${tag}`);
      item.append(remove);
      return item;
    }));
  }

  say(text) {
    $("note-status").textContent = text;
  }
}
