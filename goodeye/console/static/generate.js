// The generate form: generator, prompt, aspect ratio, count; the hosted results join the grid.

import { api } from "./api.js";
import { byId, h } from "./dom.js";
import { showImage } from "./images.js";

let generators = [];

function chosen() {
  return generators.find((generator) => generator.id === byId("generate-generator").value) || generators[0];
}

function fitToGenerator() {
  const generator = chosen();
  if (!generator) return;
  const aspect = byId("generate-aspect");
  const previous = aspect.value || "1:1";
  aspect.replaceChildren(...generator.aspect_ratios.map((ratio) => h("option", { value: ratio }, ratio)));
  aspect.value = generator.aspect_ratios.includes(previous) ? previous : generator.aspect_ratios[0];
  const count = byId("generate-count");
  count.max = generator.max_n;
  if (Number(count.value) > generator.max_n) count.value = generator.max_n;
}

export async function loadGenerators() {
  const select = byId("generate-generator");
  try {
    generators = (await api("GET", "/v1/image-generators")).data;
  } catch (error) {
    byId("generate-status").textContent = error.text;
    return;
  }
  select.replaceChildren(
    ...generators.map((generator) =>
      h("option", { value: generator.id }, `${generator.name}${generator.is_ai_model ? "" : " (not AI)"}`)),
  );
  fitToGenerator();
}

async function generate(event) {
  event.preventDefault();
  const status = byId("generate-status");
  const prompt = byId("generate-prompt").value.trim();
  const n = Number(byId("generate-count").value);
  if (!prompt) {
    status.textContent = "Write a prompt first.";
    return byId("generate-prompt").focus();
  }
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  status.textContent = "Generating…";
  try {
    const generation = await api("POST", `/v1/image-generators/${encodeURIComponent(chosen().id)}/generate`, {
      json: { prompt, n, aspect_ratio: byId("generate-aspect").value },
    });
    const hosted = generation.hosted_images.filter(Boolean);
    const records = await Promise.all(hosted.map((image) => api("GET", `/v1/images/${image.id}`)));
    records.forEach(showImage);
    const missing = generation.hosted_images.length - hosted.length;
    status.textContent = `Generated ${records.length} image${records.length === 1 ? "" : "s"}` +
      (missing ? `; ${missing} could not be hosted.` : ".");
  } catch (error) {
    status.textContent = error.text;
  } finally {
    button.disabled = false;
  }
}

export function initGenerate() {
  byId("generate-generator").addEventListener("change", fitToGenerator);
  byId("generate-form").addEventListener("submit", generate);
}
