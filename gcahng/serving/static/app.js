// The gcahng retrieval page: queries by upload, drag-and-drop or gallery click; results; gallery pages.
"use strict";
const $ = (id) => document.getElementById(id);
const PAGE = 48;
const state = { info: null, k: 12, page: 0, query: null };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : `request failed (${response.status})`;
    throw new Error(response.status === 413 ? (detail || "the upload is too large") : text);
  }
  return body;
}

function fact(name, value) {
  const li = document.createElement("li");
  li.innerHTML = `${name} <b></b>`;
  li.querySelector("b").textContent = value;
  return li;
}

function setQuery(title, sub, imageUrl) {
  $("query-title").textContent = title;
  $("query-sub").textContent = sub;
  const img = $("query-image");
  img.src = imageUrl;
  img.hidden = false;
  $("drop-hint").hidden = true;
}

function renderResults(data) {
  const grid = $("results");
  grid.replaceChildren();
  for (const hit of data.results) {
    const card = document.createElement("figure");
    card.className = "result" + (hit.match === true ? " match" : hit.match === false ? " mismatch" : "");
    card.dataset.id = hit.id;
    card.title = `gallery #${hit.id}: click to search with it`;
    card.innerHTML = `<span class="rank"></span><img loading="lazy" alt="">
      <figcaption class="caption"><span class="label"></span><span class="score"></span></figcaption>`;
    card.querySelector(".rank").textContent = `#${hit.rank}`;
    card.querySelector("img").src = `/api/image/${hit.id}`;
    card.querySelector(".label").textContent = hit.label ?? `#${hit.id}`;
    card.querySelector(".score").textContent = hit.score.toFixed(3);
    card.addEventListener("click", () => searchById(hit.id));
    grid.appendChild(card);
  }
  const known = data.results.filter((h) => h.match !== null);
  const good = known.filter((h) => h.match).length;
  $("results-note").textContent = known.length
    ? `${good} of ${known.length} share the query's label` : `top ${data.results.length} by cosine similarity`;
}

async function searchById(id) {
  showError("");
  state.query = { id };
  try {
    const data = await api(`/api/search?id=${id}&k=${state.k}`);
    const label = data.query.label;
    setQuery(label ? `${label}` : `Gallery image #${id}`, `gallery image #${id}` + (label ? `, label ${label}` : ""),
             `/api/image/${id}`);
    renderResults(data);
  } catch (err) { showError(err.message); }
}

async function searchByFile(file) {
  showError("");
  if (!file) return;
  if (state.info && file.size > state.info.max_upload_bytes) {
    showError(`the upload is too large (limit ${(state.info.max_upload_bytes / 1e6).toFixed(0)} MB)`);
    return;
  }
  const form = new FormData();
  form.append("image", file);
  try {
    const data = await api(`/api/search?k=${state.k}`, { method: "POST", body: form });
    state.query = { file };
    setQuery(file.name, "uploaded image", URL.createObjectURL(file));
    renderResults(data);
  } catch (err) { showError(err.message); }
}

function rerun() {
  if (!state.query) return;
  if (state.query.file) searchByFile(state.query.file); else searchById(state.query.id);
}

async function loadGallery(page) {
  const total = state.info.gallery_size;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  state.page = Math.min(Math.max(0, page), pages - 1);
  const data = await api(`/api/gallery?offset=${state.page * PAGE}&limit=${PAGE}`);
  const grid = $("gallery");
  grid.replaceChildren();
  for (const item of data.items) {
    const cell = document.createElement("figure");
    cell.className = "thumb";
    cell.dataset.id = item.id;
    cell.title = `gallery #${item.id}` + (item.label ? ` (${item.label})` : "");
    cell.innerHTML = `<img loading="lazy" alt=""><span class="label"></span>`;
    cell.querySelector("img").src = `/api/image/${item.id}`;
    cell.querySelector(".label").textContent = item.label ?? `#${item.id}`;
    cell.addEventListener("click", () => { searchById(item.id); window.scrollTo({ top: 0, behavior: "smooth" }); });
    grid.appendChild(cell);
  }
  $("page-label").textContent = `page ${state.page + 1} of ${pages} · ${total} images`;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
}

function wireDropzone() {
  const zone = $("dropzone");
  zone.addEventListener("click", (e) => { if (e.target.tagName !== "LABEL") $("file-input").click(); });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file-input").click(); });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => searchByFile(e.dataTransfer.files[0]));
  $("file-input").addEventListener("change", (e) => { searchByFile(e.target.files[0]); e.target.value = ""; });
}

async function main() {
  wireDropzone();
  try {
    state.info = await api("/api/info");
  } catch (err) { showError(err.message); return; }
  const info = state.info;
  $("facts").append(
    fact("model", `${info.model.backbone ?? "?"} (${info.model.kind})`),
    fact("embedding", `${info.embedding_dim}-d`),
    fact("index", info.index_type),
    fact("gallery", `${info.gallery_size} images`),
  );
  state.k = Math.min(info.default_k, info.max_k);
  const slider = $("k");
  slider.max = Math.min(info.max_k, Math.max(48, info.default_k));
  slider.value = state.k;
  $("k-value").textContent = state.k;
  slider.addEventListener("input", () => { $("k-value").textContent = slider.value; });
  slider.addEventListener("change", () => { state.k = Number(slider.value); rerun(); });
  $("prev").addEventListener("click", () => loadGallery(state.page - 1));
  $("next").addEventListener("click", () => loadGallery(state.page + 1));
  await loadGallery(0);
}

main();
