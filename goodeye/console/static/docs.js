// The API docs page: renders /openapi.json for people.
// Hand-written (about 200 lines) instead of a vendored viewer: those are hundreds of kilobytes,
// and most need inline styles or eval, which this site's Content-Security-Policy forbids.

import { byId, h } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete", "head"];
let spec = null;

function resolve(node) {
  let seen = 0;
  while (node && node.$ref && seen++ < 20) {
    node = node.$ref.replace(/^#\//, "").split("/").reduce((at, part) => at?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], spec);
  }
  return node || {};
}

function refName(ref) {
  return ref.split("/").pop();
}

// Descriptions use a little Markdown: paragraphs, "* " lists and `code`.
function inline(text) {
  return text.split(/(`[^`]+`)/).map((part) => (part.startsWith("`") && part.endsWith("`") && part.length > 1 ? h("code", {}, part.slice(1, -1)) : part));
}

function markdown(text) {
  if (!text) return [];
  return text.trim().split(/\n\s*\n/).map((block) => {
    const lines = block.split("\n");
    if (lines.every((line) => /^\s*[*-] /.test(line) || /^\s{2,}\S/.test(line))) {
      const items = [];
      for (const line of lines) {
        if (/^\s*[*-] /.test(line)) items.push(line.replace(/^\s*[*-] /, ""));
        else items[items.length - 1] += ` ${line.trim()}`;
      }
      return h("ul", {}, items.map((item) => h("li", {}, inline(item))));
    }
    return h("p", {}, inline(lines.join(" ")));
  });
}

function constraints(schema) {
  const notes = [];
  if (schema.enum) notes.push(`one of ${schema.enum.map((value) => JSON.stringify(value)).join(", ")}`);
  if ("const" in schema) notes.push(`always ${JSON.stringify(schema.const)}`);
  if (schema.pattern) notes.push(`pattern ${schema.pattern}`);
  if (schema.format) notes.push(schema.format);
  if ("minimum" in schema) notes.push(`≥ ${schema.minimum}`);
  if ("maximum" in schema) notes.push(`≤ ${schema.maximum}`);
  if ("minLength" in schema) notes.push(`length ≥ ${schema.minLength}`);
  if ("maxLength" in schema) notes.push(`length ≤ ${schema.maxLength}`);
  if ("default" in schema) notes.push(`default ${JSON.stringify(schema.default)}`);
  return notes;
}

/** A schema as a short label (type, or a link to a named schema) followed by nested properties. */
function schemaView(schema, depth = 0) {
  if (!schema) return [];
  if (schema.$ref) return [h("a", { href: `#schema-${refName(schema.$ref)}` }, refName(schema.$ref))];
  const parts = [];
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (schema[key]) {
      const joiner = key === "allOf" ? " and " : " or ";
      schema[key].forEach((option, index) => {
        if (index) parts.push(joiner);
        parts.push(...schemaView(option, depth + 1));
      });
    }
  }
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type === "array" && schema.items) parts.push("array of ", ...schemaView(schema.items, depth + 1));
  else if (type) parts.push(h("span", { class: "mono" }, type));
  const notes = constraints(schema);
  if (notes.length) parts.push(h("span", { class: "muted" }, ` (${notes.join("; ")})`));
  if (schema.properties && depth < 4) {
    const required = new Set(schema.required || []);
    parts.push(h("ul", { class: "schema" }, Object.entries(schema.properties).map(([name, property]) =>
      h("li", {}, h("code", {}, name), required.has(name) ? h("strong", {}, " required") : "", ": ",
        ...schemaView(property, depth + 1),
        property.description ? h("span", { class: "muted" }, " — ", ...inline(property.description.trim())) : ""))));
  }
  return parts;
}

function parametersTable(parameters) {
  if (!parameters.length) return [];
  return [h("h4", {}, "Parameters"), h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "In"), h("th", {}, "Schema"), h("th", {}, "Description"))),
    h("tbody", {}, parameters.map(resolve).map((parameter) => h("tr", {},
      h("td", {}, h("code", {}, parameter.name), parameter.required ? h("strong", {}, " required") : ""),
      h("td", {}, parameter.in),
      h("td", {}, ...schemaView(parameter.schema)),
      h("td", {}, ...inline((parameter.description || "").trim()))))))];
}

