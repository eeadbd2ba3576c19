// ImageGallery: runs newest first, a large view, and a compare view (slider or side by side).
// The large and compare views are an overlay over the page (a lightbox put on document.body,
// so no notebook container clips or shrinks it): ←/→ step through the results, Esc closes.

function render({ model, el }) {
  const full = new Map(); // entry id -> object URL of the full image (never in the state)
  let shown = null; // entry id in the large view
  let compare = null; // [a, b] entry ids in the compare view
  let picking = false; // the next click picks the second image to compare
  let sideBySide = false;

  const root = fwEl("div", "fw-gallery");
  const overlay = fwEl("div", "fw-overlay");
  const viewer = fwEl("div", "fw-viewer");
  viewer.tabIndex = 0; // focused when open: ←/→ step through the results, Esc closes
  viewer.dataset.lmSuppressShortcuts = "true"; // JupyterLab: keys here are the viewer's
  viewer.setAttribute("role", "dialog");
  viewer.setAttribute("aria-label", "Large view");
  overlay.append(viewer);
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) close(); // a click beside the image closes
  });
  const pickBar = fwEl("div", "fw-pick-bar");
  const list = fwEl("div", "fw-runs");
  root.append(pickBar, list);
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
    drawList();
    viewer.focus({ preventScroll: true });
  }

  function close() {
    shown = null;
    compare = null;
    picking = false;
    drawViewer();
    drawList();
  }

  // the results (not input tiles) in display order: runs newest first, images in order
  function resultIds() {
    const order = model.get("runs") || [];
    const rank = (run) => (order.includes(run) ? order.indexOf(run) : order.length);
    return entries()
      .filter((e) => e.role !== "input")
      .sort((x, y) => rank(x.run) - rank(y.run) || Number(x.index) - Number(y.index))
      .map((e) => e.id);
  }

  function step(delta) {
    if (!shown || compare) return;
    const ids = resultIds();
    const at = ids.indexOf(shown);
    if (at < 0 || !ids.length) return;
    const next = ids[(at + delta + ids.length) % ids.length];
    shown = next;
    picking = false;
    askFull(byId(next));
    drawViewer();
    drawList();
  }

  // Keys while the overlay is open, wherever the focus is (a redrawn button loses it): on the
  // window in the capture phase, ahead of JupyterLab's own shortcuts on the document.
  const onKey = (event) => {
    const target = event.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA");
    if (typing && event.key !== "Escape") return; // the compare slider keeps its arrows
    const keys = { ArrowLeft: () => step(-1), ArrowRight: () => step(1), Escape: close };
    const action = keys[event.key];
    if (!action || (!shown && !compare)) return;
    event.preventDefault();
    event.stopPropagation();
    action();
  };
  let listening = false;
  function listen(on) {
    if (on !== listening) {
      if (on) window.addEventListener("keydown", onKey, true);
      else window.removeEventListener("keydown", onKey, true);
      listening = on;
    }
  }

  function title(text) {
    const span = fwEl("span", "fw-viewer-title", text);
    span.title = text; // one line, cut with an ellipsis: the whole text on hover
    return span;
  }

  function show(open) {
    // the overlay lives on document.body while open; while picking the second image to
    // compare, it steps aside so the thumbnails can be clicked (a bar above them says so)
    if (open && !overlay.isConnected) document.body.append(overlay);
    if (!open && overlay.isConnected) overlay.remove();
    listen(open);
    if (open && !viewer.contains(document.activeElement)) viewer.focus({ preventScroll: true });
    viewer.classList.toggle("fw-open", open);
    const entry = picking && shown && byId(shown);
    pickBar.replaceChildren();
    pickBar.classList.toggle("fw-open", Boolean(entry));
    if (entry) {
      pickBar.append(
        fwEl("span", "fw-pick-text", `Click an image to compare with ${entry.caption}`),
        fwButton("Cancel", "Back to the large view", () => {
          picking = false;
          drawViewer();
        }),
      );
    }
  }

  function drawViewer() {
    viewer.replaceChildren();
    if (compare) {
      const [a, b] = compare.map(byId);
      if (!a || !b) return close();
      show(true);
      const bar = fwEl("div", "fw-viewer-bar");
      bar.append(
        title(`Compare: ${a.caption}  ↔  ${b.caption}`),
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
        for (const label of labels.children) label.title = label.textContent;
        viewer.append(stage, slider, labels);
      }
      return;
    }
    const entry = shown && byId(shown);
    if (!entry) {
      show(false);
      return;
    }
    show(!picking);
    const bar = fwEl("div", "fw-viewer-bar");
    const ids = resultIds();
    const at = ids.indexOf(entry.id);
    const prev = fwButton("‹ Previous", "The previous image (←)", () => step(-1));
    const next = fwButton("Next ›", "The next image (→)", () => step(1));
    prev.classList.add("fw-prev");
    next.classList.add("fw-next");
    prev.disabled = next.disabled = at < 0 || ids.length < 2;
    const position = at < 0 ? "" : `${at + 1} of ${ids.length}`;
    bar.append(
      title(entry.caption),
      fwEl("span", "fw-muted fw-position", position),
      prev,
      next,
      fwButton("Compare with…", "Then click another thumbnail", () => {
        picking = true;
        drawViewer();
      }),
      fwButton("Close", "Close the large view (Esc)", close),
    );
    const img = fwEl("img", "fw-large fw-big");
    img.src = bestUrl(entry);
    img.alt = entry.caption;
    img.title = "Esc: close · ←/→: previous/next";
    viewer.append(bar, img, fwEl("div", "fw-caption fw-big-caption", entry.caption));
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
    overlay.remove();
    listen(false);
    for (const url of full.values()) URL.revokeObjectURL(url);
  };
}

function initialize({ model }) {
  return fwInitialize(model, (msg) => {
    if ((msg.kind === "runs" || msg.kind === "sync") && msg.runs) model.set("runs", msg.runs);
  });
}

export default { initialize, render };
