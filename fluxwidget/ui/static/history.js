// HistoryList: one row per run (newest first), Restore, pages of `page_size`.
// An earlier run's row (`group`: its job count) expands on click to its jobs (a sweep's cells
// with their axis values), each with Restore. Its jobs and every `lazy` thumbnail are asked for
// when first shown and kept here, never in the model's state (saved notebooks stay small).
// Every text (prompts are user text) goes in as textContent, never as HTML.

function render({ model, el }) {
  let page = 0;
  const root = fwEl("div", "fw-history");
  el.append(root);
  const lazy = new Map(); // row or job id -> thumbnail bytes asked for
  const asked = new Set(); // thumbnails asked for
  const jobs = new Map(); // run id -> its jobs, once they arrived
  const askedJobs = new Set();
  const open = new Set(); // expanded run ids
  const onMessage = (msg, buffers) => {
    if (!msg) return;
    if (msg.kind === "thumb") {
      if (msg.ok && buffers && buffers.length) {
        lazy.set(msg.id, buffers[0]);
        draw();
      }
    } else if (msg.kind === "jobs") {
      jobs.set(msg.id, msg.ok && Array.isArray(msg.jobs) ? msg.jobs : []);
      draw();
    }
  };
  model.on("msg:custom", onMessage);

  function ask(message) {
    try { model.send(message); } catch (e) { /* no kernel */ }
  }

  function thumbnail(id, buffer, isLazy, alt) {
    let data = buffer;
    if (!data && isLazy) {
      data = lazy.get(id) || null;
      if (!data && !asked.has(id)) {
        asked.add(id);
        ask({ kind: "thumb", id });
      }
    }
    if (!data) return null;
    const img = fwEl("img", "fw-history-thumb");
    img.src = fwUrl(data, "image/jpeg");
    img.alt = alt;
    return img;
  }

  function line(text) {
    const span = fwEl("span", "fw-history-text", text);
    span.title = text;
    return span;
  }

  function toggle(id) {
    if (open.has(id)) {
      open.delete(id);
    } else {
      open.add(id);
      if (!jobs.has(id) && !askedJobs.has(id)) {
        askedJobs.add(id);
        ask({ kind: "jobs", id });
      }
    }
    draw();
  }

  function drawJobs(id, box) {
    const list = jobs.get(id);
    if (!list) {
      box.append(fwEl("div", "fw-muted fw-history-job", "Loading…"));
      return;
    }
    if (!list.length) box.append(fwEl("div", "fw-muted fw-history-job", "No job to restore."));
    for (const job of list) {
      const row = fwEl("div", "fw-history-job");
      row.dataset.id = job.id;
      row.append(
        fwButton("Restore", "Put this job's parameters (and seed) into the form", () =>
          ask({ kind: "restore", id: job.id }),
        ),
      );
      const img = thumbnail(job.id, null, job.lazy === "yes", job.text);
      if (img) row.append(img);
      if (job.detail) row.append(fwEl("span", "fw-history-axes", job.detail));
      row.append(line(job.text));
      box.append(row);
    }
  }

  function draw() {
    root.replaceChildren();
    const items = [...(model.get("entries") || [])].sort((a, b) => Number(b.when) - Number(a.when));
    const size = model.get("page_size") || 20;
    const pages = Math.max(1, Math.ceil(items.length / size));
    page = Math.min(page, pages - 1);
    if (!items.length) {
      root.append(fwEl("div", "fw-muted fw-empty", "No runs yet."));
      return;
    }
    for (const entry of items.slice(page * size, (page + 1) * size)) {
      const row = fwEl("div", "fw-history-row");
      row.dataset.id = entry.id;
      const group = entry.group !== undefined;
      if (group) {
        const expanded = open.has(entry.id);
        row.classList.add("fw-history-run");
        row.setAttribute("aria-expanded", String(expanded));
        row.title = expanded ? "Hide its jobs" : "Show its jobs (each with Restore)";
        row.addEventListener("click", () => toggle(entry.id));
        row.append(fwButton(`${expanded ? "▾" : "▸"} ${entry.group}`, row.title, () => toggle(entry.id)));
      } else {
        row.append(
          fwButton("Restore", "Put this run's parameters (and seed) into the form", () =>
            ask({ kind: "restore", id: entry.id }),
          ),
        );
      }
      const buffer = entry.thumb >= 0 ? (model.get("thumbs") || [])[Number(entry.thumb)] : null;
      const img = thumbnail(entry.id, buffer, entry.lazy === "yes", entry.text);
      if (img) row.append(img);
      row.append(line(entry.text));
      root.append(row);
      if (group && open.has(entry.id)) {
        const box = fwEl("div", "fw-history-jobs");
        drawJobs(entry.id, box);
        root.append(box);
      }
    }
    if (pages > 1) {
      const nav = fwEl("div", "fw-history-nav");
      const previous = fwButton("◀ Newer", "Newer runs", () => { page -= 1; draw(); });
      previous.disabled = page === 0;
      const next = fwButton("Older ▶", "Older runs", () => { page += 1; draw(); });
      next.disabled = page >= pages - 1;
      nav.append(previous, fwEl("span", "fw-muted", ` page ${page + 1} of ${pages} `), next);
      root.append(nav);
    }
  }
  model.on("change:entries", draw);
  model.on("change:page_size", draw);
  draw();
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:entries", draw);
    model.off("change:page_size", draw);
  };
}

function initialize({ model }) {
  return fwInitialize(model);
}

export default { initialize, render };
