/* Operator console behaviour, loaded by every /ops page (no inline scripts: the CSP allows only this file).
   Forms marked data-confirm ask before they post; other helpers of the console register themselves here. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
