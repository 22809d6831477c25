/* Charts of the statistics page. The server draws them as SVG
   (portal/charts.py), so they show with the page and cost a phone no
   script. Apache ECharts (vendored at install) redraws them with tooltips,
   and only once a visitor points at, touches or tabs to a chart: it is
   fetched then, and the charts are redrawn one per idle moment, so no long
   task holds the page. */
(function () {
  var holder = document.getElementById('sh-stats-data');
  if (!holder) { return; }
  var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 1); };
  document.body.setAttribute('data-charts-ready', 'true');

  function loadECharts(then) {
    if (window.echarts) { then(); return; }
    var script = document.createElement('script');
    script.src = holder.getAttribute('data-echarts');
    script.async = true;
    script.onload = then;
    document.head.appendChild(script);
  }

  var started = false;
  function enliven(event) {
    if (started || !event.target.closest || !event.target.closest('.sh-chart')) { return; }
    started = true;
    ['pointerover', 'touchstart', 'focusin'].forEach(function (name) {
      document.removeEventListener(name, enliven, true);
    });
    loadECharts(function () { drawAll(); });
  }
  ['pointerover', 'touchstart', 'focusin'].forEach(function (name) {
    document.addEventListener(name, enliven, {capture: true, passive: true});
  });

  function live(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    el.innerHTML = '';
    el.classList.add('sh-chart-live');
    return el;
  }

  function drawAll() {
  var data = JSON.parse(holder.textContent);
  var labels = JSON.parse(document.getElementById('sh-stats-labels').textContent);
  function bar(id, items, horizontal) {
    var el = live(id);
    if (!el) { return; }
    var names = items.map(function (i) { return i.name; });
    var values = items.map(function (i) { return i.value; });
    var chart = echarts.init(el, null, {renderer: 'svg'});
    var category = {type: 'category', data: names, axisLabel: {interval: 0, width: 110, overflow: 'truncate'}};
    chart.setOption({
      tooltip: {trigger: 'axis'}, grid: {left: horizontal ? 120 : 40, right: 20, bottom: horizontal ? 20 : 80, top: 20},
      xAxis: horizontal ? {type: 'value'} : Object.assign({}, category, {axisLabel: {rotate: 45, interval: 0}}),
      yAxis: horizontal ? Object.assign({}, category, {inverse: true}) : {type: 'value'},
      series: [{type: 'bar', data: values, itemStyle: {color: '#0b4f9c'}}]
    });
    window.addEventListener('resize', function () { chart.resize(); });
  }
  function pie(id, items) {
    var el = live(id);
    if (!el) { return; }
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.setOption({tooltip: {trigger: 'item'}, series: [{type: 'pie', radius: ['35%', '65%'], data: items,
      label: {formatter: '{b}: {c}'}}]});
    window.addEventListener('resize', function () { chart.resize(); });
  }
  var steps = [
    function () { bar('sh-chart-departments', data.departments.slice(0, 20), true); },
    function () { bar('sh-chart-domains', data.domains, false); },
    function () { pie('sh-chart-open', data.open_condition); },
    function () { pie('sh-chart-frequency', data.update_frequency); },
    function () { bar('sh-chart-freshness', data.freshness.map(function (f) { return {name: f.label, value: f.share}; }), false); },
    downloads,
    function () { if (data.scores && data.scores.bins) { bar('sh-chart-scores', data.scores.bins, false); } },
    function () { document.body.setAttribute('data-charts-live', 'true'); }
  ];
  (function next() {
    var step = steps.shift();
    if (step) { step(); idle(next); }
  })();
  function downloads() {
    var el = live('sh-chart-downloads');
    if (!el) { return; }
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.setOption({tooltip: {trigger: 'axis'}, grid: {left: 40, right: 20, bottom: 40, top: 20},
      xAxis: {type: 'category', data: data.downloads.map(function (d) { return d.day.slice(5); })},
      yAxis: {type: 'value', name: labels.downloads, minInterval: 1},
      series: [{type: 'line', data: data.downloads.map(function (d) { return d.value; }), areaStyle: {}}]});
    window.addEventListener('resize', function () { chart.resize(); });
  }
  }
})();
