// The reinstall page: a plan first (POST /api/v1/reinstall/plan), then the start (POST /api/v1/reinstall).
'use strict';
(() => {
  const { api, esc } = window.ks;
  const $ = (s) => document.querySelector(s);
  const form = $('#reinstall-form');
  let request;
  function body() {
    const fd = new FormData(form);
    const sel = fd.get('sel');
    const b = {};
    if (sel === 'all') b.all = true;
    else if (sel === 'appliance') b.appliance = fd.get('appliance');
    else if (sel === 'rack') b.rack = Number(fd.get('rack'));
    else
      b.names = String(fd.get('names'))
        .split(/[\s,]+/)
        .filter(Boolean);
    b.power = fd.get('power');
    if (fd.get('powerCommand')) b.powerCommand = fd.get('powerCommand');
    b.parallel = Number(fd.get('parallel')) || 8;
    return b;
  }
  function showError(e) {
    const el = $('#error');
    el.hidden = !e;
    el.textContent = e ? e.message : '';
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(null);
    request = body();
    try {
      const { power, powerCommand, parallel, ...selection } = request;
      void power;
      void powerCommand;
      void parallel;
      const plan = await api('POST', '/api/v1/reinstall/plan', selection);
      const c = plan.counts;
      $('#plan-summary').innerHTML =
        `${plan.nodes.length} node(s): <span class="k-same">${c.same} kickstart unchanged</span>, <span class="k-changed">${c.changed} changed</span>, ${c.new} never installed, <span class="k-fails">${c.fails} would fail to render</span>`;
      $('#plan-body').innerHTML = plan.nodes
        .map(
          (n) =>
            `<tr data-node="${esc(n.name)}"><td>${esc(n.name)}</td><td>${esc(n.profile ?? '-')}</td><td>${esc(n.template ?? '-')}</td>` +
            `<td>${esc(n.image ?? '-')}${n.method ? ' (' + esc(n.method) + ')' : ''}</td><td class="k-${n.kickstart}">${n.kickstart}</td>` +
            `<td class="diff">${n.error ? `<span class="error">${esc(n.error.file)}${n.error.line !== undefined ? ':' + n.error.line : ''}: ${esc(n.error.message)}</span>` : ''}` +
            `${n.diff ? `<details><summary>diff</summary><pre>${esc(n.diff)}</pre></details>` : ''}</td></tr>`,
        )
        .join('');
      $('#plan').hidden = false;
      const start = $('#start-button');
      if (start) start.disabled = plan.nodes.length === 0;
    } catch (e) {
      showError(e);
    }
  });
  $('#start-button')?.addEventListener('click', async () => {
    showError(null);
    try {
      await api('POST', '/api/v1/reinstall', request);
      location.href = '/ui/';
    } catch (e) {
      showError(e);
    }
  });
})();
