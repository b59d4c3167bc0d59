// Small progressive enhancements shared by every page; every page also works without them.
"use strict";
document.addEventListener("click", function (event) {
  const back = event.target.closest("a[data-back]");
  if (back && window.history.length > 1) { event.preventDefault(); window.history.back(); }
  const confirmButton = event.target.closest("[data-confirm]");
  if (confirmButton && !window.confirm(confirmButton.getAttribute("data-confirm"))) { event.preventDefault(); }
});
