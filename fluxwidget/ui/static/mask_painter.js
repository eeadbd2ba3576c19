// MaskPainter: paint (white = repaint) over the input image's thumbnail. Each finished stroke
// goes to the kernel as numbers (points normalised to 0-1, brush in % of the longer side); the
// kernel draws it on a mask of the image's full size and sends back a small preview, which the
// canvas then shows (so the canvas always shows what will be sent).

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function button(label, title, onClick) {
  const node = el("button", "fw-mask-button", label);
  node.type = "button";
  node.title = title;
  node.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

function render({ model, el: host }) {
  const root = el("div", "fw-mask");
  const stage = el("div", "fw-mask-stage");
  const img = el("img", "fw-mask-image");
  img.alt = "input image";
  img.draggable = false;
  const canvas = el("canvas", "fw-mask-canvas");
  stage.append(img, canvas);

  const tools = el("div", "fw-mask-tools");
  const setErase = (value) => {
    model.set("erase", value);
    model.save_changes();
  };
  const paint = button("Paint", "Paint the area to repaint (white in the mask)", () => setErase(false));
  const erase = button("Erase", "Erase: keep this area (black in the mask)", () => setErase(true));
  const invert = button("Invert", "Swap the repainted and the kept areas", () => model.send({ kind: "invert" }));
  const clear = button("Clear", "Nothing repainted", () => model.send({ kind: "clear" }));
  const sizeLabel = el("label", "fw-mask-size", "Brush");
  const size = el("input", "fw-mask-brush");
  size.type = "range";
  size.min = "1";
  size.max = "25";
  size.title = "Brush size (% of the image's longer side)";
  sizeLabel.append(size);
  tools.append(paint, erase, sizeLabel, invert, clear);
  const note = el("div", "fw-mask-note");
  root.append(tools, stage, note);
  host.append(root);

  const ctx = canvas.getContext("2d");
  let url = null;
  let stroke = null; // the stroke being drawn: { points: [x, y, ...] }

  function tint() {
    // the kernel's preview: white = repaint, drawn as translucent red over the image
    const data = model.get("preview");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!data || !data.byteLength) return;
    const blob = new Blob([data], { type: "image/png" });
    const source = new Image();
    const src = URL.createObjectURL(blob);
    source.onload = () => {
      const off = document.createElement("canvas");
      off.width = canvas.width;
      off.height = canvas.height;
      const octx = off.getContext("2d");
      octx.drawImage(source, 0, 0, off.width, off.height);
      const pixels = octx.getImageData(0, 0, off.width, off.height);
      const p = pixels.data;
      for (let i = 0; i < p.length; i += 4) {
        const on = p[i] > 127;
        p[i] = 255;
        p[i + 1] = 0;
        p[i + 2] = 0;
        p[i + 3] = on ? 140 : 0;
      }
      if (!stroke) {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        ctx.putImageData(pixels, 0, 0);
      }
      URL.revokeObjectURL(src);
    };
    source.src = src;
  }

  function drawImage() {
    const data = model.get("image");
    if (url) URL.revokeObjectURL(url);
    url = null;
    const has = data && data.byteLength;
    stage.style.display = has ? "" : "none";
    tools.style.display = has ? "" : "none";
    if (!has) return;
    url = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
    img.onload = () => {
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      tint();
    };
    img.src = url;
  }

  function drawTools() {
    const erasing = !!model.get("erase");
    paint.classList.toggle("fw-mask-on", !erasing);
    erase.classList.toggle("fw-mask-on", erasing);
    size.value = String(model.get("brush") || 6);
    const w = model.get("image_width");
    const h = model.get("image_height");
    const text = model.get("message") || (w && h ? `Mask ${w}×${h} (the image's size): paint what to repaint.` : "");
    note.textContent = text;
  }

  function at(event) {
    const rect = canvas.getBoundingClientRect();
    return [
      Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 1),
      Math.min(Math.max((event.clientY - rect.top) / rect.height, 0), 1),
    ];
  }

  function brushPixels() {
    return (Number(model.get("brush") || 6) / 100) * Math.max(canvas.width, canvas.height);
  }

  function drawSegment(from, to) {
    ctx.save();
    ctx.globalCompositeOperation = model.get("erase") ? "destination-out" : "source-over";
    ctx.strokeStyle = "rgba(255, 0, 0, 0.55)";
    ctx.fillStyle = "rgba(255, 0, 0, 0.55)";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = brushPixels();
    ctx.beginPath();
    ctx.moveTo(from[0] * canvas.width, from[1] * canvas.height);
    ctx.lineTo(to[0] * canvas.width, to[1] * canvas.height);
    ctx.stroke();
    ctx.restore();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    const point = at(event);
    stroke = { points: [...point], last: point };
    drawSegment(point, point);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const point = at(event);
    drawSegment(stroke.last, point);
    stroke.points.push(...point);
    stroke.last = point;
  });
  const finish = (event) => {
    if (!stroke) return;
    if (event && canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    const points = stroke.points.map((v) => Math.round(v * 10000) / 10000);
    stroke = null;
    model.send({ kind: "stroke", points, brush: Number(model.get("brush") || 6), erase: !!model.get("erase") });
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  size.addEventListener("input", () => {
    model.set("brush", Number(size.value));
    model.save_changes();
  });

  model.on("change:image", drawImage);
  model.on("change:preview", tint);
  model.on("change:erase", drawTools);
  model.on("change:brush", drawTools);
  model.on("change:message", drawTools);
  model.on("change:image_width", drawTools);
  drawImage();
  drawTools();
  return () => {
    model.off("change:image", drawImage);
    model.off("change:preview", tint);
    model.off("change:erase", drawTools);
    model.off("change:brush", drawTools);
    model.off("change:message", drawTools);
    model.off("change:image_width", drawTools);
    if (url) URL.revokeObjectURL(url);
  };
}

export default { render };
