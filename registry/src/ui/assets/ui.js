// Quayside UI: progressive enhancement only; every page works without this file.
// - [data-copy=ID]: copies the text of #ID to the clipboard.
// - form[data-confirm]: asks before submitting (destructive actions).
// - input[data-filter=ID]: filters the rows of table #ID by the typed text.
// - select[data-submit]: submits its form when changed.
"use strict";
(function () {
  function status(el, text) {
    var old = el.textContent;
    el.textContent = text;
    window.setTimeout(function () { el.textContent = old; }, 1500);
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    var text = target.textContent || "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { status(button, "Copied"); },
        function () { select(target); status(button, "Press Ctrl+C"); });
    } else {
      select(target);
      status(button, "Press Ctrl+C");
    }
  }

  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    if (sel) { sel.removeAllRanges(); sel.addRange(range); }
  }

  function filter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table || !table.tBodies.length) { return; }
    var needle = input.value.trim().toLowerCase();
    var rows = table.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = !needle || (rows[i].getAttribute("data-name") || rows[i].textContent).toLowerCase().indexOf(needle) >= 0;
      rows[i].hidden = !hit;
      if (hit) { shown++; }
    }
    var out = document.getElementById(input.getAttribute("data-filter") + "-count");
    if (out) { out.textContent = shown + " shown"; }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (button) { event.preventDefault(); copy(button); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  document.addEventListener("input", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-filter")) { filter(event.target); }
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-submit") && el.form) { el.form.requestSubmit(); }
  });
})();
