/* Live view of a real-time product: its current rows from the DataStore,
   then every observation from the product's Server-Sent Events stream (the
   browser's EventSource reconnects with Last-Event-ID on its own); one
   key's history as an ECharts line, extended as observations of that key
   arrive; and the feed's liveness, asked again every few seconds so that
   the interruption banner rises on an open page. Text is set with
   textContent only: pushed values are never read as HTML. */
(function () {
  'use strict';
  var LIMIT = 20;
  var NUMERIC = /^(int|int4|int8|integer|bigint|numeric|float8|float4|double precision|real)$/;
  var COORDINATE = /^(lng|lon|long|longitude|lat|latitude|x|y|经度|纬度)$/i;

  function loadECharts(url, then) {
    if (window.echarts) { then(); return; }
    var script = document.createElement('script');
    script.src = url;
    script.async = true;
    script.onload = then;
    document.head.appendChild(script);
  }

  function setup(box) {
    var keyField = box.dataset.keyField, timeField = box.dataset.timeField;
    var head = box.querySelector('thead tr'), body = box.querySelector('tbody');
    var state = box.querySelector('.sh-realtime-live-state');
    var received = box.querySelector('.sh-realtime-received');
    var keyChoice = box.querySelector('.sh-realtime-history-key');
    var fieldChoice = box.querySelector('.sh-realtime-history-field');
    var chartBox = box.querySelector('.sh-realtime-chart');
    var rows = {}, columns = [], count = 0, chart = null, points = [];
    var clock = new Intl.DateTimeFormat('zh-CN', {timeZone: box.dataset.timezone, hour12: false,
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'});

    function localTime(iso) {
      return iso ? clock.format(new Date(iso)).replace(/\//g, '-') : '—';
    }

    function cell(tag, text) {
      var element = document.createElement(tag);
      element.textContent = text === null || text === undefined ? '' : String(text);
      return element;
    }

    function option(value) {
      var element = cell('option', value);
      element.value = value;
      return element;
    }

    function show(record) {
      var key = String(record[keyField]);
      var row = rows[key];
      if (row && String(row.dataset.time) > String(record[timeField])) {
        return;  // an older observation that arrived late
      }
      if (!row) {
        if (Object.keys(rows).length >= LIMIT) { return; }
        row = rows[key] = document.createElement('tr');
        row.dataset.key = key;
        body.appendChild(row);
        keyChoice.appendChild(option(key));
      }
      row.dataset.time = record[timeField];
      row.replaceChildren.apply(row, columns.map(function (name) { return cell('td', record[name]); }));
      row.classList.remove('sh-realtime-changed');
      void row.offsetWidth;
      row.classList.add('sh-realtime-changed');
    }

    // -- one key's history -------------------------------------------------
    function drawChart() {
      if (!chart) { return; }
      chart.setOption({series: [{data: points}]});
    }

    function loadHistory() {
      var key = keyChoice.value, field = fieldChoice.value;
      if (!key || !field) { return; }
      var url = box.dataset.historyUrl + '&limit=5000&key=' + encodeURIComponent(key);
      fetch(url, {credentials: 'same-origin'}).then(function (response) { return response.json(); })
        .then(function (answer) {
          if (!answer.success || keyChoice.value !== key) { return; }
          points = answer.result.observations.filter(function (o) { return !o.deleted; })
            .map(function (o) { return [o.observed, o.record[field]]; });
          loadECharts(box.dataset.echarts, function () {
            if (!chart) {
              chart = window.echarts.init(chartBox, null, {renderer: 'svg'});
              window.addEventListener('resize', function () { chart.resize(); });
            }
            chart.setOption({
              tooltip: {trigger: 'axis'}, grid: {left: 50, right: 20, top: 30, bottom: 40},
              xAxis: {type: 'time'}, yAxis: {type: 'value', name: field, minInterval: 1},
              series: [{type: 'line', name: key, step: 'end', showSymbol: false, data: points}]
            }, true);
            chartBox.dataset.points = String(points.length);
          });
        });
    }

    function extendHistory(observation) {
      if (observation.deleted || String(observation.key) !== keyChoice.value) { return; }
      points.push([observation.observed, observation.record[fieldChoice.value]]);
      chartBox.dataset.points = String(points.length);
      drawChart();
    }

    // -- liveness --------------------------------------------------------------
    var banner = box.querySelector('.sh-realtime-banner'), bannerText = box.querySelector('.sh-realtime-banner-text');
    var badgeDown = box.querySelector('.sh-realtime-interrupted'), badgeUp = box.querySelector('.sh-realtime-live');
    var lastPush = box.querySelector('.sh-realtime-last-push');

    function showStatus(status) {
      var down = Boolean(status.interrupted);
      banner.hidden = !down;
      badgeDown.hidden = !down;
      badgeUp.hidden = down;
      lastPush.hidden = down;
      if (down) {
        bannerText.textContent = box.dataset.interruptedText.replace('{since}', localTime(status.interrupted_since));
      } else {
        lastPush.textContent = box.dataset.liveStatusText.replace('{last}', localTime(status.last_push));
      }
      box.dataset.interrupted = String(down);
    }

    function pollStatus() {
      fetch(box.dataset.statusUrl, {credentials: 'same-origin', cache: 'no-store'})
        .then(function (response) { return response.json(); })
        .then(function (answer) { if (answer.success) { showStatus(answer.result.status); } })
        .catch(function () {})
        .then(function () { setTimeout(pollStatus, Number(box.dataset.pollSeconds) * 1000); });
    }

    fetch(box.dataset.searchUrl, {credentials: 'same-origin'}).then(function (response) {
      return response.json();
    }).then(function (answer) {
      if (!answer.success) { return; }
      columns = answer.result.fields.map(function (f) { return f.id; })
        .filter(function (id) { return id.charAt(0) !== '_'; });
      answer.result.fields.forEach(function (f) {
        if (NUMERIC.test(f.type) && !COORDINATE.test(f.id) && f.id !== keyField) {
          fieldChoice.appendChild(option(f.id));
        }
      });
      head.replaceChildren.apply(head, columns.map(function (name) { return cell('th', name); }));
      answer.result.records.forEach(show);
      keyChoice.addEventListener('change', loadHistory);
      fieldChoice.addEventListener('change', loadHistory);
      loadHistory();
      // The map of the latest table (snippets/sh_map.html, assets/map.js)
      // fetches its GeoJSON again at most every 30 seconds while pushes arrive.
      var mapElement = box.querySelector('[data-sh-map]');
      var mapDue = Date.now() + 30000;
      function refreshMap() {
        if (!mapElement || !window.shanghaiMap || Date.now() < mapDue) { return; }
        mapDue = Date.now() + 30000;
        window.shanghaiMap.refresh(mapElement);
      }
      // The stream address redirects to the stream server (another port):
      // no credentials go there, the ticket in the redirect says who we
      // are. When the browser gives up on a stream (its own reconnect met
      // an expired ticket), follow the product's address again from the
      // last event seen, so nothing is lost or repeated.
      var lastEventId = '';
      function follow() {
        var url = box.dataset.streamUrl;
        if (lastEventId) {
          url += (url.indexOf('?') < 0 ? '?' : '&') + 'last_event_id=' + encodeURIComponent(lastEventId);
        }
        var source = new EventSource(url);
        source.addEventListener('open', function () { state.textContent = box.dataset.liveText; });
        source.addEventListener('error', function () {
          state.textContent = box.dataset.reconnectingText;
          if (source.readyState === EventSource.CLOSED) { setTimeout(follow, 2000); }
        });
        source.addEventListener('observation', function (event) {
          var observation = JSON.parse(event.data);
          lastEventId = event.lastEventId;
          count += 1;
          received.textContent = box.dataset.receivedText.replace('{count}', String(count))
            .replace('{time}', localTime(observation.observed));
          box.dataset.received = String(count);
          extendHistory(observation);
          refreshMap();
          if (observation.deleted) {
            var gone = rows[observation.key];
            if (gone) { gone.remove(); delete rows[observation.key]; }
            return;
          }
          show(observation.record);
        });
      }
      follow();
    });
    pollStatus();
  }

  document.querySelectorAll('[data-sh-realtime]').forEach(setup);
}());
