// SweepGrid: labelled X/Y grids (one per Z value), live cell states, details and "Open in panel".
// Rating: stars / pick / reject / note in the details; keys 1-5, 0 clears, p pick, x reject,
// arrows for the next/previous cell, Escape closes.

const FW_STATE_ICON = { waiting: "…", queued: "⏳", running: "▶", done: "✓", error: "⚠", cancelled: "✕" };

function render({ model, el }) {
  let selected = null;
  const root = fwEl("div", "fw-sweep");
  root.tabIndex = 0;
  root.dataset.lmSuppressShortcuts = "true"; // JupyterLab: our keys are not notebook shortcuts
  const legend = fwEl("div", "fw-legend");
  const grids = fwEl("div", "fw-grids");
  const details = fwEl("div", "fw-details");
  root.append(legend, grids, details);
  el.append(root);

  const cells = () => model.get("entries") || [];
  const thumbs = () => model.get("thumbs") || [];

  function drawLegend() {
    legend.replaceChildren();
    const fixed = model.get("legend") || {};
    const keys = Object.keys(fixed);
    if (!keys.length) return;
    legend.append(fwEl("span", "fw-legend-title", "Fixed: "));
    keys.forEach((key, n) => {
      const item = fwEl("span", "fw-legend-item");
      item.append(fwEl("b", "", key), document.createTextNode(` = ${fixed[key]}`));
      legend.append(item);
      if (n < keys.length - 1) legend.append(document.createTextNode(" · "));
    });
  }

  function cellNode(cell) {
    const node = fwEl("div", `fw-cell fw-${cell ? cell.state : "waiting"}`);
    if (!cell) {
      node.append(fwEl("div", "fw-cell-text", "waiting"));
      return node;
    }
    node.dataset.id = cell.id;
    if (cell.id === selected) node.classList.add("fw-selected");
    const buffer = cell.thumb >= 0 ? thumbs()[Number(cell.thumb)] : null;
    if (buffer) {
      const img = fwEl("img", "fw-cell-img");
      img.src = fwUrl(buffer, "image/jpeg");
      img.alt = cell.text;
      node.append(img);
    }
    const text = `${FW_STATE_ICON[cell.state] || ""} ${cell.text}`;
    node.append(fwEl("div", "fw-cell-text", text));
    const badge = fwRatingText(cell);
    if (badge) node.append(fwEl("div", `fw-cell-rating fw-verdict-${cell.verdict || "none"}`, badge));
    node.title = "Click: details";
    node.addEventListener("click", () => {
      selected = selected === cell.id ? null : cell.id;
      draw();
      root.focus({ preventScroll: true });
    });
    return node;
  }

  function drawGrids() {
    grids.replaceChildren();
    const axes = model.get("axes") || {};
    const xs = axes.x_values || [];
    const ys = axes.y_values && axes.y_values.length ? axes.y_values : [""];
    const zs = axes.z_values && axes.z_values.length ? axes.z_values : [""];
    const at = new Map();
    for (const cell of cells()) at.set(`${cell.x},${cell.y},${cell.z}`, cell);
    zs.forEach((zValue, z) => {
      const block = fwEl("div", "fw-zblock");
      if (axes.z_label) block.append(fwEl("div", "fw-ztitle", `${axes.z_label} = ${zValue}`));
      const table = fwEl("table", "fw-grid");
      const head = fwEl("tr");
      const corner = fwEl("th", "fw-corner");
      corner.textContent = axes.y_label ? `${axes.y_label} ↓ · ${axes.x_label} →` : `${axes.x_label} →`;
      head.append(corner);
      for (const xValue of xs) head.append(fwEl("th", "fw-xlabel", xValue));
      table.append(head);
      ys.forEach((yValue, y) => {
        const row = fwEl("tr");
        row.append(fwEl("th", "fw-ylabel", yValue));
        xs.forEach((_xValue, x) => {
          const td = fwEl("td");
          td.append(cellNode(at.get(`${x},${y},${z}`)));
          row.append(td);
        });
        table.append(row);
      });
      block.append(table);
      grids.append(block);
    });
  }

  function drawDetails() {
    details.replaceChildren();
    const cell = selected && cells().find((c) => c.id === selected);
    if (!cell) {
      details.classList.remove("fw-open");
      return;
    }
    details.classList.add("fw-open");
    const bar = fwEl("div", "fw-viewer-bar");
    bar.append(
      fwEl("span", "fw-viewer-title", `Cell ${cell.id} — ${cell.text}`),
      fwButton("Open in panel", "Put this cell's parameters (and seed) into the panel", () =>
        model.send({ kind: "open", id: cell.id }),
      ),
      fwButton("Close", "Close the details", () => {
        selected = null;
        draw();
      }),
    );
    details.append(bar, ratingBar(cell));
    const body = fwEl("div", "fw-details-body");
    const buffer = cell.thumb >= 0 ? thumbs()[Number(cell.thumb)] : null;
    if (buffer) {
      const img = fwEl("img", "fw-details-img");
      img.src = fwUrl(buffer, "image/jpeg");
      img.alt = cell.text;
      body.append(img);
    }
    const table = fwEl("table", "fw-info");
    for (const [key, value] of Object.entries(cell.info || {})) {
      const row = fwEl("tr");
      row.append(fwEl("th", "", key), fwEl("td", "", value));
      table.append(row);
    }
    body.append(table);
    details.append(body);
  }

  function rate(cell, changes) {
    const current = { stars: cell.stars || 0, verdict: cell.verdict || "", note: cell.note || "" };
    const next = { ...current, ...changes };
    model.send({ kind: "rate", id: cell.id, stars: next.stars || null, verdict: next.verdict || null, note: next.note });
  }

  function ratingBar(cell) {
    const bar = fwEl("div", "fw-rating-bar");
    const stars = cell.stars || 0;
    for (let n = 1; n <= 5; n++) {
      const star = fwButton(n <= stars ? "★" : "☆", `${n} star${n > 1 ? "s" : ""} (key ${n})`, () =>
        rate(cell, { stars: n === stars ? 0 : n }),
      );
      star.classList.add("fw-star");
      star.dataset.stars = String(n);
      bar.append(star);
    }
    for (const [verdict, label, key] of [["pick", "✔ Pick", "p"], ["reject", "✘ Reject", "x"]]) {
      const button = fwButton(label, `${verdict} (key ${key})`, () =>
        rate(cell, { verdict: cell.verdict === verdict ? "" : verdict }),
      );
      button.classList.add(`fw-${verdict}`);
      if (cell.verdict === verdict) button.classList.add("fw-on");
      bar.append(button);
    }
    const note = fwEl("input", "fw-note");
    note.type = "text";
    note.placeholder = "note (Enter to save)";
    note.value = cell.note || "";
    note.maxLength = 500;
    note.addEventListener("keydown", (event) => {
      event.stopPropagation(); // typing a note is not a shortcut
      if (event.key === "Enter") rate(cell, { note: note.value });
    });
    note.addEventListener("change", () => rate(cell, { note: note.value }));
    bar.append(note);
    return bar;
  }

  function onKey(event) {
    if (event.target && event.target.tagName === "INPUT") return;
    const cell = selected && cells().find((c) => c.id === selected);
    if (!cell) return;
    let handled = true;
    if (event.key >= "1" && event.key <= "5") rate(cell, { stars: Number(event.key) });
    else if (event.key === "0") rate(cell, { stars: 0 });
    else if (event.key === "p") rate(cell, { verdict: cell.verdict === "pick" ? "" : "pick" });
    else if (event.key === "x") rate(cell, { verdict: cell.verdict === "reject" ? "" : "reject" });
    else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const order = [...cells()].sort((a, b) => a.z - b.z || a.y - b.y || a.x - b.x);
      const at = order.findIndex((c) => c.id === cell.id);
      const step = event.key === "ArrowRight" ? 1 : -1;
      selected = order[(at + step + order.length) % order.length].id;
      draw();
    } else if (event.key === "Escape") {
      selected = null;
      draw();
    } else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }
  root.addEventListener("keydown", onKey);

  function draw() {
    const focused = root === document.activeElement || root.contains(document.activeElement);
    drawLegend();
    drawGrids();
    drawDetails();
    // redrawn cells take the focus with them: keep it on the grid, so keys go on working
    if (focused && !root.contains(document.activeElement)) root.focus({ preventScroll: true });
  }
  model.on("change:entries", draw);
  model.on("change:axes", draw);
  model.on("change:legend", drawLegend);
  draw();
  return () => {
    model.off("change:entries", draw);
    model.off("change:axes", draw);
    model.off("change:legend", drawLegend);
    root.removeEventListener("keydown", onKey);
  };
}

function fwRatingText(cell) {
  const parts = [];
  if (cell.stars) parts.push("★".repeat(cell.stars));
  if (cell.verdict === "pick") parts.push("✔ pick");
  if (cell.verdict === "reject") parts.push("✘ reject");
  if (cell.note) parts.push("✎");
  return parts.join(" ");
}

function initialize({ model }) {
  return fwInitialize(model, (msg) => {
    if (msg.kind === "finished") model.set("finished", true);
  });
}

export default { initialize, render };
