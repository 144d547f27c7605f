/* MedSeg-R serve: the tables of the page (the parsed report with its evidence, the result per
   finding, the totals and the download links). Uses $, state and api of app.js. */
"use strict";

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null || text === "" ? "–" : text;
  if (className) td.className = className;
  return td;
}

function showParsed(view) {
  const box = $("report-view");
  box.textContent = "";
  for (const piece of view.pieces) {
    const span = document.createElement("span");
    span.textContent = piece.text;
    if (piece.kind) {
      span.className =
        `ev-${piece.kind}` +
        (piece.negated ? " negated" : "") +
        (piece.uncertain ? " uncertain" : "");
      span.title =
        `${piece.kind} evidence of finding ${piece.finding + 1}` +
        (piece.negated ? " (negated)" : "");
    }
    box.appendChild(span);
  }
  const body = $("parsed").tBodies[0];
  body.textContent = "";
  for (const f of view.findings) {
    const row = body.insertRow();
    if (f.negated || f.artefact) row.className = "negated-row";
    const flag = f.negated ? "negated" : f.artefact ? "artefact" : f.uncertain ? "uncertain" : "";
    cell(row, f.index + 1);
    cell(row, f.target + (flag ? ` (${flag})` : ""));
    cell(row, f.side);
    cell(row, f.zones.join(", "));
    cell(
      row,
      [f.organ, f.segment, f.image_region && `image ${f.image_region}`].filter(Boolean).join(" / "),
    );
    cell(row, [...f.texture, ...f.shape].join(", "));
    cell(row, [f.size_mm && `${f.size_mm} mm`, f.size_class].filter(Boolean).join(", "));
  }
  if (!view.findings.length) {
    const row = body.insertRow();
    const normal = view.normal_statements || [];
    cell(
      row,
      normal.length
        ? `no finding; a normal study stated ("${normal.join('", "')}"): an empty mask`
        : "no finding parsed",
    ).colSpan = 7;
  }
}

function size(row) {
  if (row.volume_ml != null) return `${row.volume_ml} ml`;
  if (row.area_mm2 != null) return `${row.area_mm2} mm²`; // a 2-D image or one slice with spacing
  if (row.voxels != null) return `${row.voxels} vox`;
  return `${row.area_px} px`;
}

function showWarnings(warnings) {
  const list = $("warnings");
  list.textContent = "";
  for (const text of warnings || []) {
    const item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
  }
  list.classList.toggle("hidden", !list.childElementCount);
}

function showResult(view) {
  const body = $("findings").tBodies[0];
  body.textContent = "";
  for (const id of ["mask", "json", "overlay", "sheet", "stored_mask"]) {
    const a = $(`download-${id}`);
    const ok = view && view.downloads.includes(id);
    a.classList.toggle("disabled", !ok);
    if (id === "sheet" || id === "stored_mask") a.classList.toggle("hidden", !ok);
    // a greyed-out link is out of the tab order and goes nowhere (app.js stops its click too)
    if (ok) a.href = api(`download/${id}?rev=${view.rev}`);
    else a.removeAttribute("href");
    a.tabIndex = ok ? 0 : -1;
    a.setAttribute("aria-disabled", String(!ok));
  }
  showWarnings(view && view.warnings);
  if (!view) {
    $("totals").textContent = "";
    return;
  }
  for (const f of view.findings) {
    const row = body.insertRow();
    cell(row, f.index + 1);
    cell(row, f.target);
    cell(row, f.side);
    cell(row, f.zones.join(", ")).title = [f.organ, f.segment].filter(Boolean).join(" / ");
    cell(row, size(f));
    cell(row, f.diameter && `${f.diameter.value} ${f.diameter.unit}`);
    cell(row, f.reported_size_mm && `${f.reported_size_mm} mm`);
    cell(row, f.mean_probability == null ? null : f.mean_probability.toFixed(2));
    const z = cell(
      row,
      f.z_range && (f.z_range[1] < 0 ? "none" : `z ${f.z_range[0]}–${f.z_range[1]}`),
      "volume-only",
    );
    if (f.z_range && f.z_range[1] >= 0) {
      z.style.cursor = "pointer";
      z.title = "show this range";
      z.onclick = () => {
        state.z = Math.round((f.z_range[0] + f.z_range[1]) / 2);
        $("slice").value = state.z;
        refreshPicture();
      };
    }
  }
  const c = view.confidence,
    total = view.total;
  const parts = [`mask: ${size(total)}, ${total.components} component(s)`];
  if (c.mean_probability_inside != null)
    parts.push(`mean probability inside ${c.mean_probability_inside.toFixed(2)}`);
  if (c.predicted_iou != null) parts.push(`predicted IoU ${c.predicted_iou.toFixed(2)}`);
  if (view.unassigned.components)
    parts.push(`${view.unassigned.components} component(s) no finding covers`);
  if (view.slices)
    parts.push(
      `${view.slices.described} of ${view.slices.total} slices described, ` +
        `${view.slices.with_mask} with mask`,
    );
  if (view.rule) parts.push(view.rule);
  $("totals").textContent = parts.join(" · ");
}
