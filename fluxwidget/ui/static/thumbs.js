// Shared by the image components: entries + thumbnails arrive once each as custom messages
// and are added to this browser's copy of the model state (so a saved notebook holds them).

function fwApply(model, msg, buffers) {
  const entries = [...(model.get("entries") || [])];
  const thumbs = [...(model.get("thumbs") || [])];
  if (msg.kind === "add") {
    const entry = { ...msg.entry };
    if (buffers && buffers.length && entry.thumb >= 0) thumbs[entry.thumb] = buffers[0];
    entries.push(entry);
  } else if (msg.kind === "update") {
    const at = entries.findIndex((e) => e.id === msg.id);
    if (at < 0) return false;
    entries[at] = { ...entries[at], ...msg.changes };
    if (buffers && buffers.length && msg.changes.thumb >= 0) thumbs[msg.changes.thumb] = buffers[0];
  } else if (msg.kind === "clear") {
    entries.length = 0;
    thumbs.length = 0;
  } else if (msg.kind === "sync") {
    (msg.thumbs || []).forEach((index, n) => {
      if (buffers && buffers[n]) thumbs[index] = buffers[n];
    });
    entries.length = 0;
    entries.push(...(msg.entries || []));
  } else {
    return false;
  }
  model.set("thumbs", thumbs);
  model.set("entries", entries);
  return true;
}

function fwInitialize(model, more) {
  const handler = (msg, buffers) => {
    if (!msg || typeof msg !== "object") return;
    const applied = fwApply(model, msg, buffers);
    if (more && (!applied || msg.kind === "sync")) more(msg, buffers);
  };
  model.on("msg:custom", handler);
  // Messages sent while this component was loading are lost: ask for what is missing.
  const have = [];
  (model.get("thumbs") || []).forEach((buffer, index) => {
    if (buffer) have.push(index);
  });
  model.send({ kind: "hello", have });
  return () => model.off("msg:custom", handler);
}

const fwUrls = new WeakMap();

function fwMime(buffer, mime) {
  // thumbnails are JPEG or WebP ("RIFF....WEBP"): say which, whatever the caller assumed
  try {
    const view = new Uint8Array(buffer.buffer || buffer, buffer.byteOffset || 0, 12);
    if (view[0] === 0x52 && view[1] === 0x49 && view[8] === 0x57 && view[9] === 0x45) return "image/webp";
  } catch (e) { /* not a byte buffer: keep the given type */ }
  return mime || "image/jpeg";
}

function fwUrl(buffer, mime) {
  if (!buffer) return "";
  let url = fwUrls.get(buffer);
  if (!url) {
    url = URL.createObjectURL(new Blob([buffer], { type: fwMime(buffer, mime) }));
    fwUrls.set(buffer, url);
  }
  return url;
}

function fwEl(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fwButton(label, title, onClick) {
  const button = fwEl("button", "fw-button", label);
  button.type = "button";
  if (title) button.title = title;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick(event);
  });
  return button;
}
