// The image panel (an in-page dialog): preview, record, share snippets, visibility, expiry, alias,
// new bytes, delete; and the confirmation dialog.

import { sendForm } from "./api.js";
import { byId, copyText, formatBytes, formatDate, h, toast } from "./dom.js";
import { deleteImage, imageById, pictureOf, setVisibility, showImage, showPicture, updateImage } from "./images.js";

const PREVIEW_WIDTH = 1080;
// Widths offered in the <img srcset> snippet (all among the server's default variant sizes).
const SRCSET_WIDTHS = [384, 640, 1080, 1920];

let current = null; // {image, picture}

function panelError(error) {
  byId("panel-error").textContent = error ? error.text || String(error) : "";
}

function detailRows(image) {
  const rows = [
    ["ID", image.id],
    ["URL", image.url],
    ["Visibility", image.visibility],
    ["Source", image.source],
    ["Type", image.content_type],
    ["Size", formatBytes(image.size_bytes)],
    ["Dimensions", `${image.width} × ${image.height}`],
    ["Alias", image.alias || "none"],
    ["Expires", formatDate(image.expires_at)],
    ["Created", formatDate(image.created_at)],
    ["Updated", formatDate(image.updated_at)],
    ["SHA-256", image.sha256],
  ];
  if (image.generation && image.generation.prompt) rows.push(["Prompt", image.generation.prompt]);
  if (image.scope) rows.push(["Live scope", image.scope]);
  return rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]);
}

function variantUrl(image, width) {
  return `${image.url}?w=${width}`;
}

/** The snippets people paste: the URL, Markdown, and an <img> with a srcset of sized variants. */
export function snippets(image) {
  const widths = SRCSET_WIDTHS.filter((width) => width < image.width);
  const srcset = [...widths.map((width) => `${variantUrl(image, width)} ${width}w`), `${image.url} ${image.width}w`].join(", ");
  const alt = image.filename.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
  const html = widths.length
    ? `<img src="${image.url}" srcset="${srcset}" sizes="(max-width: ${image.width}px) 100vw, ${image.width}px" width="${image.width}" height="${image.height}" alt="${alt}">`
    : `<img src="${image.url}" width="${image.width}" height="${image.height}" alt="${alt}">`;
  return [
    ["URL", image.url],
    ["Markdown", `![${image.filename.replace(/[[\]]/g, "")}](${image.url})`],
    ["HTML", html],
  ];
}

function renderSnippets(image) {
  return snippets(image).map(([name, text]) => {
    const id = `snippet-${name.toLowerCase()}`;
    return h(
      "div",
      { class: "snippet" },
      h("label", { for: id }, name),
      name === "HTML"
        ? h("textarea", { id, readonly: true, rows: 4, spellcheck: "false" }, text)
        : h("input", { id, type: "text", readonly: true, spellcheck: "false", value: text }),
      h("button", {
        type: "button",
        onclick: async () => toast((await copyText(text)) ? `Copied the ${name === "URL" ? "URL" : `${name} snippet`}.` : "The browser refused to copy; select the text instead."),
      }, `Copy ${name}`),
    );
  });
}

function fill(image) {
  const isPublic = image.visibility === "public";
  byId("panel-title").textContent = image.filename;
  byId("panel-details").replaceChildren(...detailRows(image));
  byId("panel-actions").replaceChildren(
    h("button", { type: "button", onclick: () => setVisibility(image.id, isPublic ? "private" : "public") }, isPublic ? "Make private" : "Make public"),
    h("button", { type: "button", class: "danger", onclick: () => deleteImage(image.id) }, "Delete"),
  );
  byId("panel-snippets").replaceChildren(...renderSnippets(image));
  byId("panel-share-note").textContent = isPublic
    ? "Public: anyone with the URL can load it."
    : "Private: only requests with this project's key can load the URL. Make it public to embed it in a page.";
  byId("panel-alias-input").value = image.alias ? image.alias.slice(1) : "";
}

