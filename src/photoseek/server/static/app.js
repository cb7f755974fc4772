// photoseek web UI: the timeline, search as you type, search by example, filters, sorting, paging,
// selections, detail and indexing views.

import { ApiError, forgetToken, queryString, request, startSession, storedToken, takeTokenFromUrl } from "./api.js";
import { DetailView } from "./detail.js";
import { DuplicatesView } from "./duplicates.js";
import { ResultGrid } from "./grid.js";
import { IndexingView } from "./indexing.js";
import { SelectionBar } from "./selection.js";

const PAGE = 48;
const SORTED_PAGE = 200; // a search sorted by date or name shows its best 200 matches in that order
const SORT_NAMES = { score: "best match first", date: "newest first", oldest: "oldest first", name: "by name" };
const DEBOUNCE_MS = 250;
const EXAMPLES = ["a dog playing on the beach", "sunset over the sea", "birthday cake with candles", "snowy mountains", "people at a dinner table", "a red car"];
const $ = (id) => document.getElementById(id);

const state = {
  q: "",
  example: null, // {kind: "id", id, name} | {kind: "file", file, name, url}
  next: null, // the next page: an offset (search), a cursor (timeline, "" for the first); null: none (yet)
  searchSort: "score",
  browseSort: "date",
  total: null,
  loading: null, // promise of the page being fetched
  generation: 0,
  controller: null,
  status: null,
  lastQuery: "",
};

const selection = new SelectionBar({ onClear: () => grid.clearSelection() });
const grid = new ResultGrid({
  onOpen: (index) => detail.show(index),
  onNeedMore: () => loadMore(),
  onLeave: () => $("q").focus(),
  onSelect: (hits) => selection.update(hits),
});
const detail = new DetailView({
  results: () => grid.results,
  onSimilar: (hit) => setExample({ kind: "id", id: hit.id, name: hit.name }),
  onNeedMore: () => loadMore(),
  onClose: (index) => grid.focusTile(index),
});
const indexing = new IndexingView({ onFinished: () => refreshStatus().then(() => search()) });
const duplicates = new DuplicatesView({ onMoved: () => refreshStatus().then(() => search()) });

// -- searching ---------------------------------------------------------------------

const FILTER_INPUTS = ["f-folder", "f-after", "f-before", "f-format", "f-camera", "f-min-size", "f-topic",
                       "f-place", "f-near", "f-min-rating", "f-label"];

function filters() {
  return {
    in: $("f-folder").value.trim(),
    after: $("f-after").value,
    before: $("f-before").value,
    format: $("f-format").value,
    camera: $("f-camera").value.trim(),
    min_size: $("f-min-size").value,
    topic: $("f-topic").value,
    place: $("f-place").value.trim(),
    near: $("f-near").value.trim(),
    min_rating: $("f-min-rating").value,
    label: $("f-label").value.trim(),
  };
}

function hasQuery() {
  return Boolean(state.q || state.example);
}

/** The next page: of the timeline without a query, else of the search. */
async function fetchPage(next, signal) {
  if (!hasQuery()) {
    const params = { sort: state.browseSort, cursor: next || null, k: PAGE, ...filters() };
    const page = await request(`/api/browse?${queryString(params)}`, { signal });
    return { page, next: page.next_cursor };
  }
  if (state.searchSort === "score") {
    const page = await fetchSearch(next, PAGE, "score", signal);
    return { page, next: page.next_offset };
  }
  return { page: await fetchSearch(0, SORTED_PAGE, state.searchSort, signal), next: null };
}

