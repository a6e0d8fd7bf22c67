// The parameter form of a plugin, made from its schema (GET /v1/plugins): one labelled control per parameter with
// its range, default and help. Values are remembered per plugin in this browser.

const storageKey = (plugin) => `kandinsky.params.${plugin}`;

/** Parameters the page sets itself instead of showing a control (fusion's weights come from the image sliders). */
export const managedParams = { fusion: ["weights"] };

function controlFor(param) {
  let control;
  if (param.type === "bool") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = param.default === "true";
  } else if (param.key === "prompt" || param.key === "negative_prompt") {
    control = document.createElement("textarea");
    control.value = param.default ?? "";
  } else if (param.type === "int" || param.type === "float" || param.type === "seed") {
    control = document.createElement("input");
    control.type = "number";
    control.step = param.type === "float" ? "any" : "1";
    if (param.minimum !== undefined) control.min = param.minimum;
    if (param.maximum !== undefined) control.max = param.maximum;
    control.value = param.default ?? "";
    if (param.default === undefined || param.default === "") {
      control.placeholder = param.model ? "default model" : "default";
    }
  } else {
    control = document.createElement("input");
    control.type = "text";
    control.value = param.default ?? "";
    control.placeholder = param.model ? "default model" : param.type === "float list" ? "[0.5, 0.5]" : "";
  }
  return control;
}

export class ParamForm {
  constructor(form) {
    this.form = form;
    this.plugin = null;
    this.controls = new Map();
  }

  show(plugin) {
    this.plugin = plugin;
    this.controls.clear();
    this.form.replaceChildren();
    const hidden = managedParams[plugin.id] || [];
    for (const param of plugin.params) {
      if (hidden.includes(param.key)) continue;
      const field = document.createElement("div");
      field.className = "field" + (param.type === "bool" ? " checkbox" : "");
      field.dataset.key = param.key;
      const id = `param-${param.key}`;
      const control = controlFor(param);
      control.id = id;
      control.name = param.key;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = param.key.replaceAll("_", " ");
      const help = document.createElement("span");
      help.className = "help";
      help.id = `${id}-help`;
      const hasRange = param.minimum !== undefined && param.type !== "bool";
      const range = hasRange ? ` (${param.minimum} to ${param.maximum})` : "";
      help.textContent = param.help + range;
      const error = document.createElement("span");
      error.className = "error";
      error.id = `${id}-error`;
      error.setAttribute("role", "alert");
      control.setAttribute("aria-describedby", `${help.id} ${error.id}`);
      if (param.type === "bool") {
        field.append(control, " ", label, help, error);
      } else if (param.type === "seed") {
        const row = document.createElement("div");
        row.className = "row";
        const random = document.createElement("button");
        random.type = "button";
        random.textContent = "Random";
        random.setAttribute("aria-label", "random seed");
        random.addEventListener("click", () => {
          control.value = "-1";
          this.remember();
        });
        row.append(control, random);
        field.append(label, row, help, error);
      } else {
        field.append(label, control, help, error);
      }
      control.addEventListener("change", () => this.remember());
      this.controls.set(param.key, control);
      this.form.append(field);
    }
    this.restore();
  }

  /** The values to send: every control that holds something, as the schema's text or JSON value. */
  values() {
    const values = {};
    for (const [key, control] of this.controls) {
      if (control.type === "checkbox") {
        values[key] = control.checked;
      } else if (control.value.trim() !== "") {
        values[key] = control.value;
      }
    }
    return values;
  }

  /** Fills the form from a job's resolved parameters ("use these parameters again"). */
  fill(params) {
    for (const [key, value] of Object.entries(params)) {
      const control = this.controls.get(key);
      if (!control) continue;
      if (control.type === "checkbox") control.checked = value === "true" || value === true;
      else control.value = value;
    }
    this.remember();
  }

  remember() {
    if (this.plugin) localStorage.setItem(storageKey(this.plugin.id), JSON.stringify(this.values()));
  }

  restore() {
    const saved = localStorage.getItem(storageKey(this.plugin.id));
    if (saved) {
      try {
        this.fill(JSON.parse(saved));
      } catch {
        localStorage.removeItem(storageKey(this.plugin.id));
      }
    }
  }

  clearErrors() {
    for (const field of this.form.querySelectorAll(".field")) {
      field.classList.remove("invalid");
      field.querySelector(".error").textContent = "";
    }
  }

  /** Shows an error next to its parameter; false when no control of the form has that name. */
  showError(key, message) {
    const control = this.controls.get(key);
    if (!control) return false;
    const field = control.closest(".field");
    field.classList.add("invalid");
    field.querySelector(".error").textContent = message;
    control.focus();
    return true;
  }
}
