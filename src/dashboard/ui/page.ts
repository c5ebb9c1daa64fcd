/**
 * The dashboard's static shell: one HTML page and its stylesheet. Kept in a module (not files
 * next to it) so that it ships inside dist/ with no copy step. All data arrives through
 * /events (SSE) and /api/*; the page holds nothing about the study.
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>fedjoint dashboard</title>
<link rel="stylesheet" href="app.css">
<script src="vendor/chart.umd.min.js" defer></script>
<script src="app.js" defer></script>
</head>
<body>
<header>
  <h1>fedjoint <span id="study-name" class="muted">…</span></h1>
  <div class="summary">
    <span id="study-status" class="pill">connecting</span>
    <span>sites <b id="count-sites">0</b></span>
    <span>rounds closed <b id="count-rounds">0</b></span>
    <span>events <b id="count-events">0</b></span>
    <span>last event <b id="last-event">–</b></span>
    <span id="connection" class="pill off">offline</span>
  </div>
</header>
<p id="auth-error" class="error" hidden></p>
<main>
  <section class="card wide">
    <h2>Sites</h2>
    <table id="sites-table">
      <thead><tr><th>Site</th><th>Joint</th><th>Samples</th><th>Backend</th><th>Status</th><th>Accepted</th><th>Rejected</th><th>Last round</th><th>Last loss</th><th>Sent</th><th>Vectors</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="card wide">
    <h2>Round timeline <span class="muted">(seconds since study start: training, then aggregation)</span></h2>
    <div class="chart tall"><canvas id="chart-timeline"></canvas></div>
  </section>
  <section class="card">
    <h2>Training loss per site</h2>
    <div class="chart"><canvas id="chart-loss"></canvas></div>
  </section>
  <section class="card">
    <h2>Validation Dice per site</h2>
    <p id="dice-note" class="muted">no validation Dice reported yet (update loss keys containing "dice")</p>
    <div class="chart"><canvas id="chart-dice"></canvas></div>
  </section>
  <section class="card">
    <h2>Bytes per round</h2>
    <div class="chart"><canvas id="chart-bytes"></canvas></div>
  </section>
  <section class="card">
    <h2>Rounds</h2>
    <table id="rounds-table">
      <thead><tr><th>Round</th><th>Sites</th><th>Accepted</th><th>Rejected / missing</th><th>Duration</th><th>Aggregation</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="card wide">
    <h2>Embeddings <span id="embeddings-round" class="muted"></span></h2>
    <p id="embeddings-note" class="muted">no embeddings yet</p>
    <div id="scatter-grid" class="grid3"></div>
    <h3 id="cosine-title" hidden>Cosine similarity between sites, per scale</h3>
    <div id="cosine-grid" class="cosine-grid"></div>
  </section>
  <section class="card wide">
    <h2>Leave-one-out metrics <span class="muted">(mean ± std over folds, per site and bone)</span></h2>
    <p id="loo-note" class="muted">no evaluation reported yet</p>
    <p id="loo-legend" class="muted">Test exam of each fold, post-processed. Dice, sensitivity, specificity as fractions; MSSD (symmetric Hausdorff) and ASSD in mm, ASSD as the paper's eq. S5: both surfaces' distances pooled (MedPy ≥ 0.5); RAVD in %.</p>
    <div id="loo-tables"></div>
  </section>
  <section class="card wide">
    <h2>Recent events</h2>
    <ul id="recent-events" class="events"></ul>
  </section>
</main>
</body>
</html>
`;

export const APP_CSS = `
:root { --fg: #1b1f24; --muted: #6a737d; --bg: #f4f6f8; --card: #fff; --line: #d8dee4; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 8px 24px; padding: 12px 20px; background: #0d1117; color: #f0f6fc; }
header h1 { margin: 0; font-size: 20px; }
header .muted { color: #9da7b3; font-weight: normal; }
.summary { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }
.pill { display: inline-block; padding: 1px 10px; border-radius: 10px; background: #30363d; color: #f0f6fc; font-size: 13px; }
.pill.running, .pill.on { background: var(--ok); }
.pill.done { background: #0969da; }
.pill.off { background: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; padding: 14px 20px 30px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px 14px; min-width: 0; overflow-x: auto; }
.card.wide { grid-column: 1 / -1; }
.card h2 { margin: 2px 0 8px; font-size: 16px; }
.card h3 { margin: 14px 0 6px; font-size: 14px; }
.muted { color: var(--muted); font-weight: normal; font-size: 13px; }
.chart { position: relative; height: 260px; }
.chart.tall { height: 220px; }
.grid3 { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 10px; }
.grid3 .chart { height: 280px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: #3d444d; background: #f6f8fa; }
td.num, th.num { text-align: right; }
.status { font-weight: 600; }
.status.training { color: var(--warn); }
.status.submitted, .status.waiting, .status.evaluated, .status.done { color: var(--ok); }
.status.rejected, .status.missed, .status.left { color: var(--bad); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
.cosine-grid { display: flex; flex-wrap: wrap; gap: 12px; }
.cosine-grid table { width: auto; }
.cosine-grid td { text-align: center; min-width: 56px; }
.cosine-grid caption { text-align: left; font-weight: 600; padding: 2px 0; }
#loo-tables { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px; align-items: start; overflow-x: auto; }
#loo-tables table { width: 100%; }
#loo-tables caption { text-align: left; font-weight: 600; padding: 2px 0; }
.events { margin: 0; padding-left: 0; list-style: none; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; max-height: 240px; overflow: auto; }
.error { margin: 10px 20px 0; padding: 8px 12px; background: #ffebe9; border: 1px solid var(--bad); border-radius: 6px; color: var(--bad); }
`;
