// SweepGrid: labelled X/Y grids (one per Z value), live cell states, details and "Open in panel".

const FW_STATE_ICON = { waiting: "…", queued: "⏳", running: "▶", done: "✓", error: "⚠", cancelled: "✕" };

function render({ model, el }) {
  let selected = null;
  const root = fwEl("div", "fw-sweep");
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
    node.title = "Click: details";
    node.addEventListener("click", () => {
      selected = selected === cell.id ? null : cell.id;
      draw();
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
    details.append(bar);
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

  function draw() {
    drawLegend();
    drawGrids();
    drawDetails();
  }
  model.on("change:entries", draw);
  model.on("change:axes", draw);
  model.on("change:legend", drawLegend);
  draw();
  return () => {
    model.off("change:entries", draw);
    model.off("change:axes", draw);
    model.off("change:legend", drawLegend);
  };
}

function initialize({ model }) {
  return fwInitialize(model, (msg) => {
    if (msg.kind === "finished") model.set("finished", true);
  });
}

export default { initialize, render };
