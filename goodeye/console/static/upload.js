// Uploads from the file picker or dropped on the page: several at once, each with its progress
// and, when the server refuses it, the server's own error.

import { sendForm } from "./api.js";
import { byId, h } from "./dom.js";
import { showImage } from "./images.js";

const PARALLEL_UPLOADS = 3;
const queue = [];
let running = 0;

function uploadRow(file) {
  const progress = h("progress", { max: 100, value: 0, "aria-label": `Upload progress of ${file.name}` });
  const status = h("span", { class: "upload-status" }, "Waiting");
  const row = h("li", { class: "upload-row" }, h("span", { class: "filename" }, file.name), progress, status);
  byId("upload-list").append(row);
  byId("uploads").hidden = false;
  return { row, progress, status };
}

async function upload(file, { row, progress, status }) {
  const form = new FormData();
  form.append("file", file, file.name);
  status.textContent = "Uploading";
  try {
    const image = await sendForm("POST", "/v1/images", form, (fraction) => {
      progress.value = Math.round(fraction * 100);
      status.textContent = `Uploading ${progress.value}%`;
    });
    progress.value = 100;
    status.textContent = image.filename === file.name ? "Uploaded" : `Uploaded as ${image.filename}`;
    row.classList.add("done");
    showImage(image);
  } catch (error) {
    progress.remove();
    status.textContent = `${error.code}: ${error.message}`;
    status.classList.add("error");
    row.classList.add("failed");
  }
}

function pump() {
  while (running < PARALLEL_UPLOADS && queue.length) {
    const [file, ui] = queue.shift();
    running += 1;
    upload(file, ui).finally(() => {
      running -= 1;
      pump();
    });
  }
}

/** Upload every file, a few at a time. */
export function uploadFiles(files) {
  for (const file of files) queue.push([file, uploadRow(file)]);
  pump();
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

export function initUpload(isSignedIn) {
  const input = byId("upload-input");
  input.addEventListener("change", () => {
    uploadFiles([...input.files]);
    input.value = "";
  });
  byId("uploads-clear").addEventListener("click", () => {
    for (const row of byId("upload-list").querySelectorAll(".done, .failed")) row.remove();
    byId("uploads").hidden = byId("upload-list").children.length === 0;
  });
  const overlay = byId("drop-overlay");
  let depth = 0; // dragenter/dragleave fire for every child crossed
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event) || !isSignedIn()) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    if (isSignedIn()) uploadFiles([...event.dataTransfer.files]);
  });
}
