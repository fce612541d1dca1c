// utilabel review: keyboard control of the labelling form (plain JavaScript, no build step).
// j/k or arrows move between passages, digits set the focused passage's label, Enter submits,
// u undoes the last change, s skips. The page works without it (mouse and the submit button).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("labels");
  if (!form) return;
  const passages = Array.from(document.querySelectorAll(".passage"));
  const undo = [];
  let current = 0;

  function focusOn(i) {
    current = Math.max(0, Math.min(passages.length - 1, i));
    passages.forEach((p, j) => p.classList.toggle("current", j === current));
    passages[current].scrollIntoView({ block: "nearest" });
  }
  function checked(p) {
    const input = p.querySelector("input:checked");
    return input ? input.value : null;
  }
  function mark(p) {
    const origin = p.querySelector(".origin");
    origin.textContent = "your label";
    origin.classList.add("yours");
  }
  function set(i, value) {
    const p = passages[i];
    const input = p.querySelector('input[value="' + value + '"]');
    if (!input) return false;
    undo.push({ i: i, value: checked(p), origin: p.querySelector(".origin").textContent });
    input.checked = true;
    mark(p);
    return true;
  }
  passages.forEach((p, i) => p.querySelectorAll("input").forEach((input) => {
    input.addEventListener("change", () => { mark(p); focusOn(i); });
  }));

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "ArrowDown") focusOn(current + 1);
    else if (e.key === "k" || e.key === "ArrowUp") focusOn(current - 1);
    else if (e.key === "Enter") form.requestSubmit();
    else if (e.key === "s") { const skip = document.getElementById("skip"); if (skip) window.location = skip.href; }
    else if (e.key === "u") {
      const last = undo.pop();
      if (!last) return;
      const p = passages[last.i];
      p.querySelectorAll("input").forEach((input) => { input.checked = input.value === last.value; });
      const origin = p.querySelector(".origin");
      origin.textContent = last.origin;
      origin.classList.toggle("yours", last.origin === "your label");
      focusOn(last.i);
    } else if (/^[0-9]$/.test(e.key)) {
      if (!set(current, e.key)) return;
      focusOn(current + 1);
    } else return;
    e.preventDefault();
  });
  focusOn(0);
});
