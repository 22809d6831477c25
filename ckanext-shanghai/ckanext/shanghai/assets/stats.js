/* Charts of the statistics page (Apache ECharts, vendored at install).
   Each chart reads its data from the JSON in the page. */
(function () {
  var holder = document.getElementById('sh-stats-data');
  if (!holder || !window.echarts) { return; }
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
  bar('sh-chart-departments', data.departments.slice(0, 20), true);
  bar('sh-chart-domains', data.domains, false);
  pie('sh-chart-open', data.open_condition);
  pie('sh-chart-frequency', data.update_frequency);
  bar('sh-chart-freshness', data.freshness.map(function (f) { return {name: f.label, value: f.share}; }), false);
  (function () {
    var el = document.getElementById('sh-chart-downloads');
    if (!el) { return; }
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.setOption({tooltip: {trigger: 'axis'}, grid: {left: 40, right: 20, bottom: 40, top: 20},
      xAxis: {type: 'category', data: data.downloads.map(function (d) { return d.day.slice(5); })},
      yAxis: {type: 'value', name: labels.downloads, minInterval: 1},
      series: [{type: 'line', data: data.downloads.map(function (d) { return d.value; }), areaStyle: {}}]});
    window.addEventListener('resize', function () { chart.resize(); });
  })();
  document.body.setAttribute('data-charts-ready', 'true');
})();
