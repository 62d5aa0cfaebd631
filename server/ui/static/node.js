// The node page: boot action and reinstall through /api/v1; the installer log refreshed while the node installs.
'use strict';
(() => {
  const { api, esc } = window.ks;
  const $ = (s) => document.querySelector(s);
  const h1 = $('#node-name');
  const name = h1.dataset.name;
  const say = (t, bad) => {
    const el = $('#action-result');
    el.textContent = t;
    el.className = bad ? 'error' : 'muted';
  };
  $('#set-boot')?.addEventListener('click', async () => {
    try {
      const r = await api('PUT', `/api/v1/nodes/${encodeURIComponent(name)}/boot`, { action: $('#boot-select').value });
      $('#boot-action').textContent = r.node.bootAction;
      say(`boot action is now ${r.node.bootAction}`);
    } catch (e) {
      say(e.message, true);
    }
  });
  $('#reinstall-node')?.addEventListener('click', async () => {
    try {
      const r = await api('POST', '/api/v1/reinstall', { names: [name], power: $('#power-select').value });
      say(`reinstall started (power ${r.power}${r.manual ? ': reboot the node yourself' : ''})`);
      setTimeout(() => location.reload(), 800);
    } catch (e) {
      say(e.message, true);
    }
  });
  async function refreshLog() {
    try {
      const r = await api('GET', `/api/v1/nodes/${encodeURIComponent(name)}/log?limit=1000`);
      if (r.lines.length) $('#install-log').innerHTML = r.lines.map((l) => esc(l.line)).join('\n');
    } catch {
      /* next time */
    }
  }
  if (h1.dataset.active === 'true') setInterval(refreshLog, 2000);
})();
