// A form generated from the JSON schema of the pipeline's parameters (`/info`):
// string, number, integer and boolean get inputs; enums get a select; anything structured
// (arrays, objects, `$ref`s to models, `anyOf`/`oneOf`/`allOf`, untyped) gets a JSON textarea
// checked as you type. Server validation errors (422 `errors[].field`) land next to the field.

const SIMPLE = new Set(["string", "number", "integer", "boolean"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Follow a local `$ref` ("#/$defs/Name"), keeping the property's own keywords on top. */
export function resolveSchema(prop, root) {
  let schema = prop || {};
  const seen = new Set();
  while (schema.$ref && !seen.has(schema.$ref)) {
    seen.add(schema.$ref);
    const path = schema.$ref.replace(/^#\//, "").split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    let target = root;
    for (const part of path) target = target?.[part];
    if (!target || !schema.$ref.startsWith("#/")) break;
    const { $ref: _unused, ...own } = schema;
    schema = { ...target, ...own, _refName: schema.$ref.split("/").pop() };
  }
  return schema;
}

/** A short human description of a schema's type ("array of string", "Options (object)"). */
export function describeType(schema, root) {
  const s = resolveSchema(schema, root);
  if (Array.isArray(s.enum)) return "one of " + s.enum.map((v) => JSON.stringify(v)).join(", ");
  if ("const" in s) return "exactly " + JSON.stringify(s.const);
  const alts = s.anyOf || s.oneOf;
  if (Array.isArray(alts)) return alts.map((a) => describeType(a, root)).join(" | ");
  if (Array.isArray(s.allOf) && s.allOf.length === 1) return describeType(s.allOf[0], root);
  let type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  if (type === "array" && s.items) type = "array of " + describeType(s.items, root);
  if (s._refName && type === "object") return `${s._refName} (object)`;
  return type || "any JSON";
}

function kindOf(schema) {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return "enum";
  if (schema.anyOf || schema.oneOf || schema.allOf || "const" in schema) return "json";
  if (typeof schema.type === "string" && SIMPLE.has(schema.type)) return schema.type;
  return "json";
}

export class SchemaForm {
  /**
   * @param {object} schema the `parameters_schema` of `/info`
   * @param {HTMLElement} container where the fields go
   * @param {() => void} onChange called on every edit
   */
  constructor(schema, container, onChange = () => {}) {
    this.schema = schema || {};
    this.container = container;
    this.onChange = onChange;
    this.fields = new Map();
    const required = new Set(this.schema.required || []);
    const properties = this.schema.properties || {};
    container.replaceChildren();
    if (Object.keys(properties).length === 0) {
      container.append(el("p", { class: "muted", text: "This pipeline takes no parameters." }));
    }
    for (const [name, prop] of Object.entries(properties)) {
      const field = this._build(name, prop, required.has(name));
      this.fields.set(name, field);
      container.append(field.wrapper);
    }
  }

  _build(name, prop, required) {
    const schema = resolveSchema(prop, this.schema);
    const kind = kindOf(schema);
    const id = `param-${name}`;
    const hasDefault = "default" in prop || "default" in schema;
    const defaultValue = "default" in prop ? prop.default : schema.default;
    const wrapper = el("div", { class: `field field-${kind}`, "data-param": name });
    const label = el("label", { for: id },
      el("span", { class: "field-name", text: name }));
    if (required) {
      label.append(" ", el("span", { class: "req", "aria-hidden": "true", text: "*" }),
        el("span", { class: "visually-hidden", text: " (required)" }));
    }
    const type = el("span", { class: "field-type", text: describeType(prop, this.schema) });
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const help = el("p", { class: "hint", id: helpId });
    const description = prop.description || schema.description;
    const bits = [];
    if (description) bits.push(description);
    if (hasDefault) bits.push(`default: ${JSON.stringify(defaultValue)}`);
    else if (!required) bits.push("optional");
    help.textContent = bits.join(" · ");
    const error = el("p", { class: "field-error", id: errorId, hidden: true });
    const describedBy = `${helpId} ${errorId}`;
    const example = Array.isArray(prop.examples) && prop.examples.length ? prop.examples[0] : undefined;

    let input;
    if (kind === "enum") {
      input = el("select", { id, name, "aria-describedby": describedBy, "aria-required": required ? "true" : undefined });
      if (!hasDefault) input.append(el("option", { value: "", text: required ? "— choose —" : "not set" }));
      for (const value of schema.enum) {
        const option = el("option", { value: JSON.stringify(value), text: String(value) });
        input.append(option);
      }
      if (hasDefault) input.value = JSON.stringify(defaultValue);
    } else if (kind === "boolean") {
      input = el("input", { id, name, type: "checkbox", "aria-describedby": describedBy });
      input.checked = hasDefault ? Boolean(defaultValue) : false;
    } else if (kind === "number" || kind === "integer") {
      input = el("input", {
        id, name, type: "number", inputmode: kind === "integer" ? "numeric" : "decimal",
        step: kind === "integer" ? "1" : "any",
        min: schema.minimum ?? undefined, max: schema.maximum ?? undefined,
        placeholder: example !== undefined ? `e.g. ${example}` : undefined,
        "aria-describedby": describedBy, "aria-required": required ? "true" : undefined,
      });
      if (hasDefault && defaultValue !== null) input.value = String(defaultValue);
    } else if (kind === "string") {
      input = el("input", {
        id, name, type: "text", spellcheck: "false",
        placeholder: example !== undefined ? `e.g. ${example}` : undefined,
        "aria-describedby": describedBy, "aria-required": required ? "true" : undefined,
      });
      if (hasDefault && defaultValue !== null) input.value = String(defaultValue);
    } else {
      const text = hasDefault ? JSON.stringify(defaultValue, null, 2) : "";
      input = el("textarea", {
        id, name, class: "json", spellcheck: "false",
        rows: String(Math.min(8, Math.max(2, text.split("\n").length))),
        placeholder: example !== undefined ? `e.g. ${JSON.stringify(example)}` : "JSON",
        "aria-describedby": describedBy, "aria-required": required ? "true" : undefined,
      });
      input.value = text;
      input.addEventListener("input", () => {
        const result = this._read(field);
        this._showError(field, result.error ? [result.error] : []);
      });
    }
    input.addEventListener("input", () => this.onChange());
    input.addEventListener("change", () => this.onChange());
    const head = el("div", { class: "field-head" }, label, type);
    if (kind === "boolean") wrapper.append(el("div", { class: "field-head" }, input, label, type));
    else wrapper.append(head, input);
    wrapper.append(help, error);
    const field = { name, kind, schema, required, hasDefault, input, error, wrapper };
    return field;
  }

  /** {value, omit, error} of one field as the form shows it. */
  _read(field) {
    const { input, kind, required, schema } = field;
    if (kind === "boolean") return { value: input.checked };
    if (kind === "enum") {
      if (input.value === "") return required ? { error: "required: choose a value" } : { omit: true };
      return { value: JSON.parse(input.value) };
    }
    if (kind === "number" || kind === "integer") {
      if (input.validity.badInput) return { error: "not a number" };
      if (input.value.trim() === "") return required ? { error: "required" } : { omit: true };
      return { value: Number(input.value) };
    }
    if (kind === "string") {
      if (input.value === "" && required) return { error: "required" };
      if (input.value === "" && !field.hasDefault) return { omit: true };
      return { value: input.value };
    }
    const text = input.value.trim();
    if (text === "") return required ? { error: "required: enter JSON" } : { omit: true };
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return { error: `invalid JSON: ${e.message}` };
    }
    const expected = schema.type;
    if (expected === "array" && !Array.isArray(value)) return { error: "expected a JSON array ([…])" };
    if (expected === "object" && (value === null || typeof value !== "object" || Array.isArray(value))) {
      return { error: "expected a JSON object ({…})" };
    }
    return { value };
  }

  /** Validate every field: {ok, values, errors: {name: [message]}}. */
  collect() {
    const values = {};
    const errors = {};
    for (const field of this.fields.values()) {
      const result = this._read(field);
      if (result.error) errors[field.name] = [result.error];
      else if (!result.omit) values[field.name] = result.value;
    }
    return { ok: Object.keys(errors).length === 0, values, errors };
  }

  /** The current values, or null while a field is invalid (for the live curl line). */
  valuesOrNull() {
    const { ok, values } = this.collect();
    return ok ? values : null;
  }

  /** Put values back into the fields (re-opening a job). */
  fill(values) {
    for (const [name, value] of Object.entries(values || {})) {
      const field = this.fields.get(name);
      if (!field) continue;
      const { input, kind } = field;
      if (kind === "boolean") input.checked = Boolean(value);
      else if (kind === "enum") input.value = JSON.stringify(value);
      else if (kind === "json") input.value = JSON.stringify(value, null, 2);
      else input.value = value === null || value === undefined ? "" : String(value);
    }
    this.clearErrors();
  }

  clearErrors() {
    for (const field of this.fields.values()) this._showError(field, []);
  }

  /** Show {name: [message]}; returns the names it could not place (unknown fields). */
  showErrors(errors) {
    const unplaced = {};
    for (const [name, messages] of Object.entries(errors)) {
      const field = this.fields.get(name);
      if (field) this._showError(field, messages);
      else unplaced[name] = messages;
    }
    return unplaced;
  }

  /** Focus the first field that shows an error; true if there was one. */
  focusFirstError() {
    for (const field of this.fields.values()) {
      if (!field.error.hidden) {
        field.input.focus();
        return true;
      }
    }
    return false;
  }

  _showError(field, messages) {
    field.error.textContent = messages.join("; ");
    field.error.hidden = messages.length === 0;
    field.wrapper.classList.toggle("invalid", messages.length > 0);
    if (messages.length) field.input.setAttribute("aria-invalid", "true");
    else field.input.removeAttribute("aria-invalid");
  }
}

/**
 * Sort a 422's `errors: [{field, message}]` into the parameter they belong to.
 * "parameters.options.width" -> {params: {options: ["width: …"]}}; capture_override.* and
 * anything else go to `capture` and `other`.
 */
export function routeServerErrors(errors) {
  const params = {};
  const capture = [];
  const other = [];
  for (const error of errors || []) {
    const path = String(error.field ?? "").split(".");
    const message = String(error.message ?? "invalid");
    if (path[0] === "parameters" && path.length >= 2) {
      const rest = path.slice(2).join(".");
      (params[path[1]] ||= []).push(rest ? `${rest}: ${message}` : message);
    } else if (path[0] === "capture_override") {
      const rest = path.slice(1).join(".");
      capture.push(rest ? `${rest}: ${message}` : message);
    } else {
      other.push(`${error.field || "request"}: ${message}`);
    }
  }
  return { params, capture, other };
}
