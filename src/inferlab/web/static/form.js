// The new-experiment form, generated from the experiment config's JSON Schema (/api/schema/experiment) with
// the knob domains of the backends (/api/backends), the imported models and datasets: each field writes the
// YAML that `inferlab run` reads, shown live beside it (and still editable). Fields left empty are left out,
// so the schema's defaults apply. A field the form cannot edit is named, to be written in the YAML.
(function () {
  "use strict";
  var root = document.getElementById("schema-form");
  if (!root) { return; }
  var text = document.getElementById("config");

  function get(url) { return fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  // YAML: block mapping at the top, flow style below; strings quoted (as JSON) unless plainly safe.
  function scalar(v) {
    if (typeof v === "number" || typeof v === "boolean") { return String(v); }
    var s = String(v);
    if (/^[A-Za-z_][A-Za-z0-9_./-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s)) { return s; }
    return JSON.stringify(s);
  }
  function flow(v) {
    if (Array.isArray(v)) { return "[" + v.map(flow).join(", ") + "]"; }
    if (v !== null && typeof v === "object") {
      return "{" + Object.keys(v).map(function (k) { return k + ": " + flow(v[k]); }).join(", ") + "}";
    }
    return scalar(v);
  }
  function yaml(doc) {
    return Object.keys(doc).map(function (k) {
      var v = doc[k];
      if (Array.isArray(v) && v.length && typeof v[0] === "object") {
        return k + ":\n" + v.map(function (x) { return "  - " + flow(x); }).join("\n");
      }
      return k + ": " + flow(v);
    }).join("\n") + "\n";
  }

  function resolve(schema, s) {
    if (s && s.$ref) { return schema.$defs[s.$ref.split("/").pop()]; }
    return s || {};
  }
  function variants(s) { return s.anyOf ? s.anyOf.filter(function (x) { return x.type !== "null"; }) : [s]; }
  function enumOf(s) {
    var found = null;
    variants(s).forEach(function (v) {
      if (v.enum) { found = v.enum; }
      if (v.type === "array" && v.items && v.items.enum) { found = v.items.enum; }
    });
    return found;
  }
  function numberKind(s) {
    var kind = null;
    variants(s).forEach(function (v) {
      if (v.type === "integer" || v.type === "number") { kind = v.type; }
      if (v.type === "array" && v.items && (v.items.type === "integer" || v.items.type === "number")) { kind = "list"; }
    });
    return kind;
  }
  function splitList(value, integer) {
    return value.split(/[\s,]+/).filter(Boolean).map(function (x) {
      var n = Number(x);
      return isNaN(n) ? x : (integer ? Math.round(n) : n);
    });
  }

  var readers = [];   // each returns [key, value] or null
  function field(name, s, schema, into) {
    var label = (s.title || name) + (s.description ? " — " + s.description : "");
    var choices = enumOf(s);
    var kind = numberKind(s);
    var box = el("div", {"class": "wb-field", "data-field": name});
    if (choices) {
      box.appendChild(el("span", {"class": "wb-label", text: label}));
      var boxes = choices.map(function (c) {
        var cb = el("input", {type: "checkbox", value: c, name: name});
        box.appendChild(el("label", {"class": "wb-inline"}, [cb, document.createTextNode(" " + c)]));
        return cb;
      });
      into.push(function () {
        var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
        return on.length ? [name, on.length === 1 ? on[0] : on] : null;
      });
    } else if (kind || s.type === "string" || s.type === "boolean") {
      var input = el("input", {name: name, type: s.type === "boolean" ? "checkbox" : "text",
                               placeholder: s.default === undefined || s.default === null ? "" : String(s.default)});
      box.appendChild(el("label", {}, [el("span", {"class": "wb-label", text: label}), input]));
      into.push(function () {
        if (s.type === "boolean") { return input.checked ? [name, true] : null; }
        var v = input.value.trim();
        if (!v) { return null; }
        if (kind === "list") { var l = splitList(v, true); return [name, l.length === 1 ? l[0] : l]; }
        if (kind) { var n = Number(v); return [name, isNaN(n) ? v : n]; }
        return [name, v];
      });
    } else {
      var obj = resolve(schema, variants(s)[0]);
      if (obj.type === "object" && obj.properties && !s.type) {
        var inner = [];
        var set = el("fieldset", {"class": "wb-group", "data-field": name}, [el("legend", {text: label})]);
        Object.keys(obj.properties).forEach(function (k) { set.appendChild(field(k, obj.properties[k], schema, inner)); });
        into.push(function () {
          var o = {};
          inner.forEach(function (r) { var kv = r(); if (kv) { o[kv[0]] = kv[1]; } });
          return Object.keys(o).length ? [name, o] : null;
        });
        return set;
      }
      box.appendChild(el("span", {"class": "wb-label note", text: label + " (write it in the YAML)"}));
    }
    return box;
  }
  Promise.all([get("/api/schema/experiment"), get("/api/backends"), get("/api/models"), get("/api/datasets")])
    .then(function (got) {
      var schema = got[0], backends = got[1].filter(function (b) { return b.usable; }), models = got[2];
      var datasets = got[3];
      var custom = {
        models: function () {
          var box = el("div", {"class": "wb-field", "data-field": "models"},
                       [el("span", {"class": "wb-label", text: "Models (imported on the Models page)"})]);
          var boxes = models.map(function (m) {
            var cb = el("input", {type: "checkbox", value: m.hash, name: "models"});
            if (root.dataset.model === m.hash) { cb.checked = true; }
            box.appendChild(el("label", {"class": "wb-inline"}, [cb, document.createTextNode(" " + m.name + " (" + m.format + ")")]));
            return cb;
          });
          readers.push(function () {
            var on = models.filter(function (m, i) { return boxes[i].checked; });
            return on.length ? ["models", on.map(function (m) { return {name: m.name, path: m.path}; })] : null;
          });
          return box;
        },
        backends: function () {
          var box = el("div", {"class": "wb-field", "data-field": "backends"},
                       [el("span", {"class": "wb-label", text: "Backends, and the values of each knob to sweep (comma separated)"})]);
          var parts = backends.map(function (b) {
            var cb = el("input", {type: "checkbox", value: b.name, name: "backends"});
            if (b.name === "onnxruntime") { cb.checked = true; }  // a start: the runtime every install has
            var knobs = b.knobs.map(function (k) {
              var domain = k.choices.length ? k.choices.join("|") : (k.kind === "int" ? k.low + ".." + (k.high === null ? "∞" : k.high) : k.kind);
              var input = el("input", {type: "text", name: b.name + "." + k.name, placeholder: domain, title: k.doc});
              return [k, input, el("label", {"class": "wb-knob"}, [document.createTextNode(k.name + " "), input])];
            });
            box.appendChild(el("details", {}, [el("summary", {}, [cb, document.createTextNode(" " + b.name + " " + (b.version || ""))])]
              .concat(knobs.map(function (k) { return k[2]; }))));
            return [b, cb, knobs];
          });
          readers.push(function () {
            var on = parts.filter(function (p) { return p[1].checked; }).map(function (p) {
              var entry = {name: p[0].name}, params = {};
              p[2].forEach(function (k) {
                var v = k[1].value.trim();
                if (!v) { return; }
                var l = splitList(v, k[0].kind === "int");
                l = l.map(function (x) { return x === "true" ? true : x === "false" ? false : x; });
                params[k[0].name] = l.length === 1 ? l[0] : l;
              });
              if (Object.keys(params).length) { entry.params = params; }
              return entry;
            });
            return on.length ? ["backends", on] : null;
          });
          return box;
        },
        devices: function () {
          var all = [];
          backends.forEach(function (b) { b.devices.forEach(function (d) { if (all.indexOf(d) < 0) { all.push(d); } }); });
          return field("devices", {title: "Devices", "enum": all, anyOf: [{type: "array", items: {"enum": all}}]}, schema, readers);
        },
        dataset: function () {
          var select = el("select", {name: "dataset"}, [el("option", {value: "", text: "none"}),
            el("option", {value: "digits", text: "scikit-learn's digits (test split)"})]
            .concat(datasets.map(function (d) { return el("option", {value: d.hash, text: d.name + " (" + d.format + ", " + d.samples + " samples)"}); })));
          readers.push(function () {
            if (!select.value) { return null; }
            if (select.value === "digits") { return ["dataset", {format: "digits", split: "test"}]; }
            var d = datasets.filter(function (x) { return x.hash === select.value; })[0];
            var o = {format: d.format, path: d.path};
            if (d.labels) { o.labels = d.labels; }
            return ["dataset", o];
          });
          return el("div", {"class": "wb-field", "data-field": "dataset"},
                    [el("label", {}, [el("span", {"class": "wb-label", text: "Dataset (accuracy checks)"}), select])]);
        }
      };
      Object.keys(schema.properties).forEach(function (name) {
        var node = custom[name] ? custom[name]() : field(name, schema.properties[name], schema, readers);
        root.appendChild(node);
      });
      var refresh = function () {
        var doc = {};
        readers.forEach(function (r) { var kv = r(); if (kv) { doc[kv[0]] = kv[1]; } });
        text.value = yaml(doc);
        text.dispatchEvent(new Event("input"));
      };
      root.addEventListener("input", refresh);
      root.addEventListener("change", refresh);
      root.dataset.ready = "true";
      refresh();
    })
    .catch(function (e) { root.textContent = "The form could not be built: " + e.message + "; write the YAML below."; });
}());
