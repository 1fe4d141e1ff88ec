// orgsync console: small enhancements only. Every page works without this
// file: forms post normally, running jobs refresh the page by themselves.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="ID"> copies the value of #ID.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("[data-copy]") : null;
    if (!btn) return;
    var input = document.getElementById(btn.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    var done = function () {
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        document.execCommand("copy");
        done();
      });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // Mapping tables (console/sync_view.rs): "More rows" adds a blank row in
  // place instead of posting the form (without this file it posts and the
  // page comes back with more rows).
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("[data-more-rows]") : null;
    if (!btn) return;
    var box = document.getElementById(btn.getAttribute("data-more-rows"));
    var rows = box ? box.querySelectorAll("tr.mapping-row") : [];
    if (!rows.length) return;
    ev.preventDefault();
    var last = rows[rows.length - 1];
    var n = rows.length;
    var row = last.cloneNode(true);
    row.classList.remove("invalid");
    row.querySelectorAll(".err").forEach(function (e) { e.remove(); });
    row.querySelectorAll("input, label").forEach(function (el) {
      ["id", "for", "name"].forEach(function (a) {
        var v = el.getAttribute(a);
        if (v) el.setAttribute(a, v.replace(/([.-])\d+([.-])/, "$1" + n + "$2"));
      });
      if (el.tagName === "LABEL" && el.classList.contains("sr-only")) {
        el.textContent = el.textContent.replace(/row \d+$/, "row " + (n + 1));
      }
      if (el.tagName === "INPUT") {
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
        if (el.type === "checkbox") el.checked = false; else el.value = "";
      }
    });
    last.parentNode.appendChild(row);
    var first = row.querySelector("input[type=text]");
    if (first) first.focus();
  });

  // Move focus to a form's error summary, so it is read first.
  var err = document.getElementById("form-error");
  if (err) err.focus();

  // Live job logs: <pre id="job-log" data-job data-after data-live> polls the
  // JSON API (same origin, session cookie) and reloads the page at the end.
  var log = document.getElementById("job-log");
  if (!log || !log.getAttribute("data-live")) return;
  var job = log.getAttribute("data-job");
  var after = parseInt(log.getAttribute("data-after") || "0", 10);
  var statusEl = document.getElementById("job-status");
  var api = "/api/v2/provisionerjobs/" + encodeURIComponent(job);
  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }
  function tick() {
    get(api + "/logs?after=" + after).then(function (lines) {
      var empty = document.getElementById("log-empty");
      lines.forEach(function (l) {
        if (empty) { empty.remove(); empty = null; }
        var stage = document.createElement("span");
        stage.className = "stage";
        stage.textContent = l.stage;
        log.appendChild(stage);
        log.appendChild(document.createTextNode(" " + l.output + "\n"));
        after = Math.max(after, l.id);
      });
      if (lines.length) log.scrollTop = log.scrollHeight;
      return get(api);
    }).then(function (j) {
      if (statusEl && j.status) statusEl.setAttribute("data-live-status", j.status);
      if (["pending", "running", "canceling"].indexOf(j.status) < 0) {
        window.location.reload();
      } else {
        setTimeout(tick, 1000);
      }
    }).catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 500);
})();

// Live LDAP sync runs: <span id="run-status" data-run data-live> polls the
// JSON API (same origin, session cookie), shows the progress and reloads the
// page when the run has ended. Without this script the page refreshes itself.
(function () {
  "use strict";
  var status = document.getElementById("run-status");
  if (!status || !status.getAttribute("data-live")) return;
  var api = "/api/v2/ldapsync/runs/" + encodeURIComponent(status.getAttribute("data-run"));
  var progress = document.getElementById("run-progress");
  var polls = 0;
  function show(p) {
    if (!progress || !p) return;
    while (progress.firstChild) progress.removeChild(progress.firstChild);
    Object.keys(p).forEach(function (k) {
      var row = document.createElement("div");
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = k.replace(/_/g, " ");
      dd.textContent = String(p[k]);
      row.appendChild(dt);
      row.appendChild(dd);
      progress.appendChild(row);
    });
  }
  function tick() {
    polls += 1;
    fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (run) {
        status.textContent = run.status;
        show(run.progress);
        if (run.status !== "running") {
          window.location.reload();
        } else {
          setTimeout(tick, polls < 30 ? 1000 : 3000);
        }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 500);
})();
