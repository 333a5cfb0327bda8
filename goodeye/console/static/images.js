// The grid of the project's images: filters, paging as you scroll, cards and what their buttons do.

import { api } from "./api.js";
import { byId, copyText, h, toast } from "./dom.js";
import { confirmDialog, openPanel, refreshPanel, closePanelFor } from "./panel.js";

const PAGE_SIZE = 30;
const THUMBNAIL_WIDTH = 256;

const state = { cursor: null, done: false, loading: false, generation: 0 };
const cards = new Map(); // image id -> {image, element, picture}
let reportError = () => {};
let pager = null;

/** The serving URL's path on this server, with query parameters (variants). */
export function servingPath(image, params = {}) {
  const url = new URL(image.url);
  const query = new URLSearchParams(params).toString();
  return url.pathname + (query ? `?${query}` : "");
}

/** How long a private image's signed thumbnail URL works: longer than a page stays open, no more. */
const SIGNED_SECONDS = 3600;

/**
 * How the console loads a picture of an image. A public image loads straight from its serving
 * URL (from a signed one if that is refused, see showPicture). A private one needs the key,
 * which an <img> cannot send: it loads from a short signed URL of the same variant. `w` and
 * `fit` ask for a sized variant.
 */
export async function pictureOf(image, width) {
  const variant = { w: width, fit: "scale-down" };
  if (image.visibility === "public") {
    return { src: servingPath(image, variant), signed: () => signedPicture(image, variant), release() {} };
  }
  return signedPicture(image, variant);
}

async function signedPicture(image, variant) {
  const signed = await api("POST", `/v1/images/${image.id}/signed-url`, { json: { expires_in: SIGNED_SECONDS, ...variant } });
  // This server's path, as for public images: the page's CSP allows its own origin only.
  const url = new URL(signed.url);
  return { src: url.pathname + url.search, release() {} };
}

const showing = new WeakMap(); // <img> -> AbortController of the listeners for the picture it shows

/**
 * Show a picture in an <img>. A public image's plain URL may be refused: its first render counts
 * against the per-address limit for callers without a key, which a console showing many new
 * images reaches. Such a picture is loaded again from a signed URL, whose renders are the owner's.
 */
export function showPicture(img, picture) {
  showing.get(img)?.abort();
  const listeners = new AbortController();
  showing.set(img, listeners);
  img.addEventListener("load", () => listeners.abort(), { signal: listeners.signal });
  if (picture.signed) {
    img.addEventListener("error", () => {
      listeners.abort();
      loadSigned(img, picture);
    }, { signal: listeners.signal });
  }
  img.src = picture.src;
}

async function loadSigned(img, picture) {
  // When signing fails too (the key was revoked meanwhile), the broken picture stays.
  const signed = await picture.signed().catch(() => null);
  if (signed && img.getAttribute("src") === picture.src) showPicture(img, signed);
}

function filters() {
  return { source: byId("filter-source").value, visibility: byId("filter-visibility").value };
}

function matchesFilters(image) {
  const { source, visibility } = filters();
  return (!source || image.source === source) && (!visibility || image.visibility === visibility);
}

function showEmpty() {
  const empty = byId("grid-empty");
  empty.hidden = cards.size > 0 || !state.done;
  const filtered = Object.values(filters()).some(Boolean);
  empty.textContent = filtered
    ? "No images match these filters."
    : "No images yet. Upload some with the button above, drop them on this page, or generate one.";
}

async function loadPicture(entry, img) {
  try {
    entry.picture = await pictureOf(entry.image, THUMBNAIL_WIDTH);
    if (cards.get(entry.image.id) !== entry) return entry.picture.release();
    showPicture(img, entry.picture);
  } catch (error) {
    img.replaceWith(h("span", { class: "thumb-missing" }, "No preview"));
  }
}

function renderCard(image) {
  const nameId = `card-name-${image.id}`;
  const visibilityId = `card-visibility-${image.id}`;
  const img = h("img", { alt: "", loading: "lazy", width: image.width, height: image.height });
  const isPublic = image.visibility === "public";
  const element = h(
    "li",
    { class: "tile", "aria-labelledby": `${nameId} ${visibilityId}`, "data-id": image.id },
    h("button", { type: "button", class: "thumb", "aria-label": `Open ${image.filename}`, onclick: () => openPanel(image.id) }, img),
    h(
      "div",
      { class: "tile-meta" },
      h("span", { id: nameId, class: "filename", title: image.filename }, image.filename),
      h(
        "span",
        { class: "badges" },
        h("span", { id: visibilityId, class: `badge ${image.visibility}` }, isPublic ? "Public" : "Private"),
        image.source === "generated" ? h("span", { class: "badge generated" }, "Generated") : null,
        image.expires_at ? h("span", { class: "badge expiring", title: `Expires ${image.expires_at}` }, "Expires") : null,
      ),
    ),
    h(
      "div",
      { class: "tile-actions" },
      h("button", { type: "button", onclick: () => copyUrl(image.id) }, "Copy URL"),
      h("button", { type: "button", onclick: () => setVisibility(image.id, isPublic ? "private" : "public") }, isPublic ? "Make private" : "Make public"),
      h("button", { type: "button", class: "danger", onclick: () => deleteImage(image.id) }, "Delete"),
    ),
  );
  return { element, img };
}

