// The comparison page's viewing tools: overlay, wipe, flicker, and zoom and pan applied to both faces at
// once. Without this script the page shows the two faces side by side.
"use strict";
(function () {
  const root = document.querySelector("[data-compare]");
  if (!root) { return; }
  const tools = root.querySelector(".cmp-tools");
  const stage = root.querySelector(".cmp-stage");
  const views = Array.from(stage.querySelectorAll(".cmp-view"));
  const images = Array.from(stage.querySelectorAll(".cmp-view img"));
  const top = stage.querySelector('[data-layer="reference"] .cmp-view');
  const opacity = document.getElementById("cmp-opacity");
  const wipe = document.getElementById("cmp-wipe");
  const rate = document.getElementById("cmp-rate");
  const rateValue = document.getElementById("cmp-rate-value");
  const flickerButton = document.getElementById("cmp-flicker");
  const zoomLevel = document.getElementById("cmp-zoom-level");
  const MIN_ZOOM = 1;
  const MAX_ZOOM = 8;
  let mode = "side";
  let zoom = 1;
  let x = 0;
  let y = 0;
  let timer = null;
  tools.hidden = false;

  // -- zoom and pan: one transform for both images ------------------------------------------------
  function side() { return views.length ? views[0].clientWidth : 0; }

  function apply() {
    const size = side();
    x = Math.min(0, Math.max(size - size * zoom, x));
    y = Math.min(0, Math.max(size - size * zoom, y));
    const transform = "translate(" + x + "px, " + y + "px) scale(" + zoom + ")";
    images.forEach(function (image) { image.style.transform = transform; });
    zoomLevel.textContent = Math.round(zoom * 100) + "%";
  }

  function zoomAt(factor, cx, cy) {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom * factor));
    x = cx - (cx - x) * next / zoom;  // keep the point under (cx, cy) where it is
    y = cy - (cy - y) * next / zoom;
    zoom = next;
    apply();
  }

  function centre() { return side() / 2; }
  document.getElementById("cmp-zoom-in").addEventListener("click", function () { zoomAt(1.25, centre(), centre()); });
  document.getElementById("cmp-zoom-out").addEventListener("click", function () { zoomAt(0.8, centre(), centre()); });
  document.getElementById("cmp-zoom-reset").addEventListener("click", function () { zoom = 1; x = 0; y = 0; apply(); });

  views.forEach(function (view) {
    view.addEventListener("wheel", function (event) {
      event.preventDefault();
      const box = view.getBoundingClientRect();
      const scale = view.clientWidth / box.width || 1;
      zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, (event.clientX - box.left) * scale, (event.clientY - box.top) * scale);
    }, { passive: false });
    let last = null;
    view.addEventListener("pointerdown", function (event) {
      last = { x: event.clientX, y: event.clientY };
      view.setPointerCapture(event.pointerId);
      view.classList.add("dragging");
    });
    view.addEventListener("pointermove", function (event) {
      if (!last) { return; }
      x += event.clientX - last.x;
      y += event.clientY - last.y;
      last = { x: event.clientX, y: event.clientY };
      apply();
    });
    function end() { last = null; view.classList.remove("dragging"); }
    view.addEventListener("pointerup", end);
    view.addEventListener("pointercancel", end);
  });
  window.addEventListener("resize", apply);

  // -- modes -----------------------------------------------------------------------------------------
  function stopFlicker() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
    if (top) { top.style.visibility = ""; }
    flickerButton.textContent = "Start";
  }

  function startFlicker() {
    stopFlicker();
    const every = 1000 / Number(rate.value);
    timer = window.setInterval(function () {
      if (top) { top.style.visibility = top.style.visibility === "hidden" ? "" : "hidden"; }
    }, every);
    flickerButton.textContent = "Stop";
  }

  function show() {
    if (!top) { return; }
    top.style.opacity = mode === "overlay" ? String(Number(opacity.value) / 100) : "";
    top.style.clipPath = mode === "wipe" ? "inset(0 0 0 " + wipe.value + "%)" : "";
  }

  function setMode(next) {
    mode = next;
    stage.setAttribute("data-mode", mode);
    stage.classList.toggle("stacked", mode !== "side");
    root.querySelectorAll(".cmp-control").forEach(function (control) {
      control.classList.toggle("active", control.getAttribute("data-for") === mode);
    });
    stopFlicker();
    show();
    if (mode === "flicker") { startFlicker(); }
    apply();
  }

  root.querySelectorAll('input[name="cmp-mode"]').forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) { setMode(radio.value); } });
  });
  opacity.addEventListener("input", show);
  wipe.addEventListener("input", show);
  rate.addEventListener("input", function () {
    rateValue.textContent = rate.value;
    if (timer !== null) { startFlicker(); }
  });
  flickerButton.addEventListener("click", function () {
    if (timer !== null) { stopFlicker(); } else { startFlicker(); }
  });
  const chosen = root.querySelector('input[name="cmp-mode"]:checked');
  setMode(chosen ? chosen.value : "side");
})();
