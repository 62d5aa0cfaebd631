// The images page: bytes sent by the frontend vs by peers over time (uPlot), refreshed every 2 s.
'use strict';
(() => {
  const { api, bytes } = window.ks;
  const el = document.querySelector('#swarm-chart');
  let chart;
  async function draw() {
    let points;
    try {
      ({ points } = await api('GET', '/api/v1/swarm/history'));
    } catch {
      return;
    }
    const data = [points.map((p) => p.t), points.map((p) => p.frontend), points.map((p) => p.peers)];
    const last = points.at(-1);
    document.querySelector('#swarm-latest').textContent = last ? `now: frontend sent ${bytes(last.frontend)}, peers sent ${bytes(last.peers)} (${points.length} samples)` : 'no samples yet';
    el.dataset.points = String(points.length);
    if (!chart) {
      chart = new uPlot(
        {
          width: Math.max(400, el.clientWidth - 20),
          height: 300,
          series: [{}, { label: 'frontend sent', stroke: '#d23c3c', width: 2, value: (u, v) => bytes(v) }, { label: 'peers sent', stroke: '#2e9d5b', width: 2, value: (u, v) => bytes(v) }],
          axes: [{}, { values: (u, vs) => vs.map((v) => bytes(v)), size: 80 }],
        },
        data,
        el,
      );
    } else chart.setData(data);
  }
  draw();
  setInterval(draw, 2000);
})();