function mount(image, position) {
  const { element, img } = renderCard(image);
  const entry = { image, element, picture: null };
  const previous = cards.get(image.id);
  cards.set(image.id, entry);
  if (previous) {
    previous.picture?.release();
    const focused = previous.element.contains(document.activeElement) ? document.activeElement.textContent : null;
    previous.element.replaceWith(element);
    // Keep the keyboard where it was: the same button on the new card.
    if (focused) [...element.querySelectorAll("button")].find((button) => button.textContent === focused)?.focus();
  } else if (position === "start") byId("grid").prepend(element);
  else byId("grid").append(element);
  loadPicture(entry, img);
}

/** Show a new or changed record: replaced in place, added at the top, or dropped by the filters. */
export function showImage(image) {
  if (!matchesFilters(image)) return removeCard(image.id);
  mount(image, "start");
  showEmpty();
}

function removeCard(id) {
  const entry = cards.get(id);
  if (!entry) return;
  entry.picture?.release();
  entry.element.remove();
  cards.delete(id);
  showEmpty();
}

export function imageById(id) {
  return cards.get(id)?.image;
}

export async function loadMore() {
  if (state.loading || state.done) return;
  state.loading = true;
  const generation = state.generation;
  byId("grid-error").textContent = "";
  try {
    const page = await api("GET", "/v1/images", { query: { ...filters(), limit: PAGE_SIZE, cursor: state.cursor } });
    if (generation !== state.generation) return;
    for (const image of page.data) if (!cards.has(image.id)) mount(image, "end");
    state.cursor = page.next_cursor;
    state.done = !page.next_cursor;
  } catch (error) {
    if (generation === state.generation) reportError(error, byId("grid-error"));
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      byId("grid-more").hidden = state.done;
      showEmpty();
      // Observing anew reports at once whether the end of the grid is still in view.
      if (!state.done && pager) {
        pager.unobserve(byId("grid-sentinel"));
        pager.observe(byId("grid-sentinel"));
      }
    }
  }
}

/** Empty the grid; a page still on its way is dropped when it arrives. */
export function clearGrid() {
  for (const entry of cards.values()) entry.picture?.release();
  cards.clear();
  byId("grid").replaceChildren();
  byId("grid-empty").hidden = true;
  Object.assign(state, { cursor: null, done: false, loading: false, generation: state.generation + 1 });
}

/** Empty the grid and load the first page for the current filters. */
export function reloadGrid() {
  clearGrid();
  return loadMore();
}

export async function copyUrl(id) {
  const image = imageById(id);
  toast((await copyText(image.url)) ? `Copied the URL of ${image.filename}.` : "The browser refused to copy; select the URL in the image panel.");
}

export async function updateImage(id, changes, done) {
  try {
    const image = await api("PATCH", `/v1/images/${id}`, { json: changes });
    showImage(image);
    refreshPanel(image);
    toast(done(image));
    return image;
  } catch (error) {
    reportError(error);
    return null;
  }
}

export function setVisibility(id, visibility) {
  return updateImage(id, { visibility }, (image) => `${image.filename} is now ${visibility}.`);
}

export async function deleteImage(id) {
  const image = imageById(id);
  const confirmed = await confirmDialog({
    title: `Delete ${image.filename}?`,
    text: "Its URL stops working at once, everywhere it is used. This cannot be undone.",
    confirmLabel: "Delete for good",
  });
  if (!confirmed) return;
  try {
    await api("DELETE", `/v1/images/${id}`);
    closePanelFor(id);
    removeCard(id);
    toast(`Deleted ${image.filename}.`);
  } catch (error) {
    reportError(error);
  }
}

/** Wire the filters, infinite scroll and the "Load more" button; `onError(error, where)` reports failures. */
export function initGrid(onError) {
  reportError = onError;
  byId("filter-source").addEventListener("change", reloadGrid);
  byId("filter-visibility").addEventListener("change", reloadGrid);
  byId("grid-more").addEventListener("click", loadMore);
  pager = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && cards.size > 0) loadMore();
  }, { rootMargin: "400px" });
  pager.observe(byId("grid-sentinel"));
}
