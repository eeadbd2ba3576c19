// LiveNotice: one "not live" line for a panel or sweep shown without its kernel.
// ipywidgets gives a view whose model has no live comm the class jupyter-widgets-disconnected;
// this view watches its own element for it and marks the root (.fw-snapshot-root) fw-not-live.

function render({ model, el }) {
  const note = document.createElement("div");
  note.className = "fw-live-notice";
  el.append(note);
  const root = () => el.closest(".fw-snapshot-root");
  const update = () => {
    const dead = el.classList.contains("jupyter-widgets-disconnected");
    note.textContent = model.get("text") || "";
    note.style.display = dead ? "" : "none";
    const r = root();
    if (r) r.classList.toggle("fw-not-live", dead);
  };
  const watch = new MutationObserver(update);
  watch.observe(el, { attributes: true, attributeFilter: ["class"] });
  // the root is found once the view is attached
  const timer = setTimeout(update, 0);
  model.on("change:text", update);
  update();
  return () => {
    clearTimeout(timer);
    watch.disconnect();
    model.off("change:text", update);
  };
}

export default { render };
