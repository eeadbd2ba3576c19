// BlindAB: two images side by side, parameters hidden until the vote.
// Keys: ← left, → right, ↓ or t tie, Enter / n next pair. The parameters are not in the
// model's state before the vote: they are sent by the kernel after it stored the vote.

function render({ model, el }) {
  const root = fwEl("div", "fw-ab");
  root.tabIndex = 0;
  root.dataset.lmSuppressShortcuts = "true";
  const head = fwEl("div", "fw-ab-head");
  const pair = fwEl("div", "fw-ab-pair");
  const bar = fwEl("div", "fw-ab-bar");
  const message = fwEl("div", "fw-ab-message");
  root.append(head, pair, bar, message);
  el.append(root);

  const vote = (side) => {
    if (model.get("phase") !== "vote") return;
    model.send({ kind: "vote", side, round: model.get("round") });
  };
  const next = () => {
    if (model.get("phase") === "revealed") model.send({ kind: "next" });
  };

  function side(name, label) {
    const box = fwEl("div", `fw-ab-side fw-ab-${name}`);
    const revealed = model.get("revealed") || {};
    if (revealed.winner === name) box.classList.add("fw-ab-won");
    if (revealed.winner === "tie") box.classList.add("fw-ab-tied");
    const buffer = model.get(name);
    if (buffer && buffer.byteLength) {
      const img = fwEl("img", "fw-ab-img");
      img.src = fwUrl(buffer, "image/jpeg");
      img.alt = label;
      img.addEventListener("click", () => vote(name));
      box.append(img);
    }
    const params = revealed[name];
    if (params) {
      const table = fwEl("table", "fw-ab-params");
      for (const [key, value] of Object.entries(params)) {
        const row = fwEl("tr");
        row.append(fwEl("th", "", key), fwEl("td", "", value));
        table.append(row);
      }
      box.append(table);
    } else {
      box.append(fwEl("div", "fw-ab-hidden", `${label} — parameters hidden until you vote`));
    }
    return box;
  }

  function draw() {
    const phase = model.get("phase");
    root.dataset.phase = phase;
    head.textContent = `Blind A/B · ${model.get("progress") || ""}`;
    pair.replaceChildren();
    bar.replaceChildren();
    if (phase !== "done") pair.append(side("left", "A"), side("right", "B"));
    if (phase === "vote") {
      bar.append(
        fwButton("← A is better", "Key ←", () => vote("left")),
        fwButton("Tie", "Key ↓ or t", () => vote("tie")),
        fwButton("B is better →", "Key →", () => vote("right")),
      );
    } else if (phase === "revealed") {
      bar.append(fwButton("Next pair ⏎", "Key Enter or n", next));
    }
    message.textContent = model.get("message") || "";
  }

  function onKey(event) {
    if (event.target && event.target.tagName === "INPUT") return;
    let handled = true;
    if (event.key === "ArrowLeft") vote("left");
    else if (event.key === "ArrowRight") vote("right");
    else if (event.key === "ArrowDown" || event.key === "t") vote("tie");
    else if (event.key === "Enter" || event.key === "n") next();
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }
  root.addEventListener("keydown", onKey);
  const names = ["phase", "revealed", "left", "right", "message", "progress"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    for (const name of names) model.off(`change:${name}`, draw);
    root.removeEventListener("keydown", onKey);
  };
}

export default { render };
