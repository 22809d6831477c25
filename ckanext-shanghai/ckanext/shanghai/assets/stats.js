/* Charts of the statistics page (Apache ECharts, vendored at install).
   Each chart reads its data from the JSON in the page. ECharts is not on
   the critical path: it is fetched once the page has loaded and a chart is
   (nearly) in view, and the charts are drawn one per idle moment, so no
   long task holds the page. */
(function () {
  var holder = document.getElementById('sh-stats-data');
  if (!holder) { return; }
  var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 1); };

  function loadECharts(then) {
    if (window.echarts) { then(); return; }
    var script = document.createElement('script');
    script.src = holder.getAttribute('data-echarts');
    script.async = true;
    script.onload = then;
    document.head.appendChild(script);
  }

  function whenNearlyVisible(then) {
    var first = document.querySelector('.sh-chart');
    if (!first || !('IntersectionObserver' in window)) { then(); return; }
    var observer = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { observer.disconnect(); then(); }
    }, {rootMargin: '300px'});
    observer.observe(first);
  }

  function start() {
    whenNearlyVisible(function () { loadECharts(function () { drawAll(); }); });
  }
  if (document.readyState === 'complete') { start(); } else { window.addEventListener('load', start); }

  function drawAll() {
  var data = JSON.parse(holder.textContent);
  var labels = JSON.parse(document.getElementById('sh-stats-labels').textContent);
  function bar(id, items, horizontal) {
    var el = document.getElementById(id);
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
    var el = document.getElementById(id);
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
    function () { if (data.scores) { bar('sh-chart-scores', data.scores.bins, false); } },
    function () { document.body.setAttribute('data-charts-ready', 'true'); }
  ];
  (function next() {
    var step = steps.shift();
    if (step) { step(); idle(next); }
  })();
  function downloads() {
    var el = document.getElementById('sh-chart-downloads');
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
