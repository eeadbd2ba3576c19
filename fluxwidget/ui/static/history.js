// HistoryList: one line per run (newest first), Restore, pages of `page_size`.

function render({ model, el }) {
  let page = 0;
  const root = fwEl("div", "fw-history");
  el.append(root);
  const lazy = new Map(); // entry id -> thumbnail bytes asked for (never in the model's state)
  const asked = new Set();
  const onMessage = (msg, buffers) => {
    if (!msg || msg.kind !== "thumb") return;
    if (msg.ok && buffers && buffers.length) {
      lazy.set(msg.id, buffers[0]);
      draw();
    }
  };
  model.on("msg:custom", onMessage);

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
      row.append(
        fwButton("Restore", "Put this run's parameters (and seed) into the form", () =>
          model.send({ kind: "restore", id: entry.id }),
        ),
      );
      let buffer = entry.thumb >= 0 ? (model.get("thumbs") || [])[Number(entry.thumb)] : null;
      if (!buffer && entry.lazy) {
        buffer = lazy.get(entry.id) || null;
        if (!buffer && !asked.has(entry.id)) {
          asked.add(entry.id);
          try { model.send({ kind: "thumb", id: entry.id }); } catch (e) { /* no kernel */ }
        }
      }
      if (buffer) {
        const img = fwEl("img", "fw-history-thumb");
        img.src = fwUrl(buffer, "image/jpeg");
        img.alt = entry.text;
        row.append(img);
      }
      const text = fwEl("span", "fw-history-text", entry.text);
      text.title = entry.text;
      row.append(text);
      root.append(row);
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