function fetchSearch(offset, k, sort, signal) {
  const paging = { k, offset, sort, ...filters() };
  const example = state.example;
  if (example?.kind === "file") {
    const form = new FormData();
    form.append("file", example.file, example.file.name || "pasted.png");
    return request(`/api/search/image?${queryString(paging)}`, { method: "POST", form, signal });
  }
  if (example?.kind === "id" && state.q) {
    const f = filters();
    return request("/api/search", {
      method: "POST", signal,
      json: { q: state.q, image_ids: [example.id], k, offset, sort,
              filters: { folder: f.in || null, after: f.after || null, before: f.before || null, formats: f.format ? [f.format] : [],
                         camera: f.camera || null, min_size: f.min_size ? Number(f.min_size) : null, topic: f.topic || null,
                         place: f.place || null, near: f.near || null, label: f.label || null,
                         min_rating: f.min_rating ? Number(f.min_rating) : null } },
    });
  }
  if (example?.kind === "id") return request(`/api/images/${example.id}/similar?${queryString(paging)}`, { signal });
  return request(`/api/search?${queryString({ q: state.q, ...paging })}`, { signal });
}

/** Start a new search (or the timeline, without a query) from the first page, dropping any request still in flight. */
async function search() {
  state.controller?.abort();
  state.generation += 1;
  state.next = hasQuery() ? 0 : "";
  state.loading = null;
  grid.clear();
  hideError();
  syncUrl();
  syncSort();
  showSummary("");
  $("state").replaceChildren();
  await loadMore();
}

/** The sort menu offers "best match" only for a search; each view remembers its own order. */
function syncSort() {
  const searching = hasQuery();
  $("sort").querySelector('option[value="score"]').hidden = !searching;
  $("sort").value = searching ? state.searchSort : state.browseSort;
}

function onSort() {
  if (hasQuery()) state.searchSort = $("sort").value;
  else state.browseSort = $("sort").value;
  search();
}

async function loadMore() {
  if (state.loading) return state.loading;
  if (state.next === null) return;
  const generation = state.generation;
  const controller = new AbortController();
  state.controller = controller;
  const next = state.next;
  const first = next === 0 || next === "";
  $("loading").hidden = first;
  state.loading = (async () => {
    try {
      const { page, next: after } = await fetchPage(next, controller.signal);
      if (generation !== state.generation) return;
      state.next = after;
      if (first) state.total = page.total ?? null;
      grid.append(page.results, { months: !hasQuery() && state.browseSort !== "name" });
      summarize(page);
      if (!grid.results.length) showEmpty();
    } catch (error) {
      if (error.name === "AbortError" || generation !== state.generation) return;
      state.next = null;
      handleError(error);
    } finally {
      if (generation === state.generation) {
        state.loading = null;
        $("loading").hidden = true;
        if (state.next !== null && grid.nearEnd()) setTimeout(loadMore);
      }
    }
  })();
  return state.loading;
}

function summarize(page) {
  const more = state.next === null ? "" : " · scroll for more";
  if (!hasQuery()) {
    const total = state.total ?? grid.results.length;
    showSummary(`<strong>${total.toLocaleString()}</strong> photo${total === 1 ? "" : "s"} · ${SORT_NAMES[state.browseSort]}${more}`);
    return;
  }
  const count = grid.results.length;
  const what = state.example
    ? state.q ? `like <b>${escapeHtml(state.example.name)}</b> and “${escapeHtml(state.q)}”` : `like <b>${escapeHtml(state.example.name)}</b>`
    : `for “<strong>${escapeHtml(state.q)}</strong>”`;
  const order = state.searchSort === "score" ? "" : ` · ${SORT_NAMES[state.searchSort]}`;
  showSummary(`${count.toLocaleString()} result${count === 1 ? "" : "s"} ${what}${order} · ${Math.round(page.took_ms)} ms${more}`);
}

// -- examples (search by image) -----------------------------------------------------

function setExample(example) {
  if (state.example?.url) URL.revokeObjectURL(state.example.url);
  state.example = example;
  const chip = $("example-chip");
  chip.hidden = !example;
  if (example) {
    $("example-thumb").src = example.kind === "file" ? example.url : `/thumbs/${example.id}?size=256`;
    $("example-label").textContent = example.name;
    $("q").value = state.q = "";
  }
  $("q").placeholder = example ? "Add words to refine, or clear the image…" : "Describe a photo… (press / to focus)";
  search();
}

function useFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showError(`${file.name || "That file"} is not an image. Drop a JPEG, PNG, HEIC or WebP photo.`);
    return;
  }
  setExample({ kind: "file", file, name: file.name || "pasted image", url: URL.createObjectURL(file) });
}

function imageFrom(items) {
  for (const item of items ?? []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return null;
}

// -- states ---------------------------------------------------------------------------

function showSummary(html) {
  $("summary").innerHTML = html;
}

function stateView({ icon, title, text, actions = [] }) {
  const box = document.createElement("div");
  box.innerHTML = `<svg class="icon big" viewBox="0 0 24 24" aria-hidden="true">${icon}</svg><h2></h2><p></p>`;
  box.querySelector("h2").textContent = title;
  box.querySelector("p").textContent = text;
  if (actions.length) {
    const row = document.createElement("div");
    row.className = actions.length > 2 ? "examples" : "actions";
    row.append(...actions);
    box.append(row);
  }
  $("state").replaceChildren(box);
}

function button(text, onClick, className = "") {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

const ICONS = {
  search: '<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5"/>',
  empty: '<rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="10" r="2"/><path d="m21 16-5-5-8 8"/>',
  none: '<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5M8 11h6"/>',
  lock: '<rect x="5" y="11" width="14" height="9" rx="2"/><path d="M8 11V8a4 4 0 0 1 8 0v3"/>',
};

function showWelcome() {
  if (state.status && state.status.images === 0) {
    stateView({
      icon: ICONS.empty, title: "Your library is empty",
      text: "Index your photo folders to start searching. This runs on this computer; nothing leaves it.",
      actions: [button("Index now", () => indexing.open(state.status), "primary")],
    });
    return;
  }
  const count = state.status ? `${state.status.images.toLocaleString()} photos` : "your photos";
  stateView({
    icon: ICONS.search, title: "Search your photos by describing them",
    text: `Type what you remember, or drop, paste or pick an example image. Searching ${count}.`,
    actions: EXAMPLES.map((text) => button(text, () => { $("q").value = text; onType(true); })),
  });
}

/** An empty first page: an empty library, or nothing that passes the query and filters. */
function showEmpty() {
  const filtered = Object.values(filters()).some(Boolean);
  if (!hasQuery() && !filtered) {
    state.status = { ...(state.status ?? {}), images: 0 };
    showWelcome();
  } else {
    showNoResults();
  }
}

function showNoResults() {
  const active = Object.values(filters()).some(Boolean);
  stateView({
    icon: ICONS.none, title: "No matches",
    text: active ? "Nothing passes these filters. Loosen or clear them." : "Nothing in the index matches yet.",
    actions: active ? [button("Clear filters", clearFilters, "button")] : [],
  });
}

function handleError(error) {
  if (error instanceof ApiError && error.status === 401) {
    askForToken();
    return;
  }
  if (error instanceof ApiError && error.code === "empty_index") {
    state.status = { ...(state.status ?? {}), images: 0 };
    showWelcome();
    return;
  }
  showError(error.message);
}

function showError(message) {
  const banner = $("error");
  banner.textContent = message;
  banner.hidden = false;
}

function hideError() {
  $("error").hidden = true;
}

function askForToken() {
  const refused = storedToken() !== null;
  forgetToken();
  stateView({
    icon: ICONS.lock, title: "Locked",
    text: refused ? "The token was not accepted." : "This server needs a token.",
  });
  const message = $("token-error");
  message.textContent = refused ? "That token was not accepted: the server answered 401. Check it and try again." : "";
  message.hidden = !refused;
  const dialog = $("token-dialog");
  if (!dialog.open) dialog.showModal();
  $("token-input").select();
}

// -- status, filters and URL ------------------------------------------------------

async function refreshStatus() {
  try {
    const status = await request("/api/status");
    state.status = status;
    $("status-label").textContent = status.job ? "Indexing…" : `${status.images.toLocaleString()} photos`;
    $("folder-list").replaceChildren(...status.folders.map((root) => Object.assign(document.createElement("option"), { value: root })));
    await refreshTopics();
  } catch (error) {
    handleError(error);
  }
}

/** The topic facet: topics that some image has, with their counts. */
async function refreshTopics() {
  const { topics } = await request("/api/topics");
  const select = $("f-topic");
  const chosen = select.value;
  const options = topics.filter((t) => t.images > 0).map((t) =>
    Object.assign(document.createElement("option"), { value: t.name, textContent: `${t.name} (${t.images.toLocaleString()})` }));
  select.replaceChildren(Object.assign(document.createElement("option"), { value: "", textContent: "Any topic" }), ...options);
  select.value = topics.some((t) => t.name === chosen && t.images > 0) ? chosen : "";
}

function clearFilters() {
  for (const id of FILTER_INPUTS) $(id).value = "";
  onFilters();
}

function onFilters() {
  const count = Object.values(filters()).filter(Boolean).length;
  $("filter-count").hidden = count === 0;
  $("filter-count").textContent = String(count);
  search();
}

function syncUrl() {
  const url = new URL(location.href);
  if (state.q) url.searchParams.set("q", state.q);
  else url.searchParams.delete("q");
  history.replaceState(null, "", url);
}

let typingTimer = 0;
function onType(now = false) {
  clearTimeout(typingTimer);
  const run = () => {
    const q = $("q").value.trim();
    if (q === state.q && !now) return;
    state.q = q;
    if (state.example?.kind === "file" && q) setExample(null);
    else search();
  };
  if (now) run();
  else typingTimer = setTimeout(run, DEBOUNCE_MS);
}

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

// -- wiring -----------------------------------------------------------------------

function wire() {
  const q = $("q");
  q.addEventListener("input", () => onType());
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    onType(true);
  });
  q.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && grid.results.length) {
      event.preventDefault();
      grid.focusTile(0);
    } else if (event.key === "Escape") {
      q.value = "";
      onType(true);
    }
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, select, textarea, dialog");
    if (event.key === "/" && !typing) {
      event.preventDefault();
      q.focus();
      q.select();
    } else if (event.key === "Escape" && !typing && grid.selected.size) {
      grid.clearSelection();
    }
  });
  $("pick-image").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (event) => {
    useFile(event.target.files[0]);
    event.target.value = "";
  });
  $("example-clear").addEventListener("click", () => setExample(null));
  document.addEventListener("paste", (event) => {
    const file = imageFrom(event.clipboardData?.items);
    if (file) {
      event.preventDefault();
      useFile(file);
    }
  });
  let dragDepth = 0;
  const dragging = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!dragging(event)) return;
    dragDepth += 1;
    $("dropzone").hidden = false;
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) $("dropzone").hidden = true;
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    $("dropzone").hidden = true;
    useFile(event.dataTransfer?.files?.[0]);
  });
  $("toggle-filters").addEventListener("click", () => {
    const panel = $("filters");
    panel.hidden = !panel.hidden;
    $("toggle-filters").setAttribute("aria-expanded", String(!panel.hidden));
  });
  for (const id of FILTER_INPUTS) $(id).addEventListener("change", onFilters);
  $("sort").addEventListener("change", onSort);
  $("clear-filters").addEventListener("click", clearFilters);
  $("open-indexing").addEventListener("click", () => indexing.open(state.status));
  $("open-duplicates").addEventListener("click", () => duplicates.open());
  $("token-form").addEventListener("submit", async () => {
    try {
      await startSession($("token-input").value.trim());
      await start();
    } catch (error) {
      handleError(error);
    }
  });
}

async function start() {
  const initial = new URL(location.href).searchParams.get("q");
  if (storedToken()) await startSession();
  await refreshStatus();
  if (initial && !state.q) {
    $("q").value = initial;
    onType(true);
  } else {
    search();
  }
}

takeTokenFromUrl();
wire();
start().catch(handleError);
