// ImageGallery: runs newest first, a large view, and a compare view (slider or side by side).

function render({ model, el }) {
  const full = new Map(); // entry id -> object URL of the full image (never in the state)
  let shown = null; // entry id in the large view
  let compare = null; // [a, b] entry ids in the compare view
  let picking = false; // the next click picks the second image to compare
  let sideBySide = false;

  const root = fwEl("div", "fw-gallery");
  const viewer = fwEl("div", "fw-viewer");
  const list = fwEl("div", "fw-runs");
  root.append(viewer, list);
  el.append(root);

  const entries = () => model.get("entries") || [];
  const byId = (id) => entries().find((e) => e.id === id);
  const thumbUrl = (entry) => fwUrl((model.get("thumbs") || [])[Number(entry.thumb)], "image/jpeg");
  const bestUrl = (entry) => full.get(entry.id) || thumbUrl(entry);

  function askFull(entry) {
    if (entry && entry.full && !full.has(entry.id)) model.send({ kind: "full", id: entry.id });
  }

  function open(id) {
    if (picking && shown && id !== shown) {
      compare = [shown, id];
      picking = false;
      askFull(byId(id));
    } else {
      shown = id;
      compare = null;
      picking = false;
      askFull(byId(id));
    }
    drawViewer();
    root.scrollIntoView({ block: "nearest" });
  }

  function close() {
    shown = null;
    compare = null;
    picking = false;
    drawViewer();
  }

  function drawViewer() {
    viewer.replaceChildren();
    if (compare) {
      const [a, b] = compare.map(byId);
      if (!a || !b) return close();
      viewer.classList.add("fw-open");
      const bar = fwEl("div", "fw-viewer-bar");
      bar.append(
        fwEl("span", "fw-viewer-title", `Compare: ${a.caption}  ↔  ${b.caption}`),
        fwButton(sideBySide ? "Slider" : "Side by side", "Switch the compare view", () => {
          sideBySide = !sideBySide;
          drawViewer();
        }),
        fwButton("Close", "Close the compare view", close),
      );
      viewer.append(bar);
      if (sideBySide) {
        const pair = fwEl("div", "fw-pair");
        for (const entry of [a, b]) {
          const figure = fwEl("figure", "fw-figure");
          const img = fwEl("img", "fw-large");
          img.src = bestUrl(entry);
          img.alt = entry.caption;
          figure.append(img, fwEl("figcaption", "fw-caption", entry.caption));
          pair.append(figure);
        }
        viewer.append(pair);
      } else {
        const stage = fwEl("div", "fw-compare");
        const under = fwEl("img", "fw-large fw-under");
        under.src = bestUrl(b);
        under.alt = b.caption;
        const over = fwEl("img", "fw-large fw-over");
        over.src = bestUrl(a);
        over.alt = a.caption;
        const line = fwEl("div", "fw-line");
        const slider = fwEl("input", "fw-slider");
        slider.type = "range";
        slider.min = "0";
        slider.max = "100";
        slider.value = "50";
        slider.title = "Drag to compare";
        const place = () => {
          over.style.clipPath = `inset(0 ${100 - Number(slider.value)}% 0 0)`;
          line.style.left = `${slider.value}%`;
        };
        slider.addEventListener("input", place);
        place();
        stage.append(under, over, line);
        const labels = fwEl("div", "fw-compare-labels");
        labels.append(fwEl("span", "", `◀ ${a.caption}`), fwEl("span", "", `${b.caption} ▶`));
        viewer.append(stage, slider, labels);
      }
      return;
    }
    const entry = shown && byId(shown);
    if (!entry) {
      viewer.classList.remove("fw-open");
      return;
    }
    viewer.classList.add("fw-open");
    const bar = fwEl("div", "fw-viewer-bar");
    bar.append(
      fwEl("span", "fw-viewer-title", entry.caption),
      fwButton(picking ? "Click an image…" : "Compare with…", "Then click another thumbnail", () => {
        picking = !picking;
        drawViewer();
      }),
      fwButton("Close", "Close the large view", close),
    );
    const img = fwEl("img", "fw-large");
    img.src = bestUrl(entry);
    img.alt = entry.caption;
    viewer.append(bar, img);
    if (entry.nsfw) viewer.append(fwEl("div", "fw-nsfw", `⚠ ${entry.nsfw}`));
    if (entry.full && !full.has(entry.id)) viewer.append(fwEl("div", "fw-muted", "Loading the full image…"));
  }

  function drawList() {
    list.replaceChildren();
    list.style.maxHeight = model.get("max_height") || "";
    const groups = new Map();
    for (const entry of entries()) {
      if (!groups.has(entry.run)) groups.set(entry.run, []);
      groups.get(entry.run).push(entry);
    }
    const order = [...(model.get("runs") || [])];
    for (const run of groups.keys()) if (!order.includes(run)) order.push(run);
    for (const run of order) {
      const items = groups.get(run);
      if (!items) continue;
      items.sort((x, y) => Number(x.index) - Number(y.index));
      const group = fwEl("section", "fw-run");
      group.dataset.run = run;
      const head = fwEl("div", "fw-run-head");
      head.append(fwEl("span", "fw-run-title", items[0].summary || items[0].caption.split(" · ")[0]));
      if (items[0].restore) {
        head.append(
          fwButton("Restore", "Put this run's parameters (and seed) into the form", () =>
            model.send({ kind: "restore", run }),
          ),
        );
      }
      const tiles = fwEl("div", "fw-tiles");
      for (const entry of items) {
        const tile = fwEl("figure", "fw-tile");
        tile.dataset.id = entry.id;
        if (entry.id === shown || (compare && compare.includes(entry.id))) tile.classList.add("fw-selected");
        if (entry.role === "input") tile.classList.add("fw-input-tile");
        const img = fwEl("img", "fw-thumb");
        img.src = thumbUrl(entry);
        img.alt = entry.caption;
        img.title = "Click: large view";
        tile.append(img, fwEl("figcaption", "fw-caption", entry.caption));
        if (entry.nsfw) tile.append(fwEl("div", "fw-nsfw", `⚠ ${entry.nsfw}`));
        tile.addEventListener("click", () => open(entry.id));
        tiles.append(tile);
      }
      group.append(head, tiles);
      list.append(group);
    }
    if (!entries().length) list.append(fwEl("div", "fw-muted fw-empty", "Results appear here."));
  }

  const onMessage = (msg, buffers) => {
    if (msg && msg.kind === "full") {
      if (msg.ok && buffers && buffers.length) full.set(msg.id, fwUrl(buffers[0], msg.mime));
      drawViewer();
    }
  };
  const redraw = () => {
    drawList();
    drawViewer();
  };
  model.on("msg:custom", onMessage);
  model.on("change:entries", redraw);
  model.on("change:runs", drawList);
  model.on("change:max_height", drawList);
  redraw();
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:entries", redraw);
    model.off("change:runs", drawList);
    model.off("change:max_height", drawList);
    for (const url of full.values()) URL.revokeObjectURL(url);
  };
}

function initialize({ model }) {
  return fwInitialize(model, (msg) => {
    if ((msg.kind === "runs" || msg.kind === "sync") && msg.runs) model.set("runs", msg.runs);
  });
}

export default { initialize, render };