function contentView(content) {
  return Object.entries(content || {}).map(([mediaType, media]) =>
    h("div", {}, h("code", {}, mediaType), media.schema ? h("div", {}, ...schemaView(media.schema)) : ""));
}

function responsesTable(responses) {
  return [h("h4", {}, "Responses"), h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Description"), h("th", {}, "Body"))),
    h("tbody", {}, Object.entries(responses).map(([status, response]) => {
      const resolved = resolve(response);
      return h("tr", {},
        h("td", {}, h("code", {}, status)),
        h("td", {}, ...inline((resolved.description || "").trim())),
        h("td", {}, ...contentView(resolved.content)));
    })))];
}

function security(operation) {
  const schemes = (operation.security || spec.security || []).map((entry) => Object.keys(entry)[0] || "none");
  if (!schemes.length) return "no key";
  return schemes.map((scheme) => (scheme === "none" ? "no key" : scheme === "bearerAuth" ? "Authorization: Bearer KEY" : "X-API-Key: KEY")).join(" or ");
}

function operationId(path, method, operation) {
  return `op-${operation.operationId || `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-")}`;
}

function operationView(path, method, operation, pathItem) {
  const parameters = [...(pathItem.parameters || []), ...(operation.parameters || [])];
  const body = operation.requestBody ? resolve(operation.requestBody) : null;
  return h("section", { class: "card operation", id: operationId(path, method, operation), "aria-labelledby": `${operationId(path, method, operation)}-title` },
    h("h3", { id: `${operationId(path, method, operation)}-title` }, h("span", { class: `method ${method}` }, method.toUpperCase()), " ", h("span", { class: "path" }, path)),
    h("p", {}, h("strong", {}, operation.summary || "")),
    ...markdown(operation.description),
    h("p", { class: "muted" }, `Credentials: ${security(operation)}`),
    ...parametersTable(parameters),
    ...(body ? [h("h4", {}, `Request body${body.required ? "" : " (optional)"}`), ...contentView(body.content)] : []),
    ...responsesTable(operation.responses || {}));
}

function render() {
  byId("docs-title").textContent = `${spec.info.title} API ${spec.info.version}`;
  document.title = `${spec.info.title} API`;
  byId("docs-intro").replaceChildren(...markdown(spec.info.description));
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const tag = (item[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, item[method], item]);
    }
  }
  const toc = [];
  const body = [];
  for (const [tag, operations] of byTag) {
    toc.push(h("h2", {}, tag), h("ul", {}, operations.map(([path, method, operation]) =>
      h("li", {}, h("a", { href: `#${operationId(path, method, operation)}` }, `${method.toUpperCase()} ${path}`)))));
    body.push(h("h2", { id: `tag-${tag}` }, tag), ...operations.map((args) => operationView(...args)));
  }
  const schemas = Object.entries(spec.components?.schemas || {});
  toc.push(h("h2", {}, "Schemas"), h("ul", {}, schemas.map(([name]) => h("li", {}, h("a", { href: `#schema-${name}` }, name)))));
  body.push(h("h2", { id: "schemas" }, "Schemas"), ...schemas.map(([name, schema]) =>
    h("section", { class: "card operation", id: `schema-${name}` }, h("h3", {}, name), ...markdown(schema.description), h("div", {}, ...schemaView({ ...schema, description: undefined })))));
  byId("docs-toc").replaceChildren(...toc);
  byId("docs-body").replaceChildren(...body);
  if (window.location.hash) document.getElementById(window.location.hash.slice(1))?.scrollIntoView();
}

async function start() {
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    spec = await response.json();
    render();
  } catch (error) {
    byId("docs-body").replaceChildren(h("p", { class: "error", role: "alert" }, `The API document could not be loaded: ${error.message}`));
  }
}

start();