async function showPreview(image) {
  const img = byId("panel-preview");
  current.picture?.release();
  current.picture = null;
  img.removeAttribute("src");
  img.alt = `Preview of ${image.filename}`;
  try {
    const picture = await pictureOf(image, PREVIEW_WIDTH);
    if (current?.image.id !== image.id) return picture.release();
    current.picture = picture;
    showPicture(img, picture);
  } catch (error) {
    panelError(error);
  }
}

export function openPanel(id) {
  const image = imageById(id);
  current = { image, picture: null };
  panelError(null);
  byId("panel-status").textContent = "";
  fill(image);
  byId("panel").showModal();
  showPreview(image);
}

/** Show a changed record in the panel if it is the one open. */
export function refreshPanel(image) {
  if (!current || current.image.id !== image.id || !byId("panel").open) return;
  const previous = current.image;
  current.image = image;
  fill(image);
  if (previous.sha256 !== image.sha256 || previous.visibility !== image.visibility) showPreview(image);
}

export function closePanelFor(id) {
  if (current && current.image.id === id && byId("panel").open) byId("panel").close();
}

async function replaceBytes(file) {
  const { image } = current;
  const progress = byId("panel-replace-progress");
  const form = new FormData();
  form.append("file", file);
  progress.hidden = false;
  progress.value = 0;
  panelError(null);
  try {
    const record = await sendForm("PUT", `/v1/images/${image.id}/file`, form, (fraction) => (progress.value = fraction * 100));
    showImage(record);
    refreshPanel(record);
    toast(`Replaced the bytes of ${record.filename}; its URL is unchanged.`);
  } catch (error) {
    panelError(error);
  } finally {
    progress.hidden = true;
  }
}

/** Ask in an in-page dialog; resolves to true when the person confirms. */
export function confirmDialog({ title, text, confirmLabel }) {
  const dialog = byId("confirm");
  byId("confirm-title").textContent = title;
  byId("confirm-text").textContent = text;
  byId("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function initPanel() {
  const panel = byId("panel");
  byId("panel-close").addEventListener("click", () => panel.close());
  panel.addEventListener("close", () => {
    current?.picture?.release();
    current = null;
    byId("panel-preview").removeAttribute("src");
  });
  // A click on the backdrop (outside the dialog's box) closes it, as Escape does.
  panel.addEventListener("click", (event) => {
    if (event.target === panel) panel.close();
  });
  byId("panel-ttl").addEventListener("submit", (event) => {
    event.preventDefault();
    const amount = Number(byId("panel-ttl-amount").value);
    if (!Number.isInteger(amount) || amount < 1) return panelError({ text: "The expiry must be a whole number above zero." });
    const seconds = amount * Number(byId("panel-ttl-unit").value);
    updateImage(current.image.id, { ttl_seconds: seconds }, (image) => `${image.filename} expires ${formatDate(image.expires_at)}.`);
  });
  byId("panel-ttl-clear").addEventListener("click", () =>
    updateImage(current.image.id, { permanent: true }, (image) => `${image.filename} no longer expires.`));
  byId("panel-alias").addEventListener("submit", (event) => {
    event.preventDefault();
    const alias = byId("panel-alias-input").value.trim();
    if (!alias) return panelError({ text: "Type an alias, or use Remove alias." });
    updateImage(current.image.id, { alias }, (image) => `${image.filename} is now ${image.alias}.`);
  });
  byId("panel-alias-clear").addEventListener("click", () =>
    updateImage(current.image.id, { alias: null }, (image) => `${image.filename} has no alias.`));
  byId("panel-replace").addEventListener("change", (event) => {
    const [file] = event.target.files;
    event.target.value = "";
    if (file) replaceBytes(file);
  });
  byId("confirm-ok").addEventListener("click", () => byId("confirm").close("ok"));
  byId("confirm-cancel").addEventListener("click", () => byId("confirm").close("cancel"));
}
