// The fleet page: a snapshot and then one delta a second over Server-Sent Events; table and rack views.
'use strict';
(() => {
  const { esc, bytes } = window.ks;
  const $ = (s) => document.querySelector(s);
  const ACTIVE = new Set(['profile', 'downloading', 'writing', 'verifying', 'post']);
  const rows = new Map();
  let order = [];
  let trs = new Map();
  let cells = new Map();
  let view = 'table';
  const f = { appliance: $('#f-appliance'), rack: $('#f-rack'), state: $('#f-state'), text: $('#f-text') };

  function cellsHtml(r) {
    const [name, appliance, rack, rank, boot, state, pct, rate, front, peers, reason] = r;
    const p = pct ?? 0;
    return (
      `<td><a href="/ui/nodes/${encodeURIComponent(name)}">${esc(name)}</a></td><td>${esc(appliance)}</td><td>${rack ?? '-'}/${rank ?? '-'}</td><td>${esc(boot)}</td>` +
      `<td class="state">${esc(state)}</td><td class="prog"><span class="pb"><i style="width:${p}%"></i></span> ${pct === null ? '' : p + '%'}</td>` +
      `<td class="num">${rate === null ? '' : bytes(rate) + '/s'}</td><td class="num">${bytes(peers)}</td><td class="num">${bytes(front)}</td><td class="why">${esc(reason && (state === 'failed' || state === 'stalled') ? reason : '')}</td>`
    );
  }
  function matches(r) {
    if (f.appliance.value && r[1] !== f.appliance.value) return false;
    if (f.rack.value && String(r[2]) !== f.rack.value) return false;
    const st = f.state.value;
    if (st && !(st === 'active' ? ACTIVE.has(r[5]) : r[5] === st)) return false;
    const t = f.text.value.trim().toLowerCase();
    if (t && !r[0].toLowerCase().includes(t) && !(r[10] ?? '').toLowerCase().includes(t)) return false;
    return true;
  }
  function fillSelect(sel, values) {
    const keep = sel.value;
    const first = sel.options[0].outerHTML;
    sel.innerHTML = first + values.map((v) => `<option>${esc(v)}</option>`).join('');
    sel.value = keep;
  }
  // The table is windowed: every row is in memory, only those in view (and a margin) are in the DOM.
  const ROW_H = 24;
  let shown = [];
  let win = [-1, -1];
  function renderWindow(force) {
    const box = $('#table-scroll');
    const first = Math.max(0, Math.floor(box.scrollTop / ROW_H) - 30);
    const last = Math.min(shown.length, first + Math.ceil((box.clientHeight || 800) / ROW_H) + 60);
    if (!force && first === win[0] && last === win[1]) return;
    win = [first, last];
    const names = shown.slice(first, last);
    $('#fleet-body').innerHTML =
      `<tr class="spacer" style="height:${first * ROW_H}px"></tr>` +
      names.map((n) => `<tr class="st-${esc(rows.get(n)[5])}">${cellsHtml(rows.get(n))}</tr>`).join('') +
      `<tr class="spacer" style="height:${(shown.length - last) * ROW_H}px"></tr>`;
    trs = new Map();
    const els = $('#fleet-body').children;
    for (let i = 0; i < names.length; i++) trs.set(names[i], els[i + 1]);
  }
  function renderTable() {
    shown = order.filter((n) => matches(rows.get(n)));
    renderWindow(true);
    $('#shown').textContent = `${shown.length} of ${order.length} nodes shown`;
  }
  let raf = 0;
  $('#table-scroll').addEventListener('scroll', () => {
    if (!raf)
      raf = requestAnimationFrame(() => {
        raf = 0;
        renderWindow(false);
      });
  });
  function renderRacks() {
    const byRack = new Map();
    for (const n of order) {
      const r = rows.get(n);
      if (!matches(r)) continue;
      const k = r[2] === null ? '-' : r[2];
      if (!byRack.has(k)) byRack.set(k, []);
      byRack.get(k).push(r);
    }
    let h = '';
    for (const [k, rs] of byRack) {
      h +=
        `<div class="rack"><h4>rack ${esc(k)} (${rs.length})</h4><div class="cells">` +
        rs.map((r) => `<a class="c st-${esc(r[5])}" href="/ui/nodes/${encodeURIComponent(r[0])}" title="${esc(r[0])}: ${esc(r[5])}${r[6] === null ? '' : ' ' + r[6] + '%'}"></a>`).join('') +
        '</div></div>';
    }
    const el = $('#rack-view');
    el.innerHTML = h;
    cells = new Map();
    for (const a of el.querySelectorAll('a.c')) cells.set(decodeURIComponent(a.getAttribute('href').slice(10)), a);
  }
  function render() {
    if (view === 'table') renderTable();
    else renderRacks();
  }
  function summary(s) {
    const parts = [
      `<span>${s.total} nodes</span>`,
      `<span class="ok">done ${s.done}</span>`,
      `<span>installing ${s.active}</span>`,
      `<span class="${s.stalled ? 'error' : ''}">stalled ${s.stalled}</span>`,
      `<span class="${s.failed ? 'error' : ''}">failed ${s.failed}</span>`,
      `<span class="muted">idle ${s.idle}</span>`,
    ];
    $('#summary').innerHTML = parts.join('');
    $('#summary').dataset.done = s.done;
    $('#summary').dataset.total = s.total;
  }
  function snapshot(d) {
    rows.clear();
    order = d.rows.map((r) => r[0]);
    for (const r of d.rows) rows.set(r[0], r);
    fillSelect(f.appliance, [...new Set(d.rows.map((r) => r[1]))].sort());
    fillSelect(
      f.rack,
      [...new Set(d.rows.map((r) => r[2]).filter((x) => x !== null))].sort((a, b) => a - b),
    );
    summary(d.summary);
    render();
    if (!document.body.dataset.fleetReady) {
      performance.mark('fleet-table-complete');
      document.body.dataset.fleetReady = String(d.rows.length);
    }
  }
  function delta(d) {
    let full = d.removed.length > 0;
    for (const n of d.removed) {
      rows.delete(n);
      order = order.filter((x) => x !== n);
    }
    for (const r of d.rows) {
      const was = rows.get(r[0]);
      rows.set(r[0], r);
      if (!was) {
        order.push(r[0]);
        full = true;
        continue;
      }
      if (matches(was) !== matches(r)) {
        full = true;
        continue;
      }
      const tr = trs.get(r[0]);
      if (tr) {
        tr.className = `st-${r[5]}`;
        tr.innerHTML = cellsHtml(r);
      }
      const c = cells.get(r[0]);
      if (c) {
        c.className = `c st-${r[5]}`;
        c.title = `${r[0]}: ${r[5]}${r[6] === null ? '' : ' ' + r[6] + '%'}`;
      }
    }
    summary(d.summary);
    if (full) render();
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
  }
  function connect() {
    const es = new EventSource('/api/v1/fleet/stream');
    es.addEventListener('open', () => {
      $('#live').textContent = 'live';
      $('#live').className = 'live up';
    });
    es.addEventListener('snapshot', (e) => snapshot(JSON.parse(e.data)));
    es.addEventListener('delta', (e) => delta(JSON.parse(e.data)));
    es.addEventListener('error', () => {
      $('#live').textContent = 'reconnecting…';
      $('#live').className = 'live';
    });
  }
  let t;
  for (const el of Object.values(f))
    el.addEventListener('input', () => {
      clearTimeout(t);
      t = setTimeout(render, 120);
    });
  $('#v-table').addEventListener('click', () => {
    view = 'table';
    $('#v-table').className = 'on';
    $('#v-rack').className = '';
    $('#table-view').hidden = false;
    $('#rack-view').hidden = true;
    render();
  });
  $('#v-rack').addEventListener('click', () => {
    view = 'rack';
    $('#v-rack').className = 'on';
    $('#v-table').className = '';
    $('#table-view').hidden = true;
    $('#rack-view').hidden = false;
    render();
  });
  connect();
})();
