// shortvid console: live parts of pages. No framework, no inline script (the CSP allows 'self' only).
//
// An element with data-live is a part of the page that the server can render again on its own
// (data-fragment answers it as HTML, escaped by the same templates). It is refreshed:
//   data-live="job"     from the API's Server-Sent Events (data-stream) while they answer 200,
//                       else by polling the job (data-poll) every second, until the job ends;
//   data-live="task"    by polling the task (data-poll) every second until it ends (item progress
//                       is not a job state change, so the event stream would show it late);
//   data-live="refresh" every data-every milliseconds while the tab is visible.
(function () {
  "use strict";

  var JOB_DONE = ["completed", "failed"];
  var TASK_DONE = ["completed", "partial", "failed"];

  function refresher(el) {
    var busy = false;
    var again = false;
    return function refresh() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      fetch(el.getAttribute("data-fragment"), {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
        cache: "no-store",
      })
        .then(function (response) {
          if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          keepOpen(el, html);
          el.dispatchEvent(new CustomEvent("console:updated", { bubbles: true }));
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            refresh();
          }
        });
    };
  }

  // Replace the part, keeping open <details> (the raw JSON) open across refreshes.
  function keepOpen(el, html) {
    var open = [];
    el.querySelectorAll("details").forEach(function (d, i) {
      if (d.open) open.push(i);
    });
    el.innerHTML = html;
    var now = el.querySelectorAll("details");
    open.forEach(function (i) {
      if (now[i]) now[i].open = true;
    });
  }

  function poll(el, refresh, done, key) {
    var last = null;
    var timer = setInterval(function () {
      fetch(el.getAttribute("data-poll"), { cache: "no-store" })
        .then(function (response) {
          return response.json();
        })
        .then(function (body) {
          var data = (body && body.data) || {};
          var now = key(data);
          if (now !== last) refresh(); // the first answer too: the page may be older than it
          last = now;
          if (done(data)) clearInterval(timer);
        })
        .catch(function () {});
    }, 1000);
  }

  function followJob(el) {
    var refresh = refresher(el);
    var jobDone = function (data) {
      return JOB_DONE.indexOf(data.state) >= 0;
    };
    var jobKey = function (data) {
      return String(data.state) + ":" + String(data.attempts);
    };
    var stream = el.getAttribute("data-stream");
    if (!stream || !window.EventSource) {
      poll(el, refresh, jobDone, jobKey);
      return;
    }
    var heard = false;
    var source = new EventSource(stream);
    source.addEventListener("state", function () {
      heard = true;
      refresh();
    });
    source.addEventListener("end", function () {
      source.close();
      refresh();
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) return; // reconnecting by itself
      if (heard) {
        refresh(); // the stream ended for good (204 once the job is over)
      } else {
        poll(el, refresh, jobDone, jobKey); // no stream here (not 200): poll instead
      }
    };
  }

  function followTask(el) {
    poll(
      el,
      refresher(el),
      function (data) {
        return TASK_DONE.indexOf(data.status) >= 0;
      },
      function (data) {
        var bytes = (data.items || []).reduce(function (sum, item) {
          return sum + (item.bytes || 0);
        }, 0);
        return [data.status, data.done, data.failed, data.total, bytes].join(":");
      }
    );
  }

  function everySoOften(el) {
    var refresh = refresher(el);
    var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
    setInterval(function () {
      if (!document.hidden) refresh();
    }, every);
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        if (!field) return;
        field.select();
        var done = function () {
          button.textContent = "Copied";
        };
        if (navigator.clipboard) {
          navigator.clipboard.writeText(field.value).then(done, function () {});
        } else if (document.execCommand("copy")) {
          done();
        }
      });
    });
  }

  // A submit button says it is working, so a slow answer is not clicked twice.
  function busyForms() {
    document.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (button && button.form === event.target) {
        setTimeout(function () {
          button.classList.add("working");
        }, 0);
      }
    });
  }

  function start() {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var kind = el.getAttribute("data-live");
      if (kind === "refresh") return everySoOften(el);
      if (el.getAttribute("data-finished") === "true") return;
      if (kind === "job") followJob(el);
      else if (kind === "task") followTask(el);
    });
    copyButtons();
    busyForms();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
