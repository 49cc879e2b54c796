// The little the console's pages do in the browser, served by Closer itself: the
// Content-Security-Policy allows no inline script (no onsubmit="…" attributes either).
(function () {
  "use strict";
  // A form with data-confirm="question" is sent only when the person confirms it
  // (deleting a knowledge document).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
