// The console works without this file: it only adds confirm() dialogs to actions (their
// no-JS fallback is a confirmation page) and live progress to a bulk rerun's page.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.confirm").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "?")) {
        event.preventDefault();
        return;
      }
      if (!form.querySelector("input[name=confirmed]")) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "confirmed";
        input.value = "1";
        form.appendChild(input);
      }
    });
  });
  var job = document.getElementById("job");
  if (job && job.dataset.finished !== "1") {
    var poll = function () {
      fetch("/console/jobs/" + encodeURIComponent(job.dataset.job) + ".json",
            {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (state) {
          document.getElementById("job-progress").value = state.percent;
          document.getElementById("job-count").textContent = job.dataset.progress
            .replace("{done}", state.done).replace("{total}", state.total);
          var names = JSON.parse(job.dataset.names || "{}");
          var out = document.getElementById("job-outcomes");
          out.textContent = "";
          Object.keys(state.outcomes).forEach(function (k) {
            var span = document.createElement("span");
            span.className = "badge st-" + k;
            span.textContent = (names[k] || k) + " " + state.outcomes[k];
            out.appendChild(span);
            out.appendChild(document.createTextNode(" "));
          });
          if (state.finished) {
            document.getElementById("job-state").textContent = job.dataset.done;
            job.dataset.finished = "1";
            window.location.reload();
          } else {
            setTimeout(poll, 700);
          }
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 300);
  }
});
