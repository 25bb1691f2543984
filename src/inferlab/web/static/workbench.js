// The workbench's behaviour: charts from their JSON, requests that change something (with the header the
// server requires of them), uploads, cancel, and a running run's progress from server-sent events.
(function () {
  "use strict";
  var message = document.getElementById("message");

  function say(text, ok) {
    if (!message) { return; }
    message.textContent = text;
    message.className = "wb-message" + (ok ? " ok" : "");
    message.hidden = false;
  }

  function send(url, body) {
    var init = {method: "POST", headers: {"X-Inferlab": "1"}, credentials: "same-origin"};
    if (body instanceof FormData) { init.body = body; }
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(url, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { throw new Error(data.detail || ("the server answered " + r.status)); }
        return data;
      });
    });
  }

  document.querySelectorAll("div.chart").forEach(function (div) {
    if (typeof Plotly === "undefined") { return; }
    var fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
    Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
  });

  var cancel = document.getElementById("cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      cancel.disabled = true;
      send(cancel.dataset.cancel).then(function () { say("Cancelling: the trial running is being stopped.", true); })
        .catch(function (e) { cancel.disabled = false; say(e.message); });
    });
  }

  var archive = document.getElementById("dataset-upload");
  if (archive) {
    archive.addEventListener("submit", function (ev) {
      ev.preventDefault();
      say("Importing: the archive is unpacked and every image checked…", true);
      send(archive.dataset.post, new FormData(archive)).then(function (d) { window.location.href = "/datasets/" + d.hash; })
        .catch(function (e) { say(e.message); });
    });
  }

  var upload = document.getElementById("model-upload");
  if (upload) {
    upload.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(upload);
      var weights = upload.querySelector("input[name=weights]");
      if (weights && weights.files.length === 0) { data.delete("weights"); }
      send(upload.dataset.post, data).then(function (m) { window.location.href = "/models/" + m.hash; })
        .catch(function (e) { say(e.message); });
    });
  }

  var quantize = document.getElementById("quantize");
  if (quantize) {
    var numbers = function (text) {
      return text.split(",").map(function (v) { return v.trim(); }).filter(Boolean).map(Number);
    };
    quantize.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = quantize.elements, pre = {layout: f.layout.value};
      if (f.color.value) { pre.color = f.color.value; }
      if (f.resize.value.trim()) { pre.resize = numbers(f.resize.value); }
      if (f.scale.value) { pre.scale = Number(f.scale.value); }
      if (f.mean.value.trim()) { pre.mean = numbers(f.mean.value); }
      if (f.std.value.trim()) { pre.std = numbers(f.std.value); }
      var body = {precision: f.precision.value, backend: f.backend.value, dataset: f.dataset.value,
                  calibration: Number(f.calibration.value), time_s: Number(f.time_s.value), preprocess: pre};
      if (f.max_drop.value) { body.max_drop = Number(f.max_drop.value); }
      quantize.querySelector("button").disabled = true;
      say("Deriving the " + body.precision.toUpperCase() + " model (calibrating" +
          (body.max_drop !== undefined ? ", then searching within the accuracy drop" : "") +
          "); its measurement beside this model follows on the run's page…", true);
      // (getAttribute: the form's field named "dataset" hides form.dataset)
      send(quantize.getAttribute("data-post"), body).then(function (r) { window.location.href = r.url; })
        .catch(function (e) { quantize.querySelector("button").disabled = false; say(e.message); });
    });
  }

  var experiment = document.getElementById("new-experiment");
  if (experiment) {
    var text = document.getElementById("config");
    var download = document.getElementById("download");
    var refresh = function () {
      download.href = URL.createObjectURL(new Blob([text.value], {type: "application/yaml"}));
    };
    text.addEventListener("input", refresh);
    refresh();
    experiment.addEventListener("submit", function (ev) {
      ev.preventDefault();
      send(experiment.dataset.post, {config: text.value}).then(function (r) { window.location.href = r.url; })
        .catch(function (e) { say(e.message); });
    });
  }

  var progress = document.getElementById("progress");
  if (progress && window.EventSource) {
    var bar = document.getElementById("progress-bar");
    var now = document.getElementById("progress-now");
    var log = document.getElementById("progress-log");
    var count = document.getElementById("run-count");
    var status = document.getElementById("run-status");
    var stream = new EventSource(progress.dataset.events);
    var line = function (text, cls) {
      var li = document.createElement("li");
      li.textContent = text;
      if (cls) { li.className = cls; }
      log.appendChild(li);
    };
    stream.addEventListener("trial-started", function (e) {
      var d = JSON.parse(e.data);
      now.textContent = "trial " + (d.index + 1) + " of " + d.total + ": " + d.label;
    });
    stream.addEventListener("phase", function (e) { now.dataset.phase = JSON.parse(e.data).name; });
    stream.addEventListener("progress", function (e) {
      var d = JSON.parse(e.data);
      now.dataset.progress = d.elapsed_s + " of " + d.planned_s + " s, " + d.requests + " requests";
    });
    stream.addEventListener("trial-finished", function (e) {
      var d = JSON.parse(e.data);
      bar.value = Number(bar.value) + 1;
      count.textContent = String(bar.value);
      var fig = d.throughput_sps ? d.throughput_sps.toFixed(1) + " FPS" : (d.reason || "");
      line(d.label + ": " + d.status + (fig ? ", " + fig : ""), "trial-done status-" + d.status);
    });
    stream.addEventListener("count", function (e) {
      var d = JSON.parse(e.data);
      bar.value = d.done;
      count.textContent = String(d.done);
    });
    stream.addEventListener("run-ended", function (e) {
      var d = JSON.parse(e.data);
      stream.close();
      status.textContent = (d.outcome || "").split(":")[0];
      line("run " + (d.outcome || "ended"), "run-ended");
      if (cancel) { cancel.hidden = true; }
      window.setTimeout(function () { window.location.reload(); }, 1500);
    });
  }
}());
