// The results grid: thumbnail tiles, month headers on the timeline, infinite scroll,
// arrow-key navigation and multi-select.

const $ = (id) => document.getElementById(id);
const MONTH = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" });

export class ResultGrid {
  /** `onOpen(index)` opens a result; `onNeedMore()` asks for the next page; `onSelect(hits)` hears
   * every change of the selection. */
  constructor({ onOpen, onNeedMore, onLeave, onSelect }) {
    this.list = $("grid");
    this.onOpen = onOpen;
    this.onLeave = onLeave;
    this.onSelect = onSelect;
    this.results = [];
    this.selected = new Map(); // id -> hit
    this.anchor = -1; // the last tile picked, for shift-click ranges
    this.focus = -1;
    this.month = null;
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) onNeedMore();
    }, { rootMargin: "800px" }).observe($("sentinel"));
    this.list.addEventListener("click", (event) => {
      const tile = event.target.closest(".tile");
      if (!tile) return;
      const index = Number(tile.dataset.index);
      if (event.target.closest(".pick") || event.ctrlKey || event.metaKey || event.shiftKey || this.selected.size) {
        event.preventDefault();
        this.pick(index, event.shiftKey);
      } else {
        this.onOpen(index);
      }
    });
    this.list.addEventListener("keydown", (event) => this.keydown(event));
  }

  clear() {
    this.results = [];
    this.focus = -1;
    this.month = null;
    this.list.replaceChildren();
    this.clearSelection();
  }

  /** Add a page; with `months`, a header goes before the first photo of each month (by `captured`). */
  append(results, { months = false } = {}) {
    const start = this.results.length;
    this.results.push(...results);
    const fragment = document.createDocumentFragment();
    results.forEach((hit, i) => {
      if (months) {
        const month = (hit.captured ?? "").slice(0, 7);
        if (month !== this.month) {
          this.month = month;
          fragment.append(monthHeader(hit.captured));
        }
      }
      fragment.append(tile(hit, start + i));
    });
    this.list.append(fragment);
    if (start === 0 && results.length) this.tiles()[0].tabIndex = 0;
  }

  tiles() {
    return this.list.querySelectorAll(".tile");
  }

  focusTile(index) {
    const tiles = this.tiles();
    if (!tiles.length) return;
    index = Math.max(0, Math.min(index, tiles.length - 1));
    if (this.focus >= 0 && tiles[this.focus]) tiles[this.focus].tabIndex = -1;
    this.focus = index;
    tiles[index].tabIndex = 0;
    tiles[index].focus();
    tiles[index].scrollIntoView({ block: "nearest" });
  }

  /** Toggle one photo in the selection, or (with `range`) select every photo from the last one picked. */
  pick(index, range = false) {
    const tiles = this.tiles();
    const indexes = range && this.anchor >= 0
      ? Array.from({ length: Math.abs(index - this.anchor) + 1 }, (_, i) => Math.min(index, this.anchor) + i)
      : [index];
    const select = range || !this.selected.has(this.results[index].id);
    for (const i of indexes) {
      const hit = this.results[i];
      if (select) this.selected.set(hit.id, hit);
      else this.selected.delete(hit.id);
      tiles[i].classList.toggle("selected", select);
      tiles[i].setAttribute("aria-selected", String(select));
    }
    this.anchor = index;
    this.list.classList.toggle("selecting", this.selected.size > 0);
    this.onSelect([...this.selected.values()]);
  }

  clearSelection() {
    for (const node of this.list.querySelectorAll(".tile.selected")) {
      node.classList.remove("selected");
      node.setAttribute("aria-selected", "false");
    }
    this.selected.clear();
    this.anchor = -1;
    this.list.classList.remove("selecting");
    this.onSelect([]);
  }

  /** Whether the end of the list is on screen or close, so another page should load. */
  nearEnd() {
    return document.getElementById("sentinel").getBoundingClientRect().top < innerHeight + 800;
  }

  columns() {
    return getComputedStyle(this.list).gridTemplateColumns.split(" ").length;
  }

  keydown(event) {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const index = Number(tile.dataset.index);
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.columns(), ArrowUp: -this.columns() };
    if (event.key in moves) {
      event.preventDefault();
      const target = index + moves[event.key];
      if (target < 0) this.onLeave();
      else this.focusTile(target);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.onOpen(index);
    } else if (event.key.toLowerCase() === "x" && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      this.pick(index, event.shiftKey);
    } else if (event.key === "Home") {
      event.preventDefault();
      this.focusTile(0);
    } else if (event.key === "End") {
      event.preventDefault();
      this.focusTile(this.results.length - 1);
    }
  }
}

function monthHeader(captured) {
  const item = document.createElement("li");
  item.className = "month";
  item.setAttribute("role", "heading");
  item.setAttribute("aria-level", "2");
  const date = new Date(`${(captured ?? "").slice(0, 7)}-01T00:00:00Z`);
  item.textContent = Number.isNaN(date.getTime()) ? "Undated" : MONTH.format(date);
  return item;
}

function tile(hit, index) {
  const item = document.createElement("li");
  item.className = "tile";
  item.tabIndex = -1;
  item.dataset.index = index;
  item.dataset.id = hit.id;
  item.setAttribute("role", "button");
  item.setAttribute("aria-selected", "false");
  const scored = hit.score !== undefined;
  item.setAttribute("aria-label", scored ? `${hit.name}, score ${hit.score.toFixed(3)}` : hit.name);
  const img = document.createElement("img");
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = hit.name;
  img.src = `/thumbs/${hit.id}?size=512`;
  img.addEventListener("load", () => img.classList.add("loaded"));
  img.addEventListener("error", () => {
    item.classList.add("broken");
    item.replaceChildren(`${hit.name} is no longer available`);
  });
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "pick";
  pick.tabIndex = -1;
  pick.setAttribute("aria-label", `Select ${hit.name}`);
  pick.innerHTML = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="m5 12 5 5 9-10"/></svg>';
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("span");
  name.textContent = hit.name;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = scored ? hit.score.toFixed(3) : (hit.captured ?? "").slice(0, 10);
  meta.append(name, score);
  item.append(img, pick, meta);
  return item;
}
