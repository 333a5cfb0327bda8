// The console's entry point: sign-in with an API key, the two views, and how errors are shown.

import { api, forgetKey, storeKey, storedKey } from "./api.js";
import { byId, toast } from "./dom.js";
import { initGenerate, loadGenerators } from "./generate.js";
import { clearGrid, initGrid, reloadGrid } from "./images.js";
import { initPanel } from "./panel.js";
import { initScopes, showScopes } from "./scopes.js";
import { initUpload } from "./upload.js";

const VIEWS = ["images", "scopes"];

function showSignIn(message = "") {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  byId("app").hidden = true;
  byId("signin").hidden = false;
  byId("signin-error").textContent = message;
  byId("api-key").value = "";
  byId("api-key").focus();
}

/** Report a failed call: a refused key signs out; otherwise the message goes where it belongs. */
function reportError(error, where) {
  if (error.status === 401 && /invalid_api_key/i.test(error.code)) {
    forgetKey();
    return showSignIn(error.text);
  }
  if (where) where.textContent = error.text;
  else if (byId("panel").open) byId("panel-error").textContent = error.text;
  else toast(error.text);
}

function currentView() {
  const name = window.location.hash.replace(/^#/, "");
  return VIEWS.includes(name) ? name : "images";
}

function showView() {
  const view = currentView();
  for (const name of VIEWS) byId(`view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "scopes" && storedKey()) showScopes(reportError);
}

async function enter(project) {
  byId("project-name").textContent = `${project.org} / ${project.slug}`;
  byId("signin").hidden = true;
  byId("app").hidden = false;
  showView();
  byId("main").focus();
  loadGenerators();
  await reloadGrid();
}

async function signIn(event) {
  event.preventDefault();
  const key = byId("api-key").value.trim();
  const error = byId("signin-error");
  if (!key) {
    error.textContent = "Paste an API key first.";
    return;
  }
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    const project = (await api("GET", "/api/v1/project", { key })).data;
    storeKey(key);
    byId("api-key").value = "";
    await enter(project);
  } catch (failure) {
    error.textContent = failure.text;
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  forgetKey();
  // Nothing of this project stays on the page for whoever signs in next.
  clearGrid();
  byId("upload-list").replaceChildren();
  byId("uploads").hidden = true;
  byId("scope-list").replaceChildren();
  byId("project-name").textContent = "";
  byId("generate-status").textContent = "";
  byId("generate-prompt").value = "";
  showSignIn();
}

async function start() {
  initGrid(reportError);
  initPanel();
  initUpload(() => Boolean(storedKey()));
  initGenerate();
  initScopes(reportError);
  byId("signin-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", showView);
  if (!storedKey()) return showSignIn();
  try {
    await enter((await api("GET", "/api/v1/project")).data);
  } catch (error) {
    forgetKey();
    showSignIn(error.text);
  }
}

start();
