// The browser side of PromptBox: a textarea whose Ctrl+Enter (Shift+Enter, Cmd+Enter) asks to generate.
export default {
  render({ model, el }) {
    const box = document.createElement("textarea");
    box.className = "aigate-prompt-box";
    box.rows = 3;
    // The notebook's own shortcuts (Shift+Enter runs the cell) stay out of this box.
    box.setAttribute("data-lm-suppress-shortcuts", "true");
    box.value = model.get("value");
    box.placeholder = model.get("placeholder");
    const send = () => { model.set("value", box.value); model.save_changes(); };
    box.addEventListener("input", send);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey || event.shiftKey)) {
        event.preventDefault();
        event.stopPropagation();
        send();
        model.send({ event: "submit" });
      }
    });
    const follow = () => { if (box.value !== model.get("value")) box.value = model.get("value"); };
    const hint = () => { box.placeholder = model.get("placeholder"); };
    model.on("change:value", follow);
    model.on("change:placeholder", hint);
    el.appendChild(box);
    return () => { model.off("change:value", follow); model.off("change:placeholder", hint); };
  }
};
