// The results grid: thumbnail tiles, infinite scroll and arrow-key navigation.

const $ = (id) => document.getElementById(id);

export class ResultGrid {
  /** `onOpen(index)` opens a result; `onNeedMore()` asks for the next page. */
  constructor({ onOpen, onNeedMore, onLeave }) {
    this.list = $("grid");
    this.onOpen = onOpen;
    this.onLeave = onLeave;
    this.results = [];
    this.focus = -1;
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) onNeedMore();
    }, { rootMargin: "800px" }).observe($("sentinel"));
    this.list.addEventListener("click", (event) => {
      const tile = event.target.closest(".tile");
      if (tile) this.onOpen(Number(tile.dataset.index));
    });
    this.list.addEventListener("keydown", (event) => this.keydown(event));
  }

  clear() {
    this.results = [];
    this.focus = -1;
    this.list.replaceChildren();
  }

  append(results) {
    const start = this.results.length;
    this.results.push(...results);
    const fragment = document.createDocumentFragment();
    results.forEach((hit, i) => fragment.append(tile(hit, start + i)));
    this.list.append(fragment);
    if (start === 0 && results.length) this.list.firstElementChild.tabIndex = 0;
  }

  focusTile(index) {
    const tiles = this.list.children;
    if (!tiles.length) return;
    index = Math.max(0, Math.min(index, tiles.length - 1));
    if (this.focus >= 0 && tiles[this.focus]) tiles[this.focus].tabIndex = -1;
    this.focus = index;
    tiles[index].tabIndex = 0;
    tiles[index].focus();
    tiles[index].scrollIntoView({ block: "nearest" });
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
    } else if (event.key === "Home") {
      event.preventDefault();
      this.focusTile(0);
    } else if (event.key === "End") {
      event.preventDefault();
      this.focusTile(this.results.length - 1);
    }
  }
}

function tile(hit, index) {
  const item = document.createElement("li");
  item.className = "tile";
  item.tabIndex = -1;
  item.dataset.index = index;
  item.dataset.id = hit.id;
  item.setAttribute("role", "button");
  item.setAttribute("aria-label", `${hit.name}, score ${hit.score.toFixed(3)}`);
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
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("span");
  name.textContent = hit.name;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = hit.score.toFixed(3);
  meta.append(name, score);
  item.append(img, meta);
  return item;
}
