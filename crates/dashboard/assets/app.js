// Shows every <time datetime="…"> in the viewer's own zone; the UTC form stays in its title.
"use strict";
(function () {
  var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) { el.textContent = fmt.format(d); }
  });
  // A schedule form's preview follows the expression and zone as they are typed; without
  // the script the "Preview next fires" button does the same with a page load.
  document.querySelectorAll("form[data-preview]").forEach(function (form) {
    var target = document.getElementById("preview");
    var timer = null;
    function refresh() {
      var q = new URLSearchParams();
      q.set("schedule_expression", form.elements.schedule_expression.value);
      q.set("timezone", form.elements.timezone.value);
      fetch(form.getAttribute("data-preview") + "?" + q.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || !target) { return; }
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("preview");
          if (next) { target.replaceChildren.apply(target, Array.from(next.childNodes)); }
        });
    }
    ["schedule_expression", "timezone"].forEach(function (name) {
      var field = form.elements[name];
      if (field) {
        field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
      }
    });
  });
  // A page with work in progress (an agent run) looks again every few seconds.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    setTimeout(function () { location.reload(); }, parseInt(poll.getAttribute("data-poll"), 10) || 2000);
  }
})();
