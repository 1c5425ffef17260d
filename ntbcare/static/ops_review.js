/* The review queue's keyboard: j/k move between tickets, 1-3 assign to a suggested agency, n not a complaint,
   m merge into the first suggested duplicate (without one: the cursor goes to the merge field, to type the
   other ticket's number), o open the ticket, x select it for a bulk action. Keys typed into a field are left
   alone; Escape in a field goes back to its ticket. */
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll(".review-item"));
  if (!items.length) { return; }
  var current = 0;

  function select(index) {
    if (index < 0 || index >= items.length) { return; }
    items[current].classList.remove("current");
    current = index;
    items[current].classList.add("current");
    items[current].focus();
    items[current].scrollIntoView({block: "nearest"});
  }

  function press(selector) {
    var button = items[current].querySelector(selector);
    if (button) { button.click(); }
  }

  function merge() {
    var button = items[current].querySelector('button[data-key="m"]');
    if (button) { button.click(); return; }
    var field = items[current].querySelector('input[name="into"]');
    if (field) { field.focus(); }
  }

  items[0].classList.add("current");
  items.forEach(function (item, index) {
    item.addEventListener("focusin", function () {
      items[current].classList.remove("current");
      current = index;
      item.classList.add("current");
    });
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
      var item = target.closest(".review-item");
      if (event.key === "Escape" && item) { item.focus(); event.preventDefault(); }
      return;
    }
    var key = event.key;
    if (key === "j") { select(current + 1); }
    else if (key === "k") { select(current - 1); }
    else if (key === "1" || key === "2" || key === "3") { press('button[data-key="' + key + '"]'); }
    else if (key === "n") { press('button[data-key="n"]'); }
    else if (key === "m") { merge(); }
    else if (key === "o") { press("a[data-open]"); }
    else if (key === "x") { press("input[data-select]"); }
    else { return; }
    event.preventDefault();
  });
})();
