// The live scopes: their generation counts against their budgets, and their settings.

import { api } from "./api.js";
import { byId, formatDate, h, toast } from "./dom.js";

const PAGE_SIZE = 50;
const state = { offset: 0, loading: false };
let project = null;

function scopeRow(scope) {
  const allowId = `scope-allow-${scope.slug}`;
  const limitId = `scope-limit-${scope.slug}`;
  const countId = `scope-count-${scope.slug}`;
  const allow = h("input", { type: "checkbox", id: allowId, checked: scope.allowNewGenerations });
  const limit = h("input", { type: "number", id: limitId, min: 0, value: scope.newGenerationsLimit, required: true });
  const status = h("span", { class: "status", role: "status" });
  const form = h(
    "form",
    { class: "inline", novalidate: true },
    h("label", { class: "check", for: allowId }, allow, " Allow new generations"),
    h("label", { for: limitId }, "Generation limit "),
    limit,
    h("button", { type: "submit" }, "Save"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const newGenerationsLimit = Number(limit.value);
    if (!Number.isInteger(newGenerationsLimit) || newGenerationsLimit < 0) {
      status.textContent = "The limit must be a whole number, 0 or more.";
      return;
    }
    try {
      const updated = (await api("PUT", `/api/v1/live/scopes/${encodeURIComponent(scope.slug)}`, {
        json: { allowNewGenerations: allow.checked, newGenerationsLimit },
      })).data;
      row.replaceWith(scopeRow(updated));
      toast(`Saved the settings of ${updated.slug}.`);
    } catch (error) {
      status.textContent = error.text;
    }
  });
  const row = h(
    "li",
    { class: "card scope", "aria-labelledby": `scope-slug-${scope.slug}` },
    h("h2", { id: `scope-slug-${scope.slug}` }, scope.slug),
    h(
      "p",
      { class: "scope-count" },
      h("meter", { id: countId, min: 0, max: Math.max(scope.newGenerationsLimit, 1), value: scope.currentGenerations }),
      h("label", { for: countId }, ` ${scope.currentGenerations} of ${scope.newGenerationsLimit} generations used`),
    ),
    h("p", { class: "muted" }, `Last generation: ${formatDate(scope.lastGeneratedAt)}`),
    form,
  );
  return row;
}

async function loadMore(onError) {
  if (state.loading) return;
  state.loading = true;
  byId("scopes-error").textContent = "";
  try {
    const page = await api("GET", "/api/v1/live/scopes", { query: { limit: PAGE_SIZE, offset: state.offset } });
    byId("scope-list").append(...page.data.map(scopeRow));
    state.offset += page.data.length;
    byId("scopes-more").hidden = !page.pagination.hasMore;
    byId("scopes-empty").hidden = page.pagination.total > 0;
  } catch (error) {
    onError(error, byId("scopes-error"));
  } finally {
    state.loading = false;
  }
}

/** Load the project's settings and the first page of scopes afresh. */
export async function showScopes(onError) {
  byId("scope-list").replaceChildren();
  state.offset = 0;
  try {
    project = (await api("GET", "/api/v1/project")).data;
    byId("allow-new-scopes").checked = project.allowNewLiveScopes;
    const origin = window.location.origin;
    byId("scopes-example").replaceChildren(
      "A live URL, for an <img>: ",
      h("code", {}, `${origin}/cdn/${project.org}/${project.slug}/live/SCOPE?prompt=a+red+fox&aspectRatio=16:9`),
    );
  } catch (error) {
    return onError(error, byId("scopes-error"));
  }
  return loadMore(onError);
}

export function initScopes(onError) {
  byId("scopes-more").addEventListener("click", () => loadMore(onError));
  byId("allow-new-scopes").addEventListener("change", async (event) => {
    try {
      project = (await api("PATCH", "/api/v1/project", { json: { allowNewLiveScopes: event.target.checked } })).data;
      toast(project.allowNewLiveScopes ? "New live scopes are created on first use." : "Only existing live scopes answer now.");
    } catch (error) {
      event.target.checked = !event.target.checked;
      onError(error, byId("scopes-error"));
    }
  });
}
