// Eye marking: click the two eye centres on the photo; the positions, in the photo's own pixels, fill the
// form's four number fields. Without this script the user types the numbers.
"use strict";
(function () {
  const box = document.getElementById("eyes-photo");
  const img = document.getElementById("eyes-img");
  const marks = document.getElementById("eyes-marks");
  const clear = document.getElementById("eyes-clear");
  if (!box || !img || !marks || !box.hasAttribute("data-clickable")) { return; }
  const SVG = "http://www.w3.org/2000/svg";
  const fields = ["left_x", "left_y", "right_x", "right_y"].map(function (name) {
    return document.querySelector('input[name="' + name + '"]');
  });
  let points = [];

  function natural() {
    return { w: img.naturalWidth || img.width, h: img.naturalHeight || img.height };
  }

  function draw() {
    const size = natural();
    marks.setAttribute("viewBox", "0 0 " + size.w + " " + size.h);
    while (marks.firstChild) { marks.removeChild(marks.firstChild); }
    const r = Math.max(3, Math.round(Math.min(size.w, size.h) / 80));
    points.forEach(function (p) {
      const ring = document.createElementNS(SVG, "circle");
      ring.setAttribute("cx", p.x); ring.setAttribute("cy", p.y); ring.setAttribute("r", r * 2);
      ring.setAttribute("class", "ring");
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", p.x); dot.setAttribute("cy", p.y); dot.setAttribute("r", Math.max(1, r / 2));
      dot.setAttribute("class", "dot");
      marks.appendChild(ring); marks.appendChild(dot);
    });
    if (clear) { clear.hidden = points.length === 0; }
  }

  function fill() {
    // "left" is the eye on the image's left: the one with the smaller x.
    const sorted = points.slice().sort(function (a, b) { return a.x - b.x; });
    const values = sorted.length === 2 ? [sorted[0].x, sorted[0].y, sorted[1].x, sorted[1].y]
      : sorted.length === 1 ? [sorted[0].x, sorted[0].y, "", ""] : ["", "", "", ""];
    fields.forEach(function (input, i) { if (input) { input.value = values[i]; } });
  }

  function fromInputs() {
    const v = fields.map(function (input) { return input ? parseFloat(input.value) : NaN; });
    points = [];
    if (isFinite(v[0]) && isFinite(v[1])) { points.push({ x: v[0], y: v[1] }); }
    if (isFinite(v[2]) && isFinite(v[3])) { points.push({ x: v[2], y: v[3] }); }
    draw();
  }

  img.addEventListener("click", function (event) {
    const rect = img.getBoundingClientRect();
    const size = natural();
    if (!rect.width || !rect.height) { return; }
    const x = (event.clientX - rect.left) * size.w / rect.width;
    const y = (event.clientY - rect.top) * size.h / rect.height;
    if (points.length >= 2) { points = []; }
    points.push({ x: Math.round(Math.min(Math.max(x, 0), size.w - 1) * 10) / 10,
                  y: Math.round(Math.min(Math.max(y, 0), size.h - 1) * 10) / 10 });
    fill(); draw();
  });
  fields.forEach(function (input) { if (input) { input.addEventListener("input", fromInputs); } });
  if (clear) { clear.addEventListener("click", function () { points = []; fill(); draw(); }); }
  box.classList.add("clickable");
  if (img.complete) { fromInputs(); } else { img.addEventListener("load", fromInputs); }
})();
