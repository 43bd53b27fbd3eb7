// Times in the viewer's own time zone: every <time datetime="ISO"> rendered (in UTC) by the
// server is rewritten in local time, on load and after each htmx swap. No other behaviour.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
  });
  function localise(root) {
    var times = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var at = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(at.getTime())) {
        times[i].title = times[i].textContent;
        times[i].textContent = format.format(at);
        times[i].setAttribute("data-local", "");
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var hash = window.location.hash;
    var target = hash && document.getElementById(hash.slice(1));
    if (target) {
      target.classList.add("target");
    } else {
      var list = document.getElementById("messages");
      if (list && list.lastElementChild) { list.lastElementChild.scrollIntoView({block: "end"}); }
    }
  });
  document.addEventListener("htmx:afterSwap", function () { localise(document); });
})();
