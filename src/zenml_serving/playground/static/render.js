// JSON rendered as pretty-printed, selectable text, with long values folded into <details>:
// a string over LONG_STRING characters, or an array/object (below the top level) with more
// than FOLD_ENTRIES entries or more than FOLD_CHARS characters of JSON.

export const LONG_STRING = 160;
export const FOLD_ENTRIES = 12;
export const FOLD_CHARS = 600;

function span(cls, text) {
  const node = document.createElement("span");
  node.className = cls;
  node.textContent = text;
  return node;
}

function scalar(value) {
  if (value === null) return span("j-null", "null");
  if (typeof value === "string") {
    const text = JSON.stringify(value);
    if (value.length <= LONG_STRING) return span("j-str", text);
    const fold = document.createElement("details");
    fold.className = "j-fold";
    const summary = document.createElement("summary");
    summary.append(span("j-str", JSON.stringify(value.slice(0, 60)).slice(0, -1) + "…\""),
      span("j-note", ` ${value.length} chars`));
    fold.append(summary, span("j-str j-long", text));
    return fold;
  }
  if (typeof value === "number") return span("j-num", JSON.stringify(value));
  if (typeof value === "boolean") return span("j-bool", String(value));
  return span("j-other", JSON.stringify(value) ?? String(value));
}

/** A DOM rendering of `value`; depth 0 is never folded. */
export function renderJson(value, depth = 0) {
  if (value === null || typeof value !== "object") return scalar(value);
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return span("j-punct", open + close);
  const block = document.createElement("div");
  block.className = "j-block";
  entries.forEach(([key, item], index) => {
    const line = document.createElement("div");
    line.className = "j-line";
    if (!isArray) line.append(span("j-key", JSON.stringify(key)), span("j-punct", ": "));
    line.append(renderJson(item, depth + 1));
    if (index < entries.length - 1) line.append(span("j-punct", ","));
    block.append(line);
  });
  const wrapper = document.createElement("span");
  wrapper.className = "j-container";
  const size = JSON.stringify(value).length;
  if (depth > 0 && (entries.length > FOLD_ENTRIES || size > FOLD_CHARS)) {
    const fold = document.createElement("details");
    fold.className = "j-fold";
    const summary = document.createElement("summary");
    const what = isArray ? `${entries.length} items` : `${entries.length} keys`;
    summary.append(span("j-punct", `${open}…${close}`), span("j-note", ` ${what}, ${size} chars`));
    fold.append(summary, span("j-punct", open), block, span("j-punct", close));
    wrapper.append(fold);
  } else {
    wrapper.append(span("j-punct", open), block, span("j-punct", close));
  }
  return wrapper;
}

/** One card per output name: a heading, the rendered value and a copy button. */
export function renderOutputs(outputs, container) {
  container.replaceChildren();
  const names = Object.keys(outputs || {});
  if (names.length === 0) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No outputs.";
    container.append(p);
    return;
  }
  for (const name of names) {
    const card = document.createElement("section");
    card.className = "output";
    card.dataset.output = name;
    const head = document.createElement("div");
    head.className = "output-head";
    const h = document.createElement("h4");
    h.textContent = name;
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "small";
    copy.textContent = "Copy JSON";
    copy.setAttribute("aria-label", `Copy ${name} as JSON`);
    copy.addEventListener("click", () => copyText(JSON.stringify(outputs[name], null, 2), copy));
    head.append(h, copy);
    const body = document.createElement("div");
    body.className = "json";
    body.append(renderJson(outputs[name]));
    card.append(head, body);
    container.append(card);
  }
}

/** Copy to the clipboard (execCommand fallback outside secure contexts); flash the button. */
export async function copyText(text, button, status) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
  }
  const message = ok ? "Copied" : "Copy failed: select the text and copy it";
  if (status) status.textContent = message;
  else if (button) {
    const before = button.textContent;
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = before; }, 1500);
  }
  return ok;
}
