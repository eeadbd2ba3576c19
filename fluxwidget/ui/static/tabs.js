// TabBar: the titles of a fluxwidget Tabs box (fluxwidget/ui/tabs.py) as plain buttons.
// A click selects at once in the page (the box's fw-tab-sel-N class) and tells the kernel
// (selected_index); without a kernel the switch still works, as a snapshot.

const MAX_TABS = 8;

function render({ model, el }) {
  const bar = document.createElement("div");
  bar.className = "fw-tabbar";
  bar.setAttribute("role", "tablist");
  el.append(bar);

  const box = () => el.closest(".fw-tabs");
  const show = (index) => {
    bar.querySelectorAll(".fw-tab").forEach((tab, i) => {
      tab.classList.toggle("fw-tab-selected", i === index);
      tab.setAttribute("aria-selected", String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
    });
    const root = box();
    if (!root) return;
    for (let i = 0; i < MAX_TABS; i++) root.classList.toggle(`fw-tab-sel-${i}`, i === index);
  };
  const select = (index) => {
    show(index);
    if (model.get("selected_index") !== index) {
      model.set("selected_index", index);
      model.save_changes();
    }
  };
  const draw = () => {
    bar.replaceChildren();
    (model.get("titles") || []).forEach((title, i) => {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.className = "fw-tab";
      tab.setAttribute("role", "tab");
      tab.textContent = title;
      tab.addEventListener("click", () => select(i));
      tab.addEventListener("keydown", (event) => {
        const count = bar.children.length;
        const step = { ArrowRight: 1, ArrowLeft: count - 1 }[event.key];
        if (step === undefined) return;
        event.preventDefault();
        const next = (i + step) % count;
        select(next);
        bar.children[next].focus();
      });
      bar.append(tab);
    });
    show(model.get("selected_index"));
  };
  const changed = () => show(model.get("selected_index"));
  model.on("change:titles", draw);
  model.on("change:selected_index", changed);
  draw();
  // the box is found once this view is attached to it
  const timer = setTimeout(changed, 0);
  return () => {
    clearTimeout(timer);
    model.off("change:titles", draw);
    model.off("change:selected_index", changed);
  };
}

export default { render };
