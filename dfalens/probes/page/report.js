(function () {
  "use strict";
  var script = document.currentScript;
  var root = script ? script.closest(".dfalens-report") : null;
  if (!root) {
    // a host that runs scripts out of place (classic Jupyter's jQuery): the first view not yet claimed
    root = document.querySelector(".dfalens-report:not([data-claimed])");
  }
  root.dataset.claimed = "1";
  var data = JSON.parse(root.querySelector("script.dfalens-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939"];
  var LANDMARK_COLOURS = { memorisation: "#7b3294", merger: "#d95f02", generalisation: "#1b9e77" };
  var frames = data.frames;
  var svgs = [];
  var current = 0;
  var timer = null;

  function $(role) { return root.querySelector('[data-role="' + role + '"]'); }
  function text(role, value) { var el = $(role); if (el) { el.textContent = value; } }
  function fmt(v, digits) {
    if (v === null || v === undefined) { return "n/a"; }
    if (typeof v === "number") {
      if (Number.isInteger(v)) { return String(v); }
      var a = Math.abs(v);
      return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(2) : v.toFixed(digits || 4);
    }
    return String(v);
  }
  function frac(v) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(3); }
  function decode(b64, bytes) {
    var bin = atob(b64);
    var buf = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { buf[i] = bin.charCodeAt(i); }
    return bytes === 2 ? new Uint16Array(buf.buffer) : buf;
  }
  function el(tag, attrs, parent) {
    var node = document.createElementNS(SVGNS, tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { node.setAttribute(k, attrs[k]); } }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  // ---- header ------------------------------------------------------------------------------------
  text("title", data.title || "dfalens report");
  var sub = [];
  if (data.task) { sub.push("task: " + data.task); }
  if (data.source) { sub.push(data.source); }
  if (data.kind === "timeline") { sub.push(data.curves.epoch.length + " checkpoints"); }
  text("subtitle", sub.join(" \u00b7 "));
  text("frame-note", data.frame_note ? "Frames: " + data.frame_note + "." : "");
  var slider = $("slider");
  slider.max = String(frames.length - 1);
  if (frames.length < 2) {
    $("controls").style.display = "none";
  }

  // ---- curves ------------------------------------------------------------------------------------
  var curves = null;
  function buildCurves() {
    var svg = $("curves");
    if (data.kind !== "timeline" || !data.curves) { $("curves-panel").style.display = "none"; return null; }
    svg.setAttribute("class", "dl-plot");
    var c = data.curves, W = 560, L = 52, R = 12, panels = [[18, 140], [182, 300]];
    var e0 = c.epoch[0], e1 = c.epoch[c.epoch.length - 1];
    if (e1 === e0) { e1 = e0 + 1; }
    function x(e) { return L + (e - e0) / (e1 - e0) * (W - L - R); }
    function logScale(series, panel) {
      var lo = Infinity, hi = -Infinity;
      series.forEach(function (s) { s.forEach(function (v) { if (v !== null && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
      if (!isFinite(lo)) { lo = 1; hi = 10; }
      var l0 = Math.floor(Math.log10(lo)), l1 = Math.ceil(Math.log10(hi));
      if (l1 === l0) { l1 = l0 + 1; }
      return { l0: l0, l1: l1, y: function (v) { return panel[1] - (Math.log10(v) - l0) / (l1 - l0) * (panel[1] - panel[0]); } };
    }
    function axes(panel, sc, label) {
      el("rect", { x: L, y: panel[0], width: W - L - R, height: panel[1] - panel[0], fill: "none", stroke: "#bbb" }, svg);
      var step = Math.max(1, Math.ceil((sc.l1 - sc.l0) / 4));
      for (var p = sc.l0; p <= sc.l1; p += step) {
        var yy = sc.y(Math.pow(10, p));
        el("line", { x1: L - 3, x2: L, y1: yy, y2: yy, stroke: "#888" }, svg);
        el("text", { x: L - 5, y: yy + 4, "text-anchor": "end" }, svg).textContent = "1e" + p;
      }
      var t = el("text", { x: 12, y: (panel[0] + panel[1]) / 2, transform: "rotate(-90 12 " + (panel[0] + panel[1]) / 2 + ")", "text-anchor": "middle" }, svg);
      t.textContent = label;
    }
    function line(series, sc, colour, name, dash) {
      var d = "", pen = false;
      for (var i = 0; i < series.length; i++) {
        var v = series[i];
        if (v === null || !(v > 0)) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(c.epoch[i]).toFixed(1) + "," + sc.y(v).toFixed(1);
        pen = true;
      }
      var path = el("path", { d: d, fill: "none", stroke: colour, "stroke-width": 1.6, "data-series": name }, svg);
      if (dash) { path.setAttribute("stroke-dasharray", dash); }
    }
    function bands(flags, panel, colour, name) {
      var start = null;
      for (var i = 0; i <= flags.length; i++) {
        var on = i < flags.length && flags[i];
        if (on && start === null) { start = i; }
        if (!on && start !== null) {
          var xa = x(c.epoch[start]), xb = x(c.epoch[i - 1]);
          if (xb - xa < 2) { xb = xa + 2; }
          el("rect", { x: xa, y: panel[0], width: xb - xa, height: panel[1] - panel[0], fill: colour, "data-band": name }, svg);
          start = null;
        }
      }
    }
    bands(c.closed, panels[1], "rgba(31,119,180,0.12)", "closed");
    bands(c.equivalent, panels[1], "rgba(44,160,44,0.22)", "equivalent");
    var lossScale = logScale([c.train_loss, c.val_loss], panels[0]);
    var stateScale = logScale([c.states_raw, c.states_minimal], panels[1]);
    axes(panels[0], lossScale, "loss");
    axes(panels[1], stateScale, "states");
    line(c.train_loss, lossScale, "#1f77b4", "train_loss");
    line(c.val_loss, lossScale, "#ff7f0e", "val_loss", "4 2");
    line(c.states_raw, stateScale, "#444", "states_raw");
    line(c.states_minimal, stateScale, "#d62728", "states_minimal", "4 2");
    var ticks = 5;
    for (var k = 0; k <= ticks; k++) {
      var e = Math.round(e0 + (e1 - e0) * k / ticks);
      el("text", { x: x(e), y: panels[1][1] + 14, "text-anchor": "middle" }, svg).textContent = String(e);
    }
    el("text", { x: (L + W - R) / 2, y: panels[1][1] + 28, "text-anchor": "middle" }, svg).textContent = "epoch";
    var legend = [["training loss", "#1f77b4", ""], ["test loss", "#ff7f0e", "4 2"], ["raw states", "#444", ""], ["minimal states", "#d62728", "4 2"]];
    legend.forEach(function (item, i) {
      var lx = L + 6 + i * 118;
      var seg = el("line", { x1: lx, x2: lx + 18, y1: 10, y2: 10, stroke: item[1], "stroke-width": 2 }, svg);
      if (item[2]) { seg.setAttribute("stroke-dasharray", item[2]); }
      el("text", { x: lx + 22, y: 14 }, svg).textContent = item[0];
    });
    el("rect", { x: W - R - 150, y: panels[1][0] + 4, width: 10, height: 10, fill: "rgba(44,160,44,0.35)" }, svg);
    el("text", { x: W - R - 136, y: panels[1][0] + 13 }, svg).textContent = "closed + equivalent";
    el("rect", { x: W - R - 150, y: panels[1][0] + 18, width: 10, height: 10, fill: "rgba(31,119,180,0.2)" }, svg);
    el("text", { x: W - R - 136, y: panels[1][0] + 27 }, svg).textContent = "closed";
    var names = { memorisation: "memorised", merger: "merger", generalisation: "generalised" };
    var marks = data.landmarks || {};
    var row = 0;
    Object.keys(names).forEach(function (key) {
      var epoch = marks[key];
      if (epoch === null || epoch === undefined) { return; }
      var xx = x(epoch);
      var g = el("g", { "data-landmark": key, "data-epoch": String(epoch), "data-x": xx.toFixed(2) }, svg);
      el("line", { x1: xx, x2: xx, y1: panels[0][0], y2: panels[1][1], stroke: LANDMARK_COLOURS[key], "stroke-width": 1.4, "stroke-dasharray": "5 3" }, g);
      el("text", { x: xx + 3, y: panels[0][0] + 12 + 12 * row, fill: LANDMARK_COLOURS[key] }, g).textContent = names[key] + " " + epoch;
      row += 1;
    });
    var cursor = el("line", { x1: L, x2: L, y1: panels[0][0], y2: panels[1][1], stroke: "#000", "stroke-width": 1.5, "data-role": "cursor" }, svg);
    svg.addEventListener("click", function (ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * (W / box.width);
      var epoch = e0 + (px - L) / (W - L - R) * (e1 - e0);
      show(nearestFrame(epoch));
    });
    return { x: x, cursor: cursor };
  }
  function nearestFrame(epoch) {
    var best = 0, dist = Infinity;
    for (var i = 0; i < frames.length; i++) {
      var d = Math.abs(frames[i].epoch - epoch);
      if (d < dist) { dist = d; best = i; }
    }
    return best;
  }

  // ---- projection --------------------------------------------------------------------------------
  var proj = data.projection;
  var projData = null;
  if (proj) {
    projData = { xy: decode(proj.xy, 1), state: decode(proj.state, 2), output: decode(proj.output, 1) };
    text("projection-explained", "(PC1 " + (100 * proj.explained[0]).toFixed(0) + "%, PC2 " + (100 * proj.explained[1]).toFixed(0) + "% of the variance" + (frames.length > 1 ? ", one fit over all frames)" : ")"));
    text("projection-note", proj.n + " words" + (data.kind === "timeline" ? ", the same axes at every frame" : "") + "; hover a point for its word.");
  } else {
    $("projection-panel").style.display = "none";
  }
  var canvas = $("projection");
  var PAD = 12;
  function pointXY(f, i) {
    var o = (f * proj.n + i) * 2;
    return [PAD + projData.xy[o] / 255 * (canvas.width - 2 * PAD), canvas.height - PAD - projData.xy[o + 1] / 255 * (canvas.height - 2 * PAD)];
  }
  function drawProjection() {
    if (!proj) { return; }
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    var by = $("colour").value;
    var f = current;
    for (var i = 0; i < proj.n; i++) {
      var p = pointXY(f, i);
      var k = by === "state" ? projData.state[f * proj.n + i] : projData.output[f * proj.n + i];
      ctx.fillStyle = PALETTE[k % PALETTE.length];
      ctx.globalAlpha = 0.75;
      ctx.beginPath();
      ctx.arc(p[0], p[1], 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
  if (proj) {
    $("colour").addEventListener("change", drawProjection);
    canvas.addEventListener("mousemove", function (ev) {
      var box = canvas.getBoundingClientRect();
      var mx = (ev.clientX - box.left) * canvas.width / box.width;
      var my = (ev.clientY - box.top) * canvas.height / box.height;
      var best = -1, dist = 36;
      for (var i = 0; i < proj.n; i++) {
        var p = pointXY(current, i);
        var d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
        if (d < dist) { dist = d; best = i; }
      }
      var tip = $("tooltip");
      if (best < 0) { tip.style.display = "none"; return; }
      var o = current * proj.n + best;
      tip.textContent = proj.words[best] + "  \u2192 state q" + projData.state[o] + ", output " + projData.output[o];
      tip.style.left = (ev.clientX - box.left + 10) + "px";
      tip.style.top = (ev.clientY - box.top + 10) + "px";
      tip.style.display = "block";
    });
    canvas.addEventListener("mouseleave", function () { $("tooltip").style.display = "none"; });
  }

  // ---- machines, verdict, settings -----------------------------------------------------------------
  function drawMachine(role, index, states, merging) {
    var box = $(role);
    if (index === null || index === undefined) {
      box.innerHTML = "";
      var note = document.createElement("p");
      note.className = "dl-empty";
      note.textContent = states > (data.draw_limit || 0)
        ? states + " states: too many to draw (the page draws machines of at most " + data.draw_limit + " states)"
        : data.over_budget
          ? "not drawn: the page's size budget for drawings was spent on earlier checkpoints"
          : "no drawing (Graphviz was not available when the report was written)";
      box.appendChild(note);
      box.dataset.svg = "none";
      return;
    }
    if (box.dataset.svg !== String(index)) {
      box.innerHTML = svgs[index];
      box.dataset.svg = String(index);
    }
    var set = {};
    (merging || []).forEach(function (q) { set[q] = true; });
    var nodes = box.querySelectorAll("g.node");
    for (var i = 0; i < nodes.length; i++) {
      var title = nodes[i].querySelector("title");
      nodes[i].classList.toggle("dl-merging", !!(title && set[title.textContent]));
    }
  }
  function verdict(f) {
    var dl = $("verdict");
    dl.innerHTML = "";
    function item(term, value, cls) {
      var dt = document.createElement("dt"); dt.textContent = term; dl.appendChild(dt);
      var dd = document.createElement("dd"); dd.textContent = value; if (cls) { dd.className = cls; } dl.appendChild(dd);
      return dd;
    }
    if (f.epoch !== null) { item("epoch", f.epoch); }
    item("states", f.states_raw + " raw, " + f.states_minimal + " minimal");
    item("closed", f.closed ? "yes: every reachable state has every transition" : "no: some transitions are undefined (not yet a finite automaton)", f.closed ? "dl-ok" : "dl-bad");
    if (f.consistent !== undefined) {
      item("consistent", f.consistent ? "yes: the machine gives the network's class on every word checked" : "NO: the machine does not reproduce the network; it is a best guess", f.consistent ? "dl-ok" : "dl-bad");
    }
    var eq;
    if (f.verdict_text) { eq = item("task", f.verdict_text, f.equivalent ? "dl-ok" : "dl-bad"); }
    else if (f.equivalent === true) { eq = item("task", "equivalent to " + (data.task || "the task"), "dl-ok"); }
    else if (f.counterexample !== null && f.counterexample !== undefined) {
      eq = item("task", "not equivalent: differs on " + (f.counterexample === "" ? "the empty word" : "'" + f.counterexample + "'"), "dl-bad");
    } else if (f.equivalent === false) { eq = item("task", "not equivalent", "dl-bad"); }
    else { eq = item("task", "not checked (no task given)"); }
    eq.dataset.role = "equivalence";
    if (f.fidelity !== null && typeof f.fidelity === "object") {
      item("fidelity", Object.keys(f.fidelity).map(function (k) { return "length " + k + ": " + frac(f.fidelity[k]); }).join(", "));
    } else {
      item("fidelity", f.fidelity === null || f.fidelity === undefined ? "n/a (not closed)" : frac(f.fidelity) + " on long random words");
    }
    if (f.agreement !== undefined) { item("agreement", frac(f.agreement) + " on the collected words"); }
    if (f.train_loss !== undefined) { item("training loss", fmt(f.train_loss)); }
    if (f.val_loss !== undefined) { item("test loss", fmt(f.val_loss)); }
    if (f.merges !== undefined && f.merges !== null) { item("since previous", f.merges + " merges, " + f.splits + " splits"); }
    if (f.merging && f.merging.length) { item("merging next", f.merging.length + " states (highlighted)"); }
  }
  function table(role, rows, header) {
    var t = $(role);
    t.innerHTML = "";
    if (header) {
      var tr = document.createElement("tr");
      header.forEach(function (h) { var th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
      t.appendChild(tr);
    }
    rows.forEach(function (r) {
      var tr2 = document.createElement("tr");
      r.forEach(function (v) { var td = document.createElement("td"); td.textContent = fmt(v); tr2.appendChild(td); });
      t.appendChild(tr2);
    });
  }
  var settings = data.settings || {};
  table("settings", Object.keys(settings).map(function (k) { return [k, typeof settings[k] === "object" && settings[k] !== null ? JSON.stringify(settings[k]) : settings[k]]; }));
  if (data.candidates && data.candidates.length) {
    var keys = [];
    data.candidates.forEach(function (c) { Object.keys(c).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } }); });
    table("candidates", data.candidates.map(function (c) { return keys.map(function (k) { return c[k] === undefined ? null : c[k]; }); }), keys);
  } else {
    $("candidates-title").style.display = "none";
  }
  if (data.kind !== "timeline") { $("merge-legend").style.display = "none"; }

  // ---- the current frame -----------------------------------------------------------------------------
  function show(i) {
    current = Math.max(0, Math.min(frames.length - 1, i));
    var f = frames[current];
    slider.value = String(current);
    text("epoch", f.epoch === null ? "n/a" : String(f.epoch));
    text("frame-pos", frames.length > 1 ? "frame " + (current + 1) + " of " + frames.length : "");
    text("states-min", "(" + f.states_minimal + " states)");
    text("states-raw", "(" + f.states_raw + " states)");
    drawMachine("automaton-min", f.minimal, f.states_minimal, []);
    drawMachine("automaton-raw", f.raw, f.states_raw, f.merging);
    verdict(f);
    if (curves) {
      var xx = curves.x(f.epoch);
      curves.cursor.setAttribute("x1", xx);
      curves.cursor.setAttribute("x2", xx);
    }
    drawProjection();
    root.dataset.frame = String(current);
  }
  function play() {
    if (timer !== null) {
      clearInterval(timer); timer = null;
      $("play").innerHTML = "&#9654; play";
      return;
    }
    if (current >= frames.length - 1) { show(0); }
    $("play").innerHTML = "&#10073;&#10073; pause";
    timer = setInterval(function () {
      show(current + 1);
      if (current >= frames.length - 1) { play(); }
    }, 200);
  }
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  $("play").addEventListener("click", play);
  function onKey(ev) {
    if (ev.target && ev.target.tagName === "SELECT") { return; }
    if (ev.key === "ArrowRight") { show(current + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { show(current - 1); ev.preventDefault(); }
    else if (ev.key === " " && frames.length > 1) { play(); ev.preventDefault(); }
  }
  root.tabIndex = 0;
  if (root.parentElement === document.body) {
    document.addEventListener("keydown", onKey);
  } else {
    root.addEventListener("keydown", onKey);
  }
  curves = buildCurves();
  function unpack() {
    if (!data.n_svgs) { return Promise.resolve([]); }
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot unpack the drawings (no DecompressionStream)"));
    }
    var stream = new Blob([decode(data.svgs_gz, 1)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }
  unpack().then(function (list) {
    svgs = list;
  }, function (err) {
    data.frames.forEach(function (f) { f.raw = null; f.minimal = null; });
    text("frame-note", String(err.message || err));
  }).then(function () {
    show(0);
    root.dataset.ready = "1";
  });
  root.dfalens = {
    show: show,
    frames: frames,
    current: function () { return current; },
    point: function (i) { return proj ? pointXY(current, i) : null; }
  };
}());
