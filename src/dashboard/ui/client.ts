/**
 * The dashboard's browser script (plain ES2020, no build step), served as /app.js. It reads
 * the view model from /events (SSE, `state` messages) and /api/embeddings, and draws with
 * Chart.js (served from node_modules as /vendor/chart.umd.min.js). Text goes through
 * textContent only: site names and reasons come from remote parties.
 * Kept free of backquotes, backslashes and dollar-brace so it can live in this template literal.
 */
export const APP_JS = `(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  var DASHES = [[], [6, 3], [2, 2], [10, 3, 2, 3], [1, 4]];
  var token = new URLSearchParams(location.search).get("token");
  var charts = {};
  var siteColour = {};
  var app = { state: null, embeddings: null, charts: charts, renders: 0, embeddingFetches: 0 };
  window.fedjoint = app;

  function api(path) {
    if (!token) return path;
    return path + (path.indexOf("?") >= 0 ? "&" : "?") + "token=" + encodeURIComponent(token);
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "className") e.className = attrs[k];
      else if (k === "style") e.style.cssText = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function setText(id, text) { var e = document.getElementById(id); if (e) e.textContent = text; }
  function fmt(x, digits) {
    if (x === null || x === undefined || typeof x !== "number" || !isFinite(x)) return "–";
    return x.toFixed(digits === undefined ? 3 : digits);
  }
  function bytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "–";
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " GB";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " kB";
    return n + " B";
  }
  function seconds(ms) { return typeof ms === "number" ? (ms / 1000).toFixed(1) + " s" : "–"; }
  function colourOf(site) {
    if (!(site in siteColour)) siteColour[site] = PALETTE[Object.keys(siteColour).length % PALETTE.length];
    return siteColour[site];
  }
  function chart(id, type, data, options) {
    var existing = charts[id];
    if (existing) {
      existing.data.labels = data.labels;
      existing.data.datasets = data.datasets;
      if (options && options.plugins && options.plugins.title) existing.options.plugins.title = options.plugins.title;
      existing.update("none");
      return existing;
    }
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    var base = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { labels: { boxWidth: 12 } } } };
    var merged = Object.assign({}, base, options || {});
    merged.plugins = Object.assign({}, base.plugins, (options && options.plugins) || {});
    charts[id] = new Chart(canvas, { type: type, data: data, options: merged });
    return charts[id];
  }

  function renderHeader(s) {
    setText("study-name", s.study);
    var pill = document.getElementById("study-status");
    pill.textContent = s.status;
    pill.className = "pill " + s.status;
    setText("count-sites", String(s.sites.filter(function (x) { return x.status !== "left"; }).length));
    setText("count-rounds", String(s.rounds.filter(function (r) { return r.closedAt; }).length));
    setText("count-events", String(s.events));
    setText("last-event", s.lastTime ? new Date(s.lastTime).toLocaleTimeString() : "–");
  }

  function renderSites(s) {
    var body = document.querySelector("#sites-table tbody");
    body.replaceChildren.apply(body, s.sites.map(function (x) {
      var loss = x.lastLoss ? (typeof x.lastLoss.total === "number" ? x.lastLoss.total : x.lastLoss[Object.keys(x.lastLoss)[0]]) : null;
      var status = el("td", { className: "status " + x.status, text: x.status });
      if (x.lastRejection && x.status === "rejected") status.title = x.lastRejection.code + ": " + x.lastRejection.reason;
      if (x.leftReason) status.title = x.leftReason;
      return el("tr", { "data-site": x.site, "data-status": x.status }, [
        el("td", {}, [el("span", { className: "swatch", style: "background:" + colourOf(x.site) }), x.site]),
        el("td", { text: x.joint }),
        el("td", { className: "num", text: String(x.samples) }),
        el("td", { text: x.backend }),
        status,
        el("td", { className: "num", text: String(x.accepted) }),
        el("td", { className: "num", text: String(x.rejected) }),
        el("td", { text: x.lastRound || "–" }),
        el("td", { className: "num", text: fmt(loss) }),
        el("td", { className: "num", text: bytes(x.bytes) }),
        el("td", { className: "num", text: String(x.vectors) })
      ]);
    }));
  }

  function renderTimeline(s) {
    var rounds = s.rounds.slice(-40);
    var t0 = Date.parse(s.startedAt || (rounds[0] && rounds[0].openedAt) || new Date().toISOString());
    var now = Date.parse(s.lastTime || new Date().toISOString());
    function sec(iso) { return (Date.parse(iso) - t0) / 1000; }
    chart("chart-timeline", "bar", {
      labels: rounds.map(function (r) { return r.key; }),
      datasets: [
        { label: "open → closed", backgroundColor: "#54aeff", data: rounds.map(function (r) { return [sec(r.openedAt), r.closedAt ? sec(r.closedAt) : (now - t0) / 1000]; }) },
        { label: "aggregation", backgroundColor: "#1a7f37", data: rounds.map(function (r) { return r.closedAt && r.aggregatedAt ? [sec(r.closedAt), Math.max(sec(r.aggregatedAt), sec(r.closedAt) + 0.05)] : null; }) }
      ]
    }, { indexAxis: "y", scales: { x: { title: { display: true, text: "s" } }, y: { stacked: true } } });
  }

  function roundAxis(s, filter) {
    return s.rounds.filter(filter).map(function (r) { return r.key; });
  }

  function renderLoss(s) {
    var keys = {};
    s.losses.forEach(function (p) { keys[p.key] = true; });
    var labels = roundAxis(s, function (r) { return keys[r.key]; });
    var index = {}; labels.forEach(function (k, i) { index[k] = i; });
    var components = [];
    s.losses.forEach(function (p) { Object.keys(p.values).forEach(function (c) { if (components.indexOf(c) < 0) components.push(c); }); });
    var lossSets = {}; var diceSets = {};
    s.losses.forEach(function (p) {
      components.forEach(function (c) {
        if (typeof p.values[c] !== "number") return;
        var id = p.site + " " + c;
        if (!lossSets[id]) lossSets[id] = { label: id, site: p.site, comp: c, data: labels.map(function () { return null; }) };
        lossSets[id].data[index[p.key]] = p.values[c];
      });
      var d = p.validationDice;
      if (typeof d === "number") {
        if (!diceSets[p.site]) diceSets[p.site] = { label: p.site, data: labels.map(function () { return null; }) };
        diceSets[p.site].data[index[p.key]] = d;
      }
    });
    chart("chart-loss", "line", {
      labels: labels,
      datasets: Object.keys(lossSets).map(function (id) {
        var d = lossSets[id];
        return { label: d.label, data: d.data, borderColor: colourOf(d.site), backgroundColor: colourOf(d.site), borderDash: DASHES[components.indexOf(d.comp) % DASHES.length], spanGaps: true, pointRadius: 2, borderWidth: 2 };
      })
    }, { scales: { y: { title: { display: true, text: "loss" } } } });
    document.getElementById("dice-note").hidden = Object.keys(diceSets).length > 0;
    chart("chart-dice", "line", {
      labels: labels,
      datasets: Object.keys(diceSets).map(function (site) {
        return { label: site, data: diceSets[site].data, borderColor: colourOf(site), backgroundColor: colourOf(site), spanGaps: true, pointRadius: 2, borderWidth: 2 };
      })
    }, { scales: { y: { min: 0, max: 1, title: { display: true, text: "Dice" } } } });
  }

  function renderBytes(s) {
    var rounds = s.rounds.filter(function (r) { return typeof r.bytesIn === "number"; });
    chart("chart-bytes", "bar", {
      labels: rounds.map(function (r) { return r.key; }),
      datasets: [
        { label: "in (MB)", backgroundColor: "#0969da", data: rounds.map(function (r) { return r.bytesIn / 1e6; }) },
        { label: "out (MB)", backgroundColor: "#bf8700", data: rounds.map(function (r) { return r.bytesOut / 1e6; }) }
      ]
    }, { scales: { y: { title: { display: true, text: "MB" } } } });
  }

  function renderRounds(s) {
    var body = document.querySelector("#rounds-table tbody");
    body.replaceChildren.apply(body, s.rounds.slice(-12).reverse().map(function (r) {
      var bad = r.rejected.map(function (x) { return x.site + " (" + x.code + ")"; }).concat(r.missing.filter(function (m) { return !r.rejected.some(function (x) { return x.site === m; }); }));
      return el("tr", { "data-round": r.key }, [
        el("td", { text: r.key }),
        el("td", { className: "num", text: String(r.sites.length) }),
        el("td", { className: "num", text: String(r.accepted.length) }),
        el("td", { text: bad.length ? bad.join(", ") : "–" }),
        el("td", { className: "num", text: r.closedAt ? seconds(r.durationMs) : "open" }),
        el("td", { className: "num", text: seconds(r.aggregationMs) })
      ]);
    }));
  }

  function renderLoo(s) {
    var box = document.getElementById("loo-tables");
    document.getElementById("loo-note").hidden = s.loo.length > 0;
    box.replaceChildren.apply(box, s.loo.map(function (site) {
      var head = el("tr", {}, [el("th", { text: "bone" })].concat(site.metricNames.map(function (m) { return el("th", { className: "num", text: m }); })));
      var rows = site.rows.map(function (row) {
        return el("tr", {}, [el("td", { text: row.label })].concat(site.metricNames.map(function (m) {
          var v = row.values[m];
          return el("td", { className: "num", text: v ? fmt(v.mean) + " ± " + fmt(v.std) : "–" });
        })));
      });
      return el("table", { "data-site": site.site }, [
        el("caption", { text: site.site + " (" + site.joint + "), folds " + site.folds.join(", ") }),
        el("thead", {}, [head]),
        el("tbody", {}, rows)
      ]);
    }));
  }

  function renderRecent(s) {
    var list = document.getElementById("recent-events");
    list.replaceChildren.apply(list, s.recent.map(function (e) {
      var detail = e.site ? " " + e.site : "";
      if (typeof e.round === "number") detail += " f" + e.fold + " " + e.phase + " r" + e.round;
      if (e.reason) detail += " — " + e.reason;
      return el("li", { text: "#" + e.seq + " " + new Date(e.time).toLocaleTimeString() + " " + e.kind + detail });
    }));
  }

  function cosineColour(v) {
    if (typeof v !== "number" || !isFinite(v)) return "background:#eee";
    var t = Math.max(0, Math.min(1, (v + 1) / 2));
    var light = Math.round(96 - 60 * t);
    return "background:hsl(212,80%," + light + "%);color:" + (light < 60 ? "#fff" : "#111");
  }

  function renderEmbeddings(view) {
    app.embeddings = view;
    var note = document.getElementById("embeddings-note");
    var grid = document.getElementById("scatter-grid");
    var cos = document.getElementById("cosine-grid");
    if (!view || !view.available) {
      note.hidden = false;
      note.textContent = (view && view.reason) || "no embeddings yet";
      return;
    }
    note.hidden = true;
    document.getElementById("cosine-title").hidden = view.cosine.length === 0;
    setText("embeddings-round", "(fold " + view.fold + ", " + view.phase + ", round " + view.round + ")");
    view.scatter.forEach(function (sc) {
      var id = "chart-scatter-s" + sc.scale;
      if (!document.getElementById(id)) grid.appendChild(el("div", { className: "chart" }, [el("canvas", { id: id })]));
      var bySite = {};
      sc.points.forEach(function (p) { (bySite[p.site] = bySite[p.site] || []).push({ x: p.x, y: p.y }); });
      chart(id, "scatter", {
        datasets: Object.keys(bySite).map(function (site) { return { label: site, data: bySite[site], backgroundColor: colourOf(site) + "b0", pointRadius: 3 }; })
      }, {
        plugins: { title: { display: true, text: "s" + sc.scale + "  (PC1 " + Math.round(sc.explained[0] * 100) + "%, PC2 " + Math.round(sc.explained[1] * 100) + "%)" } },
        scales: { x: { title: { display: true, text: "PC1" } }, y: { title: { display: true, text: "PC2" } } }
      });
    });
    cos.replaceChildren.apply(cos, view.cosine.map(function (c) {
      var head = el("tr", {}, [el("th", {})].concat(c.sites.map(function (x) { return el("th", { text: x }); })));
      var rows = c.sites.map(function (a, i) {
        return el("tr", {}, [el("th", { text: a })].concat(c.matrix[i].map(function (v) { return el("td", { style: cosineColour(v), text: fmt(v, 2) }); })));
      });
      return el("table", { "data-scale": String(c.scale) }, [el("caption", { text: "s" + c.scale }), el("thead", {}, [head]), el("tbody", {}, rows)]);
    }));
  }

  var lastEmbeddingCount = -1;
  var embeddingInFlight = false;
  function maybeFetchEmbeddings(s) {
    if (embeddingInFlight || s.embeddingsReceived === lastEmbeddingCount) return;
    embeddingInFlight = true;
    var wanted = s.embeddingsReceived;
    fetch(api("api/embeddings"), { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (view) { lastEmbeddingCount = wanted; app.embeddingFetches += 1; renderEmbeddings(view); })
      .catch(function (err) { console.warn("embeddings", err); })
      .finally(function () { embeddingInFlight = false; if (app.state && app.state.embeddingsReceived !== lastEmbeddingCount) maybeFetchEmbeddings(app.state); });
  }

  function render(s) {
    app.state = s;
    s.sites.forEach(function (x) { colourOf(x.site); });
    renderHeader(s);
    renderSites(s);
    renderTimeline(s);
    renderLoss(s);
    renderBytes(s);
    renderRounds(s);
    renderLoo(s);
    renderRecent(s);
    maybeFetchEmbeddings(s);
    app.renders += 1;
    document.body.setAttribute("data-renders", String(app.renders));
    document.body.setAttribute("data-last-seq", String(s.lastSeq));
  }

  function connect() {
    var conn = document.getElementById("connection");
    var es = new EventSource(api("events"));
    es.addEventListener("open", function () { conn.textContent = "live"; conn.className = "pill on"; });
    es.addEventListener("state", function (m) { render(JSON.parse(m.data)); });
    es.addEventListener("error", function () { conn.textContent = "reconnecting"; conn.className = "pill off"; });
  }

  fetch(api("api/state"), { cache: "no-store" }).then(function (r) {
    if (r.status === 401) {
      var e = document.getElementById("auth-error");
      e.hidden = false;
      e.textContent = "Unauthorized: open this page with ?token=<dashboard token> (or a client certificate).";
      document.getElementById("study-status").textContent = "unauthorized";
      return;
    }
    return r.json().then(function (s) { render(s); connect(); });
  }).catch(function (err) {
    var e = document.getElementById("auth-error");
    e.hidden = false;
    e.textContent = "Cannot reach the coordinator: " + err;
  });
})();
`;
