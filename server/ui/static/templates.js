// The template editor: live preview (POST /api/v1/templates/preview) and a checked save (PUT /api/v1/templates/file).
'use strict';
(() => {
  const { api, esc } = window.ks;
  const $ = (s) => document.querySelector(s);
  const ed = $('#editor');
  if (!ed) return;
  const path = $('#edit-path').dataset.path;
  function problems(list, title) {
    const el = $('#problems');
    el.innerHTML = list.length
      ? `<p class="error"><b>${esc(title)}</b></p>` +
        list.map((p) => `<p class="error problem">${p.node ? 'node ' + esc(p.node) + ': ' : ''}${esc(p.file)}${p.line !== undefined ? ':' + p.line : ''}: ${esc(p.message)}</p>`).join('')
      : '<p class="ok">every node renders</p>';
  }
  let seq = 0;
  async function preview() {
    const my = ++seq;
    const node = $('#preview-node').value.trim();
    try {
      const r = await api('POST', '/api/v1/templates/preview', { path, text: ed.value, ...(node ? { node } : {}) });
      if (my !== seq) return;
      $('#preview-kickstart').textContent = r.kickstart ?? '(does not render: see the problems)';
      $('#preview-pxelinux').textContent = r.pxelinux ?? '';
      $('#preview-for').textContent = r.node ? `for ${r.node}` : '';
      $('#preview-pxe-action').textContent = r.pxeAction ? `(${r.pxeAction})` : '';
      problems(r.problems, `${r.problems.length} problem(s) over ${r.nodesChecked} node(s) with this edit`);
      document.body.dataset.previews = String(Number(document.body.dataset.previews ?? 0) + 1);
    } catch (e) {
      if (my === seq) problems([{ file: path, message: e.message }], 'preview failed');
    }
  }
  let t;
  ed.addEventListener('input', () => {
    clearTimeout(t);
    t = setTimeout(preview, 300);
    $('#save-anyway') && ($('#save-anyway').hidden = true);
  });
  $('#preview-node').addEventListener('change', preview);
  async function save(force) {
    const out = $('#save-result');
    try {
      const r = await api('PUT', '/api/v1/templates/file', { path, text: ed.value, force });
      out.className = r.forced ? 'error' : 'ok';
      out.textContent = r.forced ? `saved anyway: the server keeps serving the last good set (${r.problems.length} problem(s))` : 'saved; the server serves it now';
      $('#save-anyway').hidden = true;
      problems(r.problems, 'problems in the saved file');
    } catch (e) {
      out.className = 'error';
      out.textContent = `not saved: ${e.message}`;
      if (e.data?.problems) {
        problems(e.data.problems, 'this edit breaks renders; not saved');
        $('#save-anyway').hidden = false;
      }
    }
  }
  $('#save')?.addEventListener('click', () => save(false));
  $('#save-anyway')?.addEventListener('click', () => save(true));
  preview();
})();
