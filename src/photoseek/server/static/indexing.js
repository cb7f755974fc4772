// The indexing view: start a job over the server's folders and follow its progress live;
// with `serve --watch`, also what the folder watcher has done lately.

import { request } from "./api.js";

const $ = (id) => document.getElementById(id);
const WATCH_REFRESH_MS = 2000;

export class IndexingView {
  /** `onFinished()` runs after a job ends, to refresh counts and results. */
  constructor({ onFinished }) {
    this.dialog = $("indexing");
    this.onFinished = onFinished;
    this.source = null;
    this.watchTimer = null;
    this.watchBatches = null;
    $("indexing-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => clearTimeout(this.watchTimer));
    $("indexing-start").addEventListener("click", () => this.start());
  }

  open(status) {
    this.showRoots(status);
    if (!this.dialog.open) this.dialog.showModal();
    $("watching").hidden = !status?.watching;
    if (status?.watching) this.showWatch();
    if (status?.job) this.follow(status.job);
    else if (!this.source) this.idle();
  }

  showRoots(status) {
    const folders = status?.folders ?? [];
    const files = status?.files ?? [];
    const listed = [folders.length && `Folders: ${folders.join(", ")}`, files.length && `Files: ${files.join(", ")}`];
    $("indexing-roots").textContent = folders.length || files.length
      ? listed.filter(Boolean).join(". ")
      : "Folders given to the server with --root are scanned; new and changed photos are added.";
  }

  /** The watcher's folders and last batch, refreshed while the dialog is open; new batches refresh the page. */
  async showWatch() {
    clearTimeout(this.watchTimer);
    try {
      const watch = await request("/api/watch");
      $("watching").textContent = describeWatch(watch);
      if (this.watchBatches !== null && watch.batches !== this.watchBatches) this.onFinished();
      this.watchBatches = watch.batches;
    } catch (error) {
      $("watching").textContent = error.message;
    }
    if (this.dialog.open) this.watchTimer = setTimeout(() => this.showWatch(), WATCH_REFRESH_MS);
  }

  idle() {
    $("progress").classList.remove("indeterminate");
    $("progress-bar").style.width = "0";
    $("indexing-text").textContent = "Scans the folders for new, changed and deleted photos.";
    $("indexing-current").textContent = "";
    $("indexing-start").disabled = false;
  }

  async start() {
    $("indexing-start").disabled = true;
    $("indexing-report").replaceChildren();
    try {
      const job = await request("/api/index", { method: "POST" });
      this.follow(job.id);
    } catch (error) {
      $("indexing-text").textContent = error.message;
      $("indexing-start").disabled = false;
    }
  }

  follow(jobId) {
    $("indexing-start").disabled = true;
    this.source?.close();
    this.source = new EventSource(`/api/jobs/${jobId}/events`);
    this.source.addEventListener("progress", (event) => this.render(JSON.parse(event.data)));
    this.source.addEventListener("done", (event) => {
      this.source.close();
      this.source = null;
      this.render(JSON.parse(event.data));
      this.onFinished();
    });
    this.source.onerror = () => {
      this.source?.close();
      this.source = null;
      this.poll(jobId);
    };
  }

  /** Fallback when the event stream is cut: ask once a second until the job ends. */
  async poll(jobId) {
    try {
      const job = await request(`/api/jobs/${jobId}`);
      this.render(job);
      if (job.state === "running") setTimeout(() => this.poll(jobId), 1000);
      else this.onFinished();
    } catch (error) {
      $("indexing-text").textContent = error.message;
    }
  }

  render(job) {
    const bar = $("progress");
    const running = job.state === "running";
    bar.classList.toggle("indeterminate", running && job.total === 0);
    const percent = job.total ? Math.round((100 * job.done) / job.total) : running ? 0 : 100;
    $("progress-bar").style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(percent));
    if (running) {
      $("indexing-text").textContent = job.total
        ? `Indexing ${job.done.toLocaleString()} of ${job.total.toLocaleString()} changed files (${percent}%)`
        : "Looking for new and changed photos…";
      $("indexing-current").textContent = job.current ?? "";
      return;
    }
    $("indexing-current").textContent = "";
    $("indexing-start").disabled = false;
    if (job.state === "failed") {
      $("indexing-text").textContent = `Indexing failed: ${job.error}`;
      return;
    }
    const r = job.report;
    $("indexing-text").textContent = `Done in ${r.seconds.toFixed(1)} s: ${r.scanned.toLocaleString()} files scanned.`;
    const cells = [["embedded", r.embedded], ["reused", r.reused], ["unchanged", r.unchanged], ["removed", r.removed]];
    const report = document.createElement("div");
    report.className = "report";
    for (const [name, value] of cells) {
      const cell = document.createElement("div");
      cell.innerHTML = "<b></b><span></span>";
      cell.querySelector("b").textContent = value.toLocaleString();
      cell.querySelector("span").textContent = name;
      report.append(cell);
    }
    const parts = [report];
    if (r.failed.length) {
      const list = document.createElement("ul");
      list.className = "failures";
      for (const failure of r.failed) {
        const item = document.createElement("li");
        item.textContent = `${failure.path}: ${failure.reason}`;
        list.append(item);
      }
      const heading = document.createElement("p");
      heading.textContent = `${r.failed.length} file(s) skipped:`;
      parts.push(heading, list);
    }
    $("indexing-report").replaceChildren(...parts);
  }
}

/** One paragraph: what is watched, what is away, the last batch and the totals. */
export function describeWatch(watch) {
  if (!watch.enabled) return "";
  if (watch.error && !watch.running) return `Watching stopped: ${watch.error}`;
  const away = watch.roots.filter((root) => !root.online).map((root) => root.path);
  const parts = [`Watching ${watch.roots.length} folder(s) for changes.`];
  if (away.length) parts.push(`Away (images kept until it returns): ${away.join(", ")}.`);
  const last = watch.last_batch;
  if (last) {
    const when = new Date(last.finished_at * 1000).toLocaleTimeString();
    const counts = [["added", last.embedded], ["moved or copied", last.reused], ["removed", last.removed], ["skipped", last.skipped]]
      .filter(([, n]) => n)
      .map(([name, n]) => `${n.toLocaleString()} ${name}`);
    parts.push(`Last batch at ${when}: ${counts.join(", ") || "nothing new"}.`);
    const t = watch.totals;
    parts.push(`${watch.batches.toLocaleString()} batch(es) so far: ${(t.embedded ?? 0).toLocaleString()} added, ${(t.removed ?? 0).toLocaleString()} removed.`);
  }
  if (watch.indexing) parts.push("Indexing changes now…");
  else if (watch.pending) parts.push(`${watch.pending.toLocaleString()} change(s) waiting for files to finish copying.`);
  if (watch.error) parts.push(`Last problem: ${watch.error}`);
  return parts.join(" ");
}
